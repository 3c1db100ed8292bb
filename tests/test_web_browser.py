"""The studio's page in headless Chromium (Debian's, driven by Playwright): upload, watch the
live preview change, cancel keeping the best image; paint to the end and download; two browsers
queueing behind one another; the gallery re-opening past jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto import images
from studio_server import Server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; .ci/run installs it)"),
]
# A quiet, sandbox-free headless Chromium that never reaches the network.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-extensions"]
TIMEOUT_MS = 240_000

# Draws the live image into a canvas and hashes its pixels: the preview counts as changed only
# when the picture itself does.
PIXELS_HASH = """() => {
  const img = document.getElementById("live");
  if (img.hidden || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0;
  for (let i = 0; i < data.length; i++) h = (h * 31 + data[i]) >>> 0;
  return h;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("studio") / "data").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def inputs(tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> tuple[Path, Path]:
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    images.save_image(content64, photo)
    images.save_image(style64, painting)
    return photo, painting


def _page(browser: Any, server: Server) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(server.url + "/")
    page.wait_for_selector("#tiles .tile")
    return page


def _paint(page: Any, photo: Path, *, painting: Path | None = None, mode: str = "optimise", **settings: str) -> str:
    """Fill the form, press Paint; return the new job's id."""
    page.set_input_files("#photo-input", str(photo))
    page.click(f".seg[data-mode={mode}]")
    if painting is not None:
        page.set_input_files("#style-input", str(painting))
    for name, value in settings.items():
        page.fill(f'.settings[data-for={mode}] [name="{name}"]', value)
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
        page.click("#paint")
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()["id"]


def _status(page: Any, job_id: str, status: str) -> None:
    """Wait until the page shows job ``job_id`` in ``status``."""
    page.wait_for_function("([id, status]) => { const shown = document.getElementById('status').dataset; "
                           "return shown.job === id && shown.status === status; }", arg=[job_id, status])


def test_live_preview_changes_and_cancel_keeps_the_best_image(browser: Any, server: Server,
                                                              inputs: tuple[Path, Path]) -> None:
    page = _page(browser, server)
    # Two scales, 128 px then 256 px, the first one short: from noise a cancel keeps an image once
    # the picture has formed, here once the first scale has finished.
    page.click("details.more summary")
    job_id = _paint(page, inputs[0], painting=inputs[1], size="256", iterations="3000", coarse_iterations="5")
    _status(page, job_id, "running")
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while len(set(seen)) < 3 and time.monotonic() < deadline:
        value = page.evaluate(PIXELS_HASH)
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
        time.sleep(0.1)
    assert len(set(seen)) >= 3, "the live preview did not change while the job ran"
    assert page.locator("#stat-iteration").inner_text() != "–"
    while server.get(f"/api/jobs/{job_id}")["progress"]["step"] <= 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    page.click("#cancel")
    _status(page, job_id, "cancelled")
    job = server.get(f"/api/jobs/{job_id}")
    assert job["result"] and 0 < job["progress"]["step"] < 3000
    assert "the best image so far is kept" in page.locator("#message").inner_text()
    # The before/after view shows the kept image, which can be downloaded.
    assert page.locator("#compare").is_visible() and page.locator("#download-png").is_visible()
    kept = images.load_image(page.request.get(server.url + job["links"]["result"]).body())
    assert kept.shape[-2:] == images.long_side_shape(*images.load_image(inputs[0]).shape[-2:], 256)
    assert page.errors == []
    page.context.close()


def test_paint_to_the_end_and_download(browser: Any, server: Server, inputs: tuple[Path, Path],
                                       tmp_path: Path) -> None:
    page = _page(browser, server)
    page.click('#tiles .tile[data-name="starry_night"]')
    job_id = _paint(page, inputs[0], painting=None, size="64", iterations="4")
    _status(page, job_id, "done")
    assert page.locator("#stat-iteration").inner_text() == "4 / 4"
    for fmt, suffix in (("png", ".png"), ("jpeg", ".jpg")):
        with page.expect_download() as download:
            page.click(f"#download-{fmt}")
        saved = tmp_path / f"download{suffix}"
        download.value.save_as(saved)
        assert download.value.suggested_filename == f"impasto-{job_id}{suffix}"
        assert images.load_image(saved).shape[-2:] == images.load_image(inputs[0]).shape[-2:]
    # The comparison slider moves the divide between photo and painting.
    page.locator("#compare-slider").fill("20")
    assert "20%" in page.locator("#compare-after-clip").evaluate("e => e.style.clipPath")

    # Fast mode: a shipped network, done at once.
    fast = _paint(page, inputs[0], mode="fast", size="64")
    _status(page, fast, "done")
    assert page.locator("#compare").is_visible()
    assert server.get(f"/api/jobs/{fast}")["mode"] == "fast"
    # Fast mode with an uploaded painting: the installed any-painting network, at half strength.
    uploaded = _paint(page, inputs[0], painting=inputs[1], mode="fast", size="64", strength="0.5")
    _status(page, uploaded, "done")
    job = server.get(f"/api/jobs/{uploaded}")
    assert job["style"] == "uploaded: painting.png" and job["settings"]["strength"] == 0.5
    assert page.locator("#compare").is_visible()
    assert page.errors == []
    page.context.close()


def test_two_browsers_queue_and_both_finish_in_order(browser: Any, server: Server, inputs: tuple[Path, Path]) -> None:
    first, second = _page(browser, server), _page(browser, server)
    a = _paint(first, inputs[0], painting=inputs[1], size="64", iterations="15")
    _status(first, a, "running")
    b = _paint(second, inputs[0], painting=inputs[1], size="64", iterations="3")
    _status(second, b, "queued")
    position = second.locator("#position").inner_text()
    assert position.startswith("position 1 in the queue"), position
    _status(first, a, "done")
    _status(second, b, "done")
    job_a, job_b = server.get(f"/api/jobs/{a}"), server.get(f"/api/jobs/{b}")
    assert job_a["finished"] <= job_b["started"]
    # The gallery lists jobs newest first and re-opens any of them.
    second.wait_for_function(f"document.querySelector('#gallery .card').dataset.id === '{b}'")
    second.click(f'#gallery .card[data-id="{a}"]')
    second.wait_for_function(f"document.querySelector('#gallery .card.open').dataset.id === '{a}'")
    assert second.locator("#stat-iteration").inner_text() == "15 / 15"
    assert first.errors == [] and second.errors == []
    first.context.close()
    second.context.close()
