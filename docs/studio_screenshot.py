"""Make docs/studio.png: the studio's page mid-run, as headless Chromium shows it.

    python docs/studio_screenshot.py [--images ../shared/images] [-o docs/studio.png]

Starts ``impasto serve`` on a free port with a temporary data folder, paints two photos with
fast networks (for the gallery), starts an optimisation of the Tübingen photo as *The Starry
Night* at 256 px (from the photo: 40 iterations at 128 px, then 60 at 256 px), queues one more job from a
second browser, and takes the screenshot once the optimisation is well into its final scale.
Takes a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from studio_server import Server  # noqa: E402

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def paint(page: object) -> str:
    """Press Paint; the new job's id."""
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
        page.click("#paint")
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "images")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "studio.png")
    parser.add_argument("--at", type=float, default=0.75, help="fraction of the run done when the shot is taken")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.set_default_timeout(600_000)
                page.goto(server.url + "/")
                page.wait_for_selector("#tiles .tile")
                photos = args.images / "content"
                for photo, style in (("yosemite.jpg", "the_scream"), ("campanile.jpg", "shipwreck")):
                    page.set_input_files("#photo-input", str(photos / photo))
                    page.click(".seg[data-mode=fast]")
                    page.click(f'#tiles .tile[data-name="{style}"]')
                    page.fill(".settings[data-for=fast] [name=size]", "384")
                    server.wait(paint(page), lambda j: j["status"] == "done")
                page.click(".seg[data-mode=optimise]")
                page.set_input_files("#photo-input", str(photos / "tubingen.jpg"))
                page.click('#tiles .tile[data-name="starry_night"]')
                page.click(".settings[data-for=optimise] .more summary")
                settings = {"size": "256", "iterations": "60", "coarse_iterations": "40"}
                for name, value in settings.items():
                    page.fill(f".settings[data-for=optimise] [name={name}]", value)
                page.select_option(".settings[data-for=optimise] [name=init]", "content")
                main_job = paint(page)
                server.wait(main_job, lambda j: j["status"] == "running")
                other = browser.new_page(viewport={"width": 1280, "height": 900})
                other.goto(server.url + "/")
                other.wait_for_selector("#tiles .tile")
                other.set_input_files("#photo-input", str(photos / "waterfall.jpg"))
                other.click('#tiles .tile[data-name="the_scream"]')
                paint(other)
                server.wait(main_job, lambda j: j["status"] != "running" or j["progress"]["step"] >= args.at * (
                    j["progress"]["total"] or 1e9), timeout=1800)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(args.output), full_page=True)
                print(f"wrote {args.output}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
