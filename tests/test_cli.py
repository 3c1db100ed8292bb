from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from impasto import events
from impasto.cli import main

FAST = ["--size", "64", "--iterations", "6", "--seed", "0", "--quiet"]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_transfer_end_to_end(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    out = tmp_path / "out.jpg"
    code, err = run(capsys, "transfer", content, style, "-o", out, *FAST, "--snapshot-every", "2",
                    "--snapshot-dir", tmp_path / "snaps", "--history", tmp_path / "h.json")
    assert code == 0, err
    assert Image.open(out).format == "JPEG" and Image.open(out).size == (64, 48)
    data = json.loads((tmp_path / "h.json").read_text())
    assert [row["iteration"] for row in data["history"]] == [1, 2, 3, 4, 5, 6]
    assert {"seconds", "content", "style", "tv", "total"} <= set(data["history"][0])
    assert data["config"]["size"] == 64 and data["styles"] == [str(style)]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "iter_00001.png", "iter_00002.png", "iter_00004.png", "iter_00006.png"]


def test_run_dir_keeps_the_whole_run_with_a_report(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    run_dir = tmp_path / "run"
    code, err = run(capsys, "transfer", content, style, "--run-dir", run_dir, *FAST, "--snapshot-every", "3")
    assert code == 0, err
    assert Image.open(run_dir / "output.png").size == (64, 48)
    data = json.loads((run_dir / "history.json").read_text())
    assert data["output"] == str(run_dir / "output.png") and len(data["history"]) == 6
    assert {"iter_00001.png", "iter_00003.png", "iter_00006.png", "index.html"} <= {p.name for p in run_dir.iterdir()}
    html = (run_dir / "index.html").read_text()
    assert "loss_curves.png" in html and (run_dir / "loss_curves.png").is_file()


def test_help_shows_examples(capsys) -> None:
    for argv in (["--help"], ["transfer", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        assert "examples:" in capsys.readouterr().out


def _bad_inputs(tmp: Path, content: Path) -> dict[str, tuple[list[str | Path], str]]:
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "text.jpg").write_text("this is not a picture\n")
    jpeg = tmp / "full.jpg"
    Image.open(content).save(jpeg, quality=95)
    (tmp / "truncated.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    Image.new("RGB", (20, 40)).save(tmp / "tiny.png")
    Image.new("1", (9000, 9000)).save(tmp / "bomb.png")
    (tmp / "folder.jpg").mkdir()
    (tmp / "weights.pth").write_bytes(b"not torch at all")
    out = tmp / "out.png"
    return {
        "missing file": ([tmp / "nope.jpg", content, "-o", out], "nope.jpg: file not found"),
        "empty file": ([tmp / "empty.jpg", content, "-o", out], "empty.jpg: empty file"),
        "text file named .jpg": ([content, tmp / "text.jpg", "-o", out], "text.jpg: not an image"),
        "truncated jpeg": ([tmp / "truncated.jpg", content, "-o", out], "truncated.jpg: cannot decode"),
        "too small": ([tmp / "tiny.png", content, "-o", out], "tiny.png: image is 20x40"),
        "decompression bomb": ([tmp / "bomb.png", content, "-o", out], "bomb.png: image"),
        "too many pixels": ([content, content, "-o", out, "--max-pixels", "1000"], "more than the limit"),
        "directory as image": ([tmp / "folder.jpg", content, "-o", out], "folder.jpg: is a directory"),
        "output folder missing": ([content, content, "-o", tmp / "no" / "out.png"], "does not exist"),
        "output equals input": ([content, content, "-o", content], "same file as an input"),
        "unknown layer": ([content, content, "-o", out, "--style-layers", "relu1_1", "conv9_9"], "conv9_9"),
        "negative weight": ([content, content, "-o", out, "--content-weight", "-1"], "--content-weight"),
        "zero iterations": ([content, content, "-o", out, "--iterations", "0"], "--iterations"),
        "corrupt weights": ([content, content, "-o", out, "--weights", tmp / "weights.pth"], "weights.pth: cannot"),
        "unknown output format": ([content, content, "-o", tmp / "out.xyz"], "unsupported output format"),
    }


BAD_CASES = [
    "missing file", "empty file", "text file named .jpg", "truncated jpeg", "too small", "decompression bomb",
    "too many pixels", "directory as image", "output folder missing", "output equals input", "unknown layer",
    "negative weight", "zero iterations", "corrupt weights", "unknown output format",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, small_pair, capsys, case: str) -> None:
    content, _ = small_pair
    cases = _bad_inputs(tmp_path, content)
    assert set(cases) == set(BAD_CASES)
    argv, phrase = cases[case]
    before = {p.name for p in tmp_path.iterdir()}
    code, err = run(capsys, "transfer", *FAST, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    assert phrase in lines[0]
    assert "Traceback" not in err
    assert {p.name for p in tmp_path.iterdir()} == before  # nothing written


def test_failed_run_leaves_an_existing_output_untouched(tmp_path: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    code, _ = run(capsys, "transfer", content, tmp_path / "missing.jpg", "-o", out, *FAST)
    assert code == 2 and out.read_bytes() == b"previous result"


def test_ctrl_c_saves_the_best_image_so_far(tmp_path: Path, small_pair, capsys, monkeypatch) -> None:
    content, style = small_pair
    original = events.History.__call__

    def interrupt_at_three(self: events.History, event: events.Iteration) -> None:
        original(self, event)
        if event.iteration == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(events.History, "__call__", interrupt_at_three)
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *FAST)
    assert code == 130
    assert f"saved to {out}" in err and "after 3 iterations" in err
    assert Image.open(out).size == (64, 48)
