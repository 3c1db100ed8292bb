"""Figures and HTML pages that show style-transfer runs the way Gatys et al. (2016) do.

Everything here draws on ``matplotlib.figure.Figure`` objects with the Agg canvas, never on
pyplot, so no global figure state is created and no display is needed. Figures are rendered to
pixels and written through :func:`impasto.images.save_image`, so every file appears atomically
and this module never touches Pillow. Grids place each image pixel for pixel (no resampling),
so a panel cut out of a grid equals the image it shows.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from torch import Tensor

from impasto import images, storage
from impasto.errors import InputError

PathLike = str | os.PathLike[str]
ImageLike = PathLike | Tensor

LOSS_TERMS = ("total", "content", "style", "tv")
STRIP_ITERATIONS = (0, 10, 50, 100, 200, 500, 1000, 2000, 5000)
THUMBNAIL_SIZE = 512
_CURVES_DPI = 100
# Grids are drawn at 72 dpi, where one typographic point is one pixel, so font sizes are pixels.
_GRID_DPI = 72
_CHAR_WIDTH = 0.62  # average advance of DejaVu Sans, in font sizes


# --- image grids ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of a grid of equally sized panels, with optional labels.

    ``titles`` puts a caption strip above every panel, ``left`` is the width of the row-label
    column and ``top`` the height of the column-label strip. Coordinates count from the top left.
    """

    rows: int
    cols: int
    cell: tuple[int, int]  # (height, width) of every panel
    pad: int
    font: int
    title: int
    left: int
    top: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole figure."""
        height, width = self.cell
        return (
            self.left + self.cols * width + (self.cols + 1) * self.pad,
            self.top + self.rows * (self.title + height) + (self.rows + 1) * self.pad,
        )

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of one panel's pixels, x1 and y1 exclusive."""
        height, width = self.cell
        x0 = self.left + self.pad + col * (width + self.pad)
        y0 = self.top + self.pad + self.title + row * (self.title + height + self.pad)
        return x0, y0, x0 + width, y0 + height

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "cols": self.cols, "panel": [self.cell[1], self.cell[0]], "size": list(self.size)}


def grid_layout(
    rows: int,
    cols: int,
    cell: tuple[int, int],
    *,
    titles: Sequence[Sequence[str]] = (),
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
) -> GridLayout:
    """The geometry :func:`image_grid` uses; fonts shrink until the longest label fits its panel."""
    height, width = cell
    pad = max(4, round(min(cell) / 40))
    texts = [t for line in titles for t in line] + list(col_labels)
    longest = max((_text_width(t) for t in texts), default=0)
    font = max(6, min(18, round(width / 14), math.floor((width + pad) / max(longest, 1))))
    line = round(1.4 * font)
    lines = max((t.count("\n") + 1 for t in col_labels), default=0)
    return GridLayout(
        rows=rows,
        cols=cols,
        cell=(height, width),
        pad=pad,
        font=font,
        title=line if titles else 0,
        left=math.ceil(max((_text_width(t) for t in row_labels), default=0) * font) + pad if row_labels else 0,
        top=lines * line if col_labels else 0,
    )


def _text_width(text: str) -> float:
    return _CHAR_WIDTH * max((len(part) for part in text.split("\n")), default=0)


def image_grid(
    cells: Sequence[Sequence[Tensor | None]],
    path: PathLike,
    *,
    titles: Sequence[Sequence[str]] = (),
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
) -> GridLayout:
    """Write a grid of images (``None`` leaves a panel blank) with labels; return its layout.

    Every panel takes the size of the largest image; smaller ones (coarse scales, references)
    are resized to it. ``titles`` holds one caption per panel, row by row.
    """
    present = [image for row in cells for image in row if image is not None]
    if not present:
        raise ValueError("image_grid needs at least one image")
    largest = max(present, key=lambda t: t.shape[-2] * t.shape[-1])
    cell = (int(largest.shape[-2]), int(largest.shape[-1]))
    layout = grid_layout(len(cells), max(len(r) for r in cells), cell,
                         titles=titles, row_labels=row_labels, col_labels=col_labels)
    fig = _pixel_figure(layout.size)
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            x0, y0, _, _ = layout.box(r, c)
            if image is not None:
                fig.figimage(_pixels(images.resize_to(image, *cell)), xo=x0, yo=layout.size[1] - y0 - cell[0],
                             origin="upper")
            if titles and c < len(titles[r]):
                _label(fig, layout, titles[r][c], x0, y0 - layout.title / 2, "left")
    for r, text in enumerate(row_labels):
        x0, y0, _, y1 = layout.box(r, 0)
        _label(fig, layout, text, x0 - layout.pad, (y0 + y1) / 2, "right")
    for c, text in enumerate(col_labels):
        x0, _, x1, _ = layout.box(0, c)
        _label(fig, layout, text, (x0 + x1) / 2, layout.top / 2, "center")
    _save(fig, path)
    return layout


def _pixel_figure(size: tuple[int, int]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(size[0] / _GRID_DPI, size[1] / _GRID_DPI), dpi=_GRID_DPI, facecolor="white")


def _label(fig: Any, layout: GridLayout, text: str, x: float, y_from_top: float, align: str) -> None:
    # transform=None places text in pixels (from the bottom left), matching figimage's offsets.
    fig.text(x, layout.size[1] - y_from_top, text, fontsize=layout.font, ha=align, va="center",
             multialignment="center", transform=None)


def _pixels(image: Tensor) -> np.ndarray:
    """(H, W, 3) uint8, rounded exactly as ``images.to_pil`` rounds, so grids match saved files."""
    return np.asarray(images.to_pil(image))


def _save(fig: Any, path: PathLike) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    images.save_image(images.load_image(rgba), path)


def with_inset(image: Tensor, inset: Tensor, fraction: float = 0.3, border: int = 2) -> Tensor:
    """``image`` with ``inset`` scaled to ``fraction`` of its long side in the bottom-left
    corner, framed in white, as the paintings appear in the paper's Fig. 3. Returns a new tensor."""
    height, width = image.shape[-2:]
    small = images.resize_long_side(inset, max(8, round(fraction * max(height, width))))
    h = min(int(small.shape[-2]), height - 2 * border)
    w = min(int(small.shape[-1]), width - 2 * border)
    out = image.clone()
    out[..., height - h - 2 * border:, : w + 2 * border] = 1.0
    out[..., height - h - border: height - border, border: w + border] = small[..., :h, :w]
    return out


# --- loss curves ---------------------------------------------------------------------------


def loss_curves(history: Sequence[Mapping[str, Any]], path: PathLike) -> tuple[str, ...]:
    """Plot the weighted loss terms against iterations and against seconds (log scale), with
    the start of each scale marked; terms that are zero throughout are left out. Returns the
    terms plotted."""
    rows = _check_rows(history)
    terms = tuple(t for t in LOSS_TERMS if any(_positive(r.get(t)) is not None for r in rows))
    _curves([(t, rows, t) for t in terms], path, "weighted loss", marks=rows)
    return terms


def comparison_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: PathLike,
                      term: str = "total") -> None:
    """Plot one loss ``term`` of several runs against iterations and against seconds."""
    _curves([(label, _check_rows(rows), term) for label, rows in histories.items()], path, f"{term} loss", marks=())


def _check_rows(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = list(history)
    if not rows:
        raise ValueError("an empty history has no curves")
    return rows


def _curves(series: Sequence[tuple[str, Sequence[Mapping[str, Any]], str]], path: PathLike, ylabel: str,
            marks: Sequence[Mapping[str, Any]]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=_CURVES_DPI, facecolor="white", layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, xlabel in zip(axes, ("iteration", "seconds"), ("iteration", "wall-clock seconds"), strict=True):
        for label, rows, term in series:
            values = [_positive(r.get(term)) for r in rows]
            ax.plot([r[key] for r in rows], [np.nan if v is None else v for v in values], label=label,
                    **_LINE_STYLES.get(label, {"lw": 1.4}))
        _mark_scales(ax, marks, key)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(frameon=False)
    _save(fig, path)


# The total is drawn broad and faint beneath the terms, which it would otherwise hide where one dominates.
_LINE_STYLES: dict[str, dict[str, Any]] = {"total": {"color": "black", "lw": 3.0, "alpha": 0.35}}


def _positive(value: Any) -> float | None:
    # A log axis cannot show zero, negative or non-finite values; they become gaps.
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _mark_scales(ax: Any, rows: Sequence[Mapping[str, Any]], key: str) -> None:
    starts = [i for i, r in enumerate(rows) if i == 0 or r.get("scale") != rows[i - 1].get("scale")]
    if len(starts) < 2:
        return
    for i in starts:
        # The boundary sits half-way into the first step of the new scale.
        x = rows[i][key] if i == 0 else (rows[i - 1][key] + rows[i][key]) / 2
        ax.axvline(x, color="0.5", ls="--", lw=0.8)
        ax.text(x, 0.98, f" {rows[i].get('width')}x{rows[i].get('height')}", transform=ax.get_xaxis_transform(),
                va="top", ha="left", fontsize=8, color="0.35")


# --- iteration strips ----------------------------------------------------------------------


def pick_snapshots(available: Sequence[int], wanted: Sequence[int] = STRIP_ITERATIONS) -> list[int]:
    """The available iterations nearest to each wanted one that the run reached, plus the last."""
    if not available:
        return []
    last = max(available)
    chosen = {min(available, key=lambda a: (abs(a - t), a)) for t in (*(w for w in wanted if w <= last), last)}
    return sorted(chosen)


def iteration_strip(snapshots: Sequence[tuple[int, ImageLike]], path: PathLike,
                    iterations: Sequence[int] = STRIP_ITERATIONS) -> list[int]:
    """One row of snapshots, labelled by iteration, nearest to ``iterations``; returns the
    iterations shown. Snapshots are image files or (1, 3, H, W) tensors in [0, 1]."""
    if not snapshots:
        raise ValueError("an iteration strip needs at least one snapshot")
    by_iteration = dict(snapshots)
    chosen = pick_snapshots(list(by_iteration), iterations)
    row = [_as_tensor(by_iteration[i]) for i in chosen]
    image_grid([row], path, titles=[[f"iteration {i}" for i in chosen]])
    return chosen


def _as_tensor(image: ImageLike) -> Tensor:
    return image if isinstance(image, Tensor) else images.load_image(image)


# --- HTML ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlFigure:
    """An image file inside the page's folder (a relative name) and its caption."""

    file: str
    caption: str


@dataclass(frozen=True)
class Table:
    """A table with a title, a header row and rows of cells (converted with ``str``)."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=tuple)

    def markdown(self) -> str:
        def line(cells: Sequence[Any]) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        return "\n".join([line(self.header), line(["---"] * len(self.header)), *(line(r) for r in self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{_esc(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>\n" for row in self.rows)
        return f"<h2>{_esc(self.title)}</h2>\n<table>\n<tr>{head}</tr>\n{body}</table>\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;margin-top:.3em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.thumbs{display:flex;flex-wrap:wrap;gap:1em}.thumbs figure{margin:0;max-width:360px}"""


def write_index(folder: PathLike, title: str, figures: Sequence[HtmlFigure], *, intro: str = "",
                tables: Sequence[Table] = (), links: Sequence[HtmlFigure] = (),
                thumbnails: Sequence[HtmlFigure] = ()) -> Path:
    """Write ``folder/index.html``: a self-contained page (inline CSS, relative links only)
    showing ``thumbnails`` side by side, then ``tables``, ``figures`` and ``links``."""
    out = Path(folder)
    for item in (*figures, *links, *thumbnails):
        _check_relative(out, item.file)
    parts = [f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{_esc(title)}</title>",
             f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n<h1>{_esc(title)}</h1>"]
    if intro:
        parts.append(f"<p>{_esc(intro)}</p>")
    if thumbnails:
        parts.append("<div class=\"thumbs\">\n" + "".join(_figure(f) for f in thumbnails) + "</div>")
    parts += [t.html() for t in tables]
    parts += [_figure(f) for f in figures]
    if links:
        items = "".join(f"<li><a href=\"{_href(f.file)}\">{_esc(f.caption)}</a></li>\n" for f in links)
        parts.append(f"<ul>\n{items}</ul>")
    parts.append("</body>\n</html>\n")
    path = out / "index.html"
    storage.write_text(path, "\n".join(parts))
    return path


def _figure(item: HtmlFigure) -> str:
    href = _href(item.file)
    return (f"<figure><a href=\"{href}\"><img src=\"{href}\" alt=\"{_esc(item.caption)}\"></a>"
            f"<figcaption>{_esc(item.caption)}</figcaption></figure>\n")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(name: str) -> str:
    return html.escape(quote(Path(name).as_posix()), quote=True)


def _check_relative(folder: Path, name: str) -> None:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{name}: links in {folder}/index.html must stay inside the folder")


# --- run reports ---------------------------------------------------------------------------

# The output is shown up to this long side (the page scales it to its width); inputs smaller.
OUTPUT_VIEW_SIZE = 1024

_RUN_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222;
background:#faf9f6}h1{font-family:Georgia,serif;margin:.2em 0}h2{font-family:Georgia,serif;margin:1.6em 0 .5em}
.summary{color:#555;margin:.2em 0 1em}.summary b{color:#222}.missing{color:#a33}
.hero{margin:0;background:#1e1c19;border-radius:8px;display:flex;justify-content:center;padding:8px}
.hero a{display:block;width:100%}.hero img{width:100%;height:auto;max-height:85vh;object-fit:contain}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.pair figure,.strip figure,.paintings figure{margin:0}
.pair img{width:100%;aspect-ratio:var(--aspect);object-fit:contain;background:#1e1c19;border-radius:6px}
.strip{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.strip img{width:100%;border-radius:6px}.paintings{display:flex;gap:12px;flex-wrap:wrap}
.paintings img{max-width:260px;max-height:260px;border-radius:6px}
figcaption{color:#555;font-size:.9em;margin-top:.3em}figure img{display:block}
.curves img{width:100%;border:1px solid #ddd;background:white}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0eee9}td.default{color:#777}details summary{cursor:pointer;color:#335}"""


def write_report(run_dir: PathLike, out_dir: PathLike | None = None) -> Path:
    """Write a report of one ``impasto transfer`` run into its folder; return its index.html.

    The folder holds ``history.json`` (``--history``) and optionally snapshots ``iter_NNNNN.png``
    (``--snapshot-every N --snapshot-dir RUN_DIR``). The page shows the output first and
    largest, then the photo beside it (before and after), the iteration snapshots large enough
    to see, the loss curves, and the settings, those that differ from ``TransferConfig``'s
    defaults first. Written beside the run's files: ``loss_curves.png``, ``strip.png`` (with
    snapshots; the snapshots in one image, for papers), PNG views ``thumb_*.png`` of the inputs
    and output that can be found, and ``index.html``. With ``out_dir``, these go there instead,
    with copies of the history and of the snapshots the page shows, so that its links resolve.
    """
    folder = Path(run_dir)
    run = read_run(folder)
    out = folder if out_dir is None else storage.check_folder(out_dir)
    terms = loss_curves(run["history"], out / "loss_curves.png")
    snapshots, missing = _snapshots(folder)
    shown = iteration_strip(snapshots, out / "strip.png") if snapshots else []
    if out.resolve() != folder.resolve():
        _copy_linked(folder, out, shown)
    views, unseen = _thumbnails(run, folder, out)
    missing += unseen
    page = _run_page(folder, run, views, shown, terms, missing)
    path = out / "index.html"
    storage.write_text(path, page)
    return path


def _copy_linked(folder: Path, out: Path, shown: Sequence[int]) -> None:
    """The run's files that a report written outside its folder links to: the history and the
    snapshots shown, copied byte for byte."""
    snapshots = storage.snapshots_in(folder)
    for source in (folder / storage.RUN_HISTORY, *(snapshots[i] for i in shown)):
        storage.write_bytes(out / source.name, source.read_bytes())


def _run_page(folder: Path, run: Mapping[str, Any], views: dict[str, tuple[HtmlFigure, Tensor]],
              shown: Sequence[int], terms: Sequence[str], missing: Sequence[str]) -> str:
    title = f"impasto run: {folder.resolve().name}"
    parts = [f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{_esc(title)}</title>",
             f"<style>\n{_RUN_CSS}\n</style>\n</head>\n<body>\n<h1>{_esc(title)}</h1>",
             f"<p class=\"summary\">{_summary(run)}</p>"]
    if missing:
        unseen = _esc("; ".join(missing))
        parts.append(f"<p class=\"missing\">Files not found or unreadable, so not shown: {unseen}.</p>")
    output = views.get("output")
    if output is not None:
        parts.append(f"<figure class=\"hero\"><a href=\"{_href(output[0].file)}\"><img src=\"{_href(output[0].file)}\" "
                     f"alt=\"the output\"></a></figure>")
    if output is not None and "content" in views:
        height, width = output[1].shape[-2:]
        pair = "".join(_plain_figure(views[k][0], caption) for k, caption in
                       (("content", "before: the photo"), ("output", "after: the output")))
        parts.append(f"<h2>Before and after</h2>\n<div class=\"pair\" style=\"--aspect:{width}/{height}\">{pair}</div>")
    paintings = [v[0] for k, v in views.items() if k.startswith("style_")]
    if paintings:
        parts.append("<h2>Painting</h2>\n<div class=\"paintings\">" + "".join(_plain_figure(f, f.caption)
                                                                            for f in paintings) + "</div>")
    if shown:
        tiles = "".join(_plain_figure(HtmlFigure(storage.snapshot_name(i), ""), f"iteration {i}") for i in shown)
        parts.append(f"<h2>Iterations</h2>\n<div class=\"strip\">{tiles}</div>\n"
                     f"<p class=\"summary\">The image at iterations {', '.join(map(str, shown))}. "
                     f"<a href=\"strip.png\">All in one image</a>.</p>")
    parts.append(f"<h2>Loss</h2>\n<figure class=\"curves\"><img src=\"loss_curves.png\" alt=\"loss curves\">"
                 f"<figcaption>Weighted losses ({', '.join(terms)}) against iterations and seconds; dashed lines mark "
                 f"the start of each scale.</figcaption></figure>")
    parts += [settings_table(run).html(), *_config_tables(run.get("config"))]
    parts.append("<p><a href=\"history.json\">per-iteration history (JSON)</a></p>\n</body>\n</html>\n")
    return "\n".join(parts)


def _plain_figure(item: HtmlFigure, caption: str) -> str:
    href = _href(item.file)
    return (f"<figure><a href=\"{href}\"><img src=\"{href}\" alt=\"{_esc(caption)}\"></a>"
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _summary(run: Mapping[str, Any]) -> str:
    """One line: iterations, time, where, the output's loss (the lowest at the last scale)."""
    rows = run["history"]
    last = rows[-1]
    state = "" if run.get("complete", True) else " <b>(stopped early: the best image so far)</b>"
    seconds = run.get("seconds", last["seconds"])
    where = f"{run.get('device', '?')} {run.get('precision', '')}".strip()
    loss = min(r["total"] for r in rows if r.get("scale") == last.get("scale"))
    return (f"<b>{len(rows)}</b> iterations in <b>{_esc(f'{seconds:.1f}')} s</b> on {_esc(where)}; "
            f"final loss <b>{loss:.4g}</b>{state}")


def read_run(folder: Path) -> dict[str, Any]:
    """The parsed ``history.json`` of a run folder; InputError (one line) if it cannot be used."""
    if not folder.is_dir():
        raise InputError(f"{folder}: run folder not found" if not folder.exists() else f"{folder}: not a folder")
    path = folder / storage.RUN_HISTORY
    if not path.is_file():
        raise InputError(f"{folder}: no history.json in the folder (write one with "
                         f"impasto transfer ... --history {folder / 'history.json'})")
    run = storage.read_json(path, "file")
    rows = run.get("history") if isinstance(run, dict) else None
    needed = ("iteration", "seconds", "total")
    if not isinstance(rows, list) or not rows or not all(
        isinstance(r, dict) and all(isinstance(r.get(k), (int, float)) for k in needed) for r in rows
    ):
        raise InputError(f"{path}: not an impasto history (expected an object whose 'history' is a non-empty "
                         "list of rows with iteration, seconds and total)")
    return run


def settings_table(run: Mapping[str, Any]) -> Table:
    """The run's inputs, where it ran and its final losses."""
    last = run["history"][-1]
    rows: list[tuple[str, Any]] = [
        ("content", run.get("content", "?")),
        ("styles", ", ".join(map(str, run.get("styles", [])))),
        ("output", run.get("output", "?")),
        ("device", f"{run.get('device', '?')} {run.get('precision', '')}".strip()),
        ("seconds", run.get("seconds", last["seconds"])),
        ("iterations", len(run["history"])),
        *((f"final {t} loss", f"{last[t]:.4g}") for t in LOSS_TERMS if isinstance(last.get(t), (int, float))),
    ]
    return Table("The run", ("", "value"), rows)


def changed_settings(config: Mapping[str, Any]) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any]]]:
    """The settings of a run's config that differ from ``TransferConfig``'s defaults, as
    (name, value, default), and the others as (name, value)."""
    from impasto.config import TransferConfig, to_dict

    defaults = to_dict(TransferConfig())
    changed = [(k, v, defaults.get(k, "–")) for k, v in config.items() if k not in defaults or defaults[k] != v]
    same = [(k, v) for k, v in config.items() if k in defaults and defaults[k] == v]
    return changed, same


def _config_tables(config: Any) -> list[str]:
    if not isinstance(config, dict):
        return []
    changed, same = changed_settings(config)
    body = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td><td class=\"default\">{_esc(d)}</td></tr>\n"
                   for k, v, d in changed)
    parts = ["<h2>Settings changed from the defaults</h2>\n<table>\n<tr><th>setting</th><th>this run</th>"
             f"<th>default</th></tr>\n{body}</table>" if changed else "<p>Every setting at its default.</p>"]
    if same:
        rest = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>\n" for k, v in same)
        parts.append(f"<details><summary>The other {len(same)} settings, at their defaults</summary>\n<table>\n"
                     f"<tr><th>setting</th><th>value</th></tr>\n{rest}</table></details>")
    return parts


def _snapshots(folder: Path) -> tuple[list[tuple[int, ImageLike]], list[str]]:
    """The snapshots a strip shows, loaded (only those: a run may hold hundreds), and messages
    about those that could not be read."""
    paths = storage.snapshots_in(folder)
    found: list[tuple[int, ImageLike]] = []
    problems = []
    for iteration in pick_snapshots(list(paths)):
        try:
            found.append((iteration, images.load_image(paths[iteration])))
        except InputError as exc:
            problems.append(str(exc))
    return found, problems


def _thumbnails(run: Mapping[str, Any], folder: Path,
                out: Path) -> tuple[dict[str, tuple[HtmlFigure, Tensor]], list[str]]:
    """Views of the inputs and output of the run in ``folder``, written into ``out``, by role
    ("content", "style_1", ..., "output"), with the image each shows; and messages about those
    not found."""
    sources = [("content", run.get("content"), "content")]
    sources += [(f"style_{i}", s, f"style {i}") for i, s in enumerate(run.get("styles") or [], 1)]
    sources.append(("output", run.get("output"), "output"))
    shown: dict[str, tuple[HtmlFigure, Tensor]] = {}
    missing = []
    for name, source, caption in sources:
        found = _resolve(source, folder)
        if found is None:
            missing.append(f"{caption} {source}")
            continue
        target = out / f"thumb_{name}.png"
        try:
            image = images.load_image(found)
        except InputError as exc:
            missing.append(str(exc))
            continue
        limit = OUTPUT_VIEW_SIZE if name == "output" else THUMBNAIL_SIZE
        if max(image.shape[-2:]) > limit:
            image = images.resize_long_side(image, limit)
        if found.resolve() != target.resolve():
            images.save_image(image, target)
        shown[name] = (HtmlFigure(target.name, f"{caption}: {source}"), image)
    return shown, missing


def _resolve(source: Any, folder: Path) -> Path | None:
    """A path as the run recorded it: relative to where the run started (perhaps here), or moved
    along with the run folder."""
    if not isinstance(source, str) or not source:
        return None
    path = Path(source)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, folder / path]
    candidates.append(folder / path.name)
    return next((p for p in candidates if p.is_file()), None)
