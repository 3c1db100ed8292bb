"""Every ``impasto`` command the README and the docs show runs as shown, at a tiny size.

Each document's ```sh blocks are read in order; every line (or ``&&``-joined part of a line) that
starts with ``impasto`` or ``.venv/bin/impasto`` is run, in a folder holding the generic files
the docs use (photo.jpg, painting.jpg, a.jpg … d.jpg, the paintings of Fig. 3 by name, clip.mp4,
photos/, paintings/, and the package's examples and models at src/impasto/), one folder per
document so that a command may use what an earlier one wrote. The only change to a command is a
few options appended to make it tiny (a later option wins in argparse): ``TINY`` lists them per
subcommand. The studio is started, asked for its options and stopped. Commands that need a GPU
are shown in ```text blocks and are not run.
"""

from __future__ import annotations

import itertools
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from conftest import EXAMPLES, training_photos
from impasto import images
from impasto.cli import main
from studio_server import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TRANSFER = ["--size", "48", "--iterations", "2", "--scales", "1"]
FIGURES = ["--size", "48", "--iterations", "2", "--quiet"]
SCALED_FIGURES = [*FIGURES, "--scales", "1"]
TRAINING = ["--iterations", "2", "--batch-size", "1", "--crop-size", "32", "--width", "8", "--blocks", "1",
            "--kernel", "3", "--holdout-percent", "50", "--checkpoint-every", "1", "--quiet"]
TRAIN = [*TRAINING, "--style-size", "32", "--preview-every", "1"]
TINY: dict[str, list[str]] = {
    "transfer": TRANSFER,
    "transfer-video": TRANSFER,
    "gallery": SCALED_FIGURES,
    "compare-optimizers": [*FIGURES, "--adam-learning-rates", "0.05"],
    "compare-init": FIGURES,
    "tradeoff": [*SCALED_FIGURES, "--ratios", "1e-3"],
    "apply": ["--size", "48"],
    "train": TRAIN,
    "train-arbitrary": [*TRAINING, "--style-crop-size", "32", "--painting-holdout-percent", "50",
                        "--validation-photos", "1", "--validation-paintings", "1", "--validate-every", "1"],
}


def tiny(words: list[str]) -> list[str]:
    """The options that make a command tiny; a training that continues a model keeps its layout
    and its paintings' size."""
    extra = TINY.get(words[1], [])
    if "--init-from" in words:
        layout = {"--width", "--blocks", "--kernel", "--style-crop-size"}
        extra = [a for i, a in enumerate(extra) if a not in layout and (i == 0 or extra[i - 1] not in layout)]
    return extra


def documented_commands(doc: Path) -> list[str]:
    """The impasto commands of ``doc``'s ```sh blocks, in order, comments removed."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", doc.read_text(), flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                # A redirection of stdout is the shell's business, not the command's.
                words = words[:next((i for i, w in enumerate(words) if w in (">", ">>", "|")), len(words))]
                if words and words[0] in ("impasto", ".venv/bin/impasto"):
                    commands.append(shlex.join(["impasto", *words[1:]]))
    return commands


def _sandbox(folder: Path) -> Path:
    """The files the docs' commands name, small."""
    photo = images.resize_long_side(images.load_image(EXAMPLES / "content" / "tubingen.jpg"), 96)
    paintings = sorted((EXAMPLES / "style").glob("*.jpg"))
    for name in ("photo.jpg", "tubingen.jpg"):
        images.save_image(photo, folder / name)
    for name, source in zip(("painting.jpg", "a.jpg", "b.jpg", "c.jpg", "d.jpg", "style.jpg", "scream.jpg",
                                           "starry_night.jpg", "the_scream.jpg", "shipwreck.jpg",
                                           "composition_vii.jpg", "seated_nude.jpg"),
                            itertools.cycle(paintings), strict=False):
        images.save_image(images.resize_long_side(images.load_image(source), 96), folder / name)
    training_photos(folder / "photos", 4, 64)
    (folder / "paintings").mkdir()
    for source in paintings:
        images.save_image(images.resize_long_side(images.load_image(source), 64), folder / "paintings" / source.name)
    _clip(photo, folder / "clip.mp4")
    _masks(photo, folder)
    (folder / "src" / "impasto").mkdir(parents=True)
    (folder / "src" / "impasto" / "examples").symlink_to(EXAMPLES)
    (folder / "src" / "impasto" / "models").symlink_to(EXAMPLES.parent / "models")
    return folder


def _clip(still, path: Path) -> None:
    from impasto.video.synthetic import MOVES, camera_clip, write_clip

    write_clip(camera_clip(still, MOVES["pan"], 6, 48, 64), path)


def _masks(photo, folder: Path) -> None:
    """Region masks of the photo's size: the sky (the top third), the town (the rest) and a
    soft blob for people."""
    import torch

    height, width = photo.shape[-2:]
    rows = torch.arange(height, dtype=torch.float32).view(1, 1, height, 1).expand(1, 3, height, width)
    sky = (rows < height / 3).float()
    cols = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width)
    blob = (-((rows - height * 0.7) ** 2 + (cols - width / 2) ** 2) / (2 * (height / 8) ** 2)).exp()
    for name, mask in (("sky.png", sky), ("town.png", 1 - sky), ("people.png", blob)):
        images.save_image(mask, folder / name)


def _serve(words: list[str], cwd: Path) -> None:
    """Start the studio as documented, on a free port; it must answer, then stop on SIGTERM."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "impasto", *words[1:], "--port", str(port)], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/options", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the studio did not answer within 120 s"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if documented_commands(d)], ids=lambda d: d.name)
def test_every_documented_command_runs(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(_sandbox(tmp_path))
    for command in documented_commands(doc):
        words = shlex.split(command)
        if words[1] == "serve":
            _serve(words, tmp_path)
            continue
        try:
            code = main([*words[1:], *tiny(words)])
        except SystemExit as done:  # --help
            code = int(done.code or 0)
        err = capsys.readouterr().err
        assert code == 0, f"{doc.name}: `{command}` exited with {code}: {err}"


def test_the_readme_shows_its_commands() -> None:
    """The harness finds the README's main commands (a parsing slip would test nothing)."""
    commands = documented_commands(ROOT / "README.md")
    assert any(c.startswith("impasto transfer src/impasto/examples/") for c in commands), commands
    assert any(c.startswith("impasto apply") for c in commands) and "impasto doctor" in commands
