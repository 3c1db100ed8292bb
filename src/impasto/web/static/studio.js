// impasto studio: the page. Plain JavaScript over the HTTP API of docs/studio.md.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["done", "cancelled", "failed", "interrupted"]);
const OPEN_KEY = "impasto-studio-open-job";

const state = {
  options: null,
  mode: "optimise",
  photo: null,          // File
  styleName: null,      // a catalogue name, or null when a painting is uploaded
  styleFile: null,      // File
  job: null,            // the open job, as GET /api/jobs/{id} shows it
  jobSeen: 0,           // performance.now() when `job` arrived (for the elapsed and time-left clocks)
  rows: [],             // iteration rows of the open job
  source: null,         // EventSource of the open job
  previewShown: 0,
};

// --- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  state.options = await getJSON("/api/options");
  fillSettings(state.options);
  buildTiles(state.options.styles);
  setMode("optimise");
  wireForm();
  wireStage();
  await refreshGallery();
  const remembered = localStorage.getItem(OPEN_KEY);
  if (remembered) openJob(remembered).catch(() => localStorage.removeItem(OPEN_KEY));
  setInterval(refreshGallery, 4000);
  setInterval(tick, 500);
});

async function getJSON(url, init) {
  const response = await fetch(url, init);
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { field: body.field, status: response.status });
  return body;
}

// --- the form ------------------------------------------------------------------------------

function fillSettings(options) {
  const choices = options.choices;
  for (const form of document.querySelectorAll(".settings[data-for]")) {
    const mode = form.dataset.for;
    const defaults = options.defaults[mode];
    for (const select of form.querySelectorAll("select")) {
      const list = mode === "fast" && select.name === "preserve_color" ? choices.fast_preserve_color : choices[select.name];
      for (const value of list) select.add(new Option(label(select.name, value), value));
    }
    for (const field of form.querySelectorAll("input, select")) {
      const value = defaults[field.name];
      if (value !== null && value !== undefined) field.value = value;
    }
    const size = form.querySelector("[name=size]");
    size.max = options.limits.max_size;
  }
  if (options.licence) {
    const note = $("fast-licence");
    note.textContent = `Licence of the shipped fast networks: ${options.licence}.`;
    note.hidden = false;
  }
}

function label(name, value) {
  const words = {
    preserve_color: { none: "the painting's", luminance: "the photo's (luminance)", histogram: "the photo's (histogram)" },
    init: { noise: "noise (the paper)", content: "the photo", style: "the painting" },
    optimizer: { lbfgs: "L-BFGS (the paper)", adam: "Adam" },
    pooling: { max: "max", avg: "average (the paper)" },
    output_profile: { source: "the photo's", srgb: "sRGB" },
    bit_depth: { "": "the photo's", 8: "8 bits", 16: "16 bits" },
  };
  return (words[name] && words[name][value]) || value;
}

function buildTiles(styles) {
  const tiles = $("tiles");
  tiles.textContent = "";
  for (const style of styles) {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = "tile";
    tile.dataset.name = style.name;
    tile.dataset.modes = style.modes.join(" ");
    tile.setAttribute("role", "option");
    tile.title = `${style.label} (${style.modes.join(", ")})`;
    const img = document.createElement("img");
    img.src = style.thumbnail;
    img.alt = "";
    const caption = document.createElement("span");
    caption.textContent = style.label;
    tile.append(img, caption);
    tile.addEventListener("click", () => chooseStyle(style.name));
    tiles.append(tile);
  }
  const upload = document.createElement("label");
  upload.className = "tile upload";
  upload.dataset.modes = state.options.any_painting_fast ? "optimise fast" : "optimise";
  upload.id = "style-upload";
  upload.innerHTML = '<span class="up-text">Upload a painting</span>';
  const input = document.createElement("input");
  input.type = "file";
  input.id = "style-input";
  input.accept = "image/png,image/jpeg,image/webp,image/tiff,image/bmp,image/gif";
  input.addEventListener("change", () => input.files[0] && chooseStyleFile(input.files[0]));
  upload.append(input);
  tiles.append(upload);
  const preferred = styles.find((s) => s.name === "starry_night") || styles[0];
  if (preferred) chooseStyle(preferred.name);
}

function chooseStyle(name) {
  state.styleName = name;
  state.styleFile = null;
  markTiles();
}

function chooseStyleFile(file) {
  state.styleFile = file;
  state.styleName = null;
  const upload = $("style-upload");
  upload.classList.add("has");
  let img = upload.querySelector("img");
  if (!img) {
    img = document.createElement("img");
    upload.prepend(img);
  }
  img.src = URL.createObjectURL(file);
  upload.querySelector(".up-text").textContent = file.name;
  markTiles();
}

function markTiles() {
  for (const tile of document.querySelectorAll("#tiles .tile")) {
    const usable = tile.dataset.modes.split(" ").includes(state.mode);
    const selected = tile.id === "style-upload" ? state.styleFile !== null : tile.dataset.name === state.styleName;
    tile.setAttribute("aria-selected", String(selected && usable));
    if (tile.tagName === "BUTTON") tile.disabled = !usable;
    else tile.style.opacity = usable ? "" : ".35";
  }
  const hint = state.mode === "optimise"
    ? "Optimise mode paints with any picture: pick one or upload your own."
    : state.options.any_painting_fast
      ? "Fast mode: a network trained on that painting, or upload any painting for the any-painting network."
      : "Fast mode uses the networks shipped with impasto, one per painting.";
  $("tile-hint").textContent = hint;
}

function setMode(mode) {
  state.mode = mode;
  for (const button of document.querySelectorAll(".seg")) button.setAttribute("aria-checked", String(button.dataset.mode === mode));
  for (const form of document.querySelectorAll(".settings[data-for]")) form.hidden = form.dataset.for !== mode;
  $("regions").hidden = mode !== "optimise";
  const usable = (name) => state.options.styles.some((s) => s.name === name && s.modes.includes(mode));
  const uploadUsable = mode === "optimise" || state.options.any_painting_fast;
  if (state.styleName && !usable(state.styleName) || (!state.styleName && !(uploadUsable && state.styleFile))) {
    const first = state.options.styles.find((s) => s.modes.includes(mode));
    state.styleName = first ? first.name : null;
    if (first) state.styleFile = null;
  }
  markTiles();
}

function wireForm() {
  for (const button of document.querySelectorAll(".seg")) button.addEventListener("click", () => setMode(button.dataset.mode));
  const drop = $("photo-drop");
  const input = $("photo-input");
  input.addEventListener("change", () => input.files[0] && choosePhoto(input.files[0]));
  for (const kind of ["dragenter", "dragover"]) drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const kind of ["dragleave", "drop"]) drop.addEventListener(kind, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files[0]) choosePhoto(e.dataTransfer.files[0]);
  });
  $("job-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  $("add-region").addEventListener("click", addRegion);
}

// Spatial control: each row a mask file and its painting (an example by name, an upload, or keep).
function addRegion() {
  const rows = $("region-rows");
  if (rows.children.length >= state.options.limits.max_regions) return;
  const row = document.createElement("div");
  row.className = "region-row";
  const mask = Object.assign(document.createElement("input"), { type: "file", accept: "image/*", className: "region-mask" });
  mask.setAttribute("aria-label", "mask");
  const painting = Object.assign(document.createElement("select"), { className: "region-style" });
  painting.add(new Option("keep the photo", "keep"));
  for (const style of state.options.styles.filter((s) => s.modes.includes("optimise"))) painting.add(new Option(style.label || style.name, style.name));
  painting.add(new Option("upload a painting…", "upload"));
  const upload = Object.assign(document.createElement("input"), { type: "file", accept: "image/*", className: "region-upload", hidden: true });
  painting.addEventListener("change", () => { upload.hidden = painting.value !== "upload"; });
  const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "×", className: "region-remove" });
  remove.setAttribute("aria-label", "remove region");
  remove.addEventListener("click", () => { row.remove(); renumberRegions(); });
  row.append(mask, painting, upload, remove);
  rows.append(row);
  renumberRegions();
}

function renumberRegions() {
  const rows = [...$("region-rows").children];
  rows.forEach((row, k) => {
    row.querySelector(".region-mask").name = `region_${k + 1}_mask`;
    row.querySelector(".region-style").name = `region_${k + 1}_style_name`;
    row.querySelector(".region-upload").name = `region_${k + 1}_style`;
  });
  document.querySelector(".keep-rest").hidden = rows.length === 0;
  $("add-region").disabled = rows.length >= state.options.limits.max_regions;
}

// The regions' fields of a request; false (after showing why) when a row is incomplete.
function appendRegions(body) {
  for (const row of $("region-rows").children) {
    const mask = row.querySelector(".region-mask");
    const painting = row.querySelector(".region-style");
    const upload = row.querySelector(".region-upload");
    if (!mask.files[0]) { showError(`${mask.name}: choose a mask`); return false; }
    body.append(mask.name, mask.files[0], mask.files[0].name);
    if (painting.value !== "upload") body.append(painting.name, painting.value);
    else if (upload.files[0]) body.append(upload.name, upload.files[0], upload.files[0].name);
    else { showError(`${upload.name}: choose a painting`); return false; }
  }
  return true;
}

function choosePhoto(file) {
  state.photo = file;
  const thumb = $("photo-thumb");
  thumb.src = URL.createObjectURL(file);
  thumb.hidden = false;
  $("photo-text").textContent = file.name;
}

async function submit() {
  const error = $("form-error");
  error.textContent = "";
  for (const field of document.querySelectorAll(".invalid")) field.classList.remove("invalid");
  if (!state.photo) return showError("content: choose a photo first", "content");
  const body = new FormData();
  body.append("mode", state.mode);
  body.append("content", state.photo, state.photo.name);
  const uploadUsable = state.mode === "optimise" || state.options.any_painting_fast;
  const regions = state.mode === "optimise" && $("region-rows").children.length > 0;
  const keepRest = regions && $("keep-rest").checked;
  if (keepRest) { /* what no region covers stays the photo: no painting for it */ }
  else if (state.styleFile && uploadUsable) body.append("style", state.styleFile, state.styleFile.name);
  else if (state.styleName) body.append("style_name", state.styleName);
  if (regions && !appendRegions(body)) return;
  const form = document.querySelector(`.settings[data-for="${state.mode}"]`);
  for (const field of form.querySelectorAll("input, select")) {
    if (field.value !== "") body.append(field.name, field.value);
  }
  const paint = $("paint");
  paint.disabled = true;
  try {
    const job = await getJSON("/api/jobs", { method: "POST", body });
    await openJob(job.id);
    refreshGallery();
  } catch (err) {
    showError(err.message, err.field);
  } finally {
    paint.disabled = false;
  }
}

function showError(message, field) {
  $("form-error").textContent = message;
  const form = document.querySelector(`.settings[data-for="${state.mode}"]`);
  const input = field && form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (input) {
    input.classList.add("invalid");
    const details = input.closest("details");
    if (details) details.open = true;
  }
}

// --- the open job --------------------------------------------------------------------------

async function openJob(id) {
  if (state.source) state.source.close();
  state.source = null;
  const job = await getJSON(`/api/jobs/${encodeURIComponent(id)}`);
  localStorage.setItem(OPEN_KEY, id);
  state.rows = (await getJSON(`/api/jobs/${id}/history`)).rows;
  state.previewShown = 0;
  showJob(job);
  if (!FINISHED.has(job.status)) follow(job.id);
  markGallery();
}

function follow(id) {
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.source = source;
  source.addEventListener("iteration", (e) => {
    if (!state.job || state.job.id !== id) return;
    const row = JSON.parse(e.data);
    if (!state.rows.length || row.step > state.rows[state.rows.length - 1].step) state.rows.push(row);
  });
  source.addEventListener("job", (e) => {
    if (state.job && state.job.id !== id) return;
    const job = JSON.parse(e.data);
    const changed = !state.job || state.job.status !== job.status;
    showJob(job);
    if (changed) refreshGallery();
  });
  source.addEventListener("end", () => { source.close(); if (state.source === source) state.source = null; });
}

function showJob(job) {
  state.job = job;
  state.jobSeen = performance.now();
  const status = $("status");
  status.textContent = job.status;
  status.dataset.status = job.status;
  status.dataset.job = job.id;
  $("position").textContent = job.status === "queued" && job.position
    ? `position ${job.position} in the queue` + (job.position > 1 ? ` (${job.position - 1} waiting ahead)` : " (next)")
    : "";
  $("message").textContent = job.message || (job.status === "running" && !job.progress.step ? "loading the network…" : "");
  const p = job.progress;
  $("bar").style.width = p.total ? `${(100 * p.step) / p.total}%` : job.status === "done" ? "100%" : "0";
  $("stat-iteration").textContent = p.total && job.mode === "optimise" ? `${p.step} / ${p.total}` : "–";
  $("stat-loss").textContent = p.losses && p.losses.total !== undefined ? p.losses.total.toExponential(3) : "–";
  $("cancel").disabled = FINISHED.has(job.status);
  for (const format of ["png", "jpeg"]) {
    const link = $(`download-${format}`);
    link.hidden = !job.result;
    if (job.result) link.href = `${job.links.result}?format=${format}&download=true`;
  }
  $("settings-line").textContent = describeSettings(job);
  showPicture(job);
  tick();
  drawCurve();
  markGallery();
}

function styleLabel(name) {
  const found = state.options.styles.find((s) => s.name === name);
  return found ? found.label : name;
}

function describeSettings(job) {
  const parts = [`${job.mode === "fast" ? "fast network" : "optimisation"} · ${styleLabel(job.style)}`];
  for (const [key, value] of Object.entries(job.settings)) parts.push(`${key.replace(/_/g, " ")} ${value}`);
  if (job.seed !== null && job.seed !== undefined) parts.push(`seed ${job.seed}`);
  return parts.join(" · ");
}

function showPicture(job) {
  const live = $("live");
  const compare = $("compare");
  const placeholder = $("placeholder");
  if (FINISHED.has(job.status) && job.result) {
    live.hidden = true;
    placeholder.hidden = true;
    compare.hidden = false;
    $("compare-before").src = job.links.content;
    $("compare-after").src = `${job.links.result}?t=${job.finished}`;
    return;
  }
  compare.hidden = true;
  if (job.preview && job.links.preview) {
    placeholder.hidden = true;
    live.hidden = false;
    if (job.preview !== state.previewShown) {
      // Swap once loaded, so the picture never blanks between two previews.
      const next = new Image();
      next.onload = () => { if (state.job && state.job.id === job.id) live.src = next.src; };
      next.src = job.links.preview;
      state.previewShown = job.preview;
    }
  } else {
    live.hidden = true;
    placeholder.hidden = false;
    const words = { queued: "Waiting for its turn…", running: "Loading the network…", failed: "This job failed.",
      cancelled: "Cancelled before the first iteration.", interrupted: "Interrupted before the first iteration." };
    placeholder.firstElementChild.textContent = words[job.status] || "Your painting appears here.";
  }
}

function tick() {
  const job = state.job;
  if (!job) return;
  const running = job.status === "running";
  const since = running ? (performance.now() - state.jobSeen) / 1000 : 0;
  const elapsed = job.started ? (running ? Math.max(job.progress.seconds + since, 0) : job.progress.seconds) : null;
  $("stat-elapsed").textContent = elapsed === null || (!running && !job.progress.step) ? "–" : duration(elapsed);
  const eta = running && job.progress.eta !== null ? Math.max(job.progress.eta - since, 0) : null;
  $("stat-eta").textContent = eta === null ? "–" : duration(eta);
}

function duration(seconds) {
  if (seconds < 59.5) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

function wireStage() {
  $("cancel").addEventListener("click", async () => {
    if (!state.job) return;
    $("cancel").disabled = true;
    try {
      showJob(await getJSON(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }));
    } catch (err) {
      $("message").textContent = err.message;
    }
  });
  const slider = $("compare-slider");
  slider.addEventListener("input", () => {
    $("compare-after-clip").style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    $("compare-line").style.left = `${slider.value}%`;
  });
  window.addEventListener("resize", drawCurve);
}

// --- the loss curve ------------------------------------------------------------------------

function drawCurve() {
  const canvas = $("curve");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 640;
  const height = canvas.clientHeight || 180;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const rows = state.rows;
  const pad = { left: 56, right: 12, top: 10, bottom: 22 };
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#6f685e";
  if (!rows.length) {
    g.fillText("the loss appears here once the first iterations are done", pad.left, height / 2);
    return;
  }
  const terms = [["total", "#24211d", 2.2], ["content", "#2d4a8a", 1.2], ["style", "#b5532c", 1.2]];
  const values = rows.flatMap((r) => terms.map(([t]) => r[t])).filter((v) => v > 0 && Number.isFinite(v));
  values.sort((a, b) => a - b);
  // The lowest 2 % left out of the range: a run started from the photo has a content loss near
  // zero at first, which would squash every other value into a band.
  let lo = Math.log10(values[Math.floor(0.02 * values.length)]);
  let hi = Math.log10(values[values.length - 1]);
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const last = Math.max(state.job && state.job.progress.total || 0, rows[rows.length - 1].step, 2);
  const x = (step) => pad.left + ((step - 1) / (last - 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (Math.log10(v) - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  g.strokeStyle = "#e2dcd0";
  g.lineWidth = 1;
  for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) {
    g.beginPath(); g.moveTo(pad.left, y(10 ** p)); g.lineTo(width - pad.right, y(10 ** p)); g.stroke();
    g.fillText(`1e${p}`, 8, y(10 ** p) + 4);
  }
  // Dashed lines where a finer scale starts (its loss is not comparable, so the curve jumps).
  g.setLineDash([4, 4]);
  g.strokeStyle = "#9a9184";
  for (let i = 1; i < rows.length; i++) {
    if (rows[i].scale === rows[i - 1].scale) continue;
    const at = x(rows[i].step);
    g.beginPath(); g.moveTo(at, pad.top); g.lineTo(at, height - pad.bottom); g.stroke();
    g.fillText(`${rows[i].width}×${rows[i].height}`, at + 4, pad.top + 10);
  }
  g.setLineDash([]);
  g.fillText("1", pad.left, height - 6);
  g.fillText(String(last), width - pad.right - 24, height - 6);
  g.save();
  g.beginPath();
  g.rect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  g.clip();
  for (const [term, colour, lineWidth] of terms) {
    g.strokeStyle = colour;
    g.lineWidth = lineWidth;
    g.beginPath();
    let started = false;
    for (const row of rows) {
      const v = row[term];
      if (!(v > 0 && Number.isFinite(v))) { started = false; continue; }
      if (started) g.lineTo(x(row.step), y(v)); else g.moveTo(x(row.step), y(v));
      started = true;
    }
    g.stroke();
  }
  g.restore();
}

// --- the gallery ---------------------------------------------------------------------------

async function refreshGallery() {
  let listing;
  try {
    listing = await getJSON("/api/jobs?limit=60");
    const status = await getJSON("/api/status");
    $("server-status").innerHTML = "";
    const dot = document.createElement("span");
    dot.className = status.worker.alive ? "dot" : "dot off";
    $("server-status").append(dot, `${status.worker.alive ? "ready" : "worker stopped"} · ${status.waiting} of ${status.max_queue} queue places taken`);
  } catch (err) {
    $("server-status").textContent = "the server does not answer";
    return;
  }
  const gallery = $("gallery");
  const known = new Map([...gallery.querySelectorAll(".card")].map((c) => [c.dataset.id, c]));
  const cards = listing.jobs.map((job) => card(job, known.get(job.id)));
  gallery.replaceChildren(...(cards.length ? cards : [Object.assign(document.createElement("p"), { className: "hint", textContent: "Nothing painted yet." })]));
  markGallery();
}

function card(job, existing) {
  const el = existing || document.createElement("button");
  const picture = job.links.result || job.links.preview || job.links.content;
  const key = `${job.status}|${picture}`;
  if (el.dataset.key === key) return el;
  el.type = "button";
  el.className = "card";
  el.dataset.id = job.id;
  el.dataset.key = key;
  el.textContent = "";
  const pic = document.createElement("div");
  pic.className = "pic";
  const img = document.createElement("img");
  img.alt = "";
  img.src = job.links.result ? `${picture}?t=${job.finished}` : picture;
  pic.append(img);
  const meta = document.createElement("div");
  meta.className = "meta";
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = styleLabel(job.style);
  what.title = `${job.content_name} · ${job.style} · ${new Date(job.created * 1000).toLocaleString()}`;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.status = job.status;
  badge.textContent = job.status === "queued" && job.position ? `queued #${job.position}` : job.status;
  meta.append(what, badge);
  el.append(pic, meta);
  if (!existing) el.addEventListener("click", () => openJob(el.dataset.id));
  return el;
}

function markGallery() {
  for (const c of document.querySelectorAll("#gallery .card")) c.classList.toggle("open", !!state.job && c.dataset.id === state.job.id);
}
