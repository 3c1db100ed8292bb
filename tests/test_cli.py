from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colour_profiles import ciede2000, display_p3, p3_to_lab
from impasto import events, profiles
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


TINY = ["--size", "64", "--iterations", "2", "--scales", "1"]


def test_outputs_make_missing_folders_and_json_goes_to_stdout(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    out = tmp_path / "new" / "dir" / "out.png"
    code = main([str(a) for a in ("transfer", content, style, "-o", out, *TINY, "--json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)  # stdout holds the one JSON object; the messages went to stderr
    assert summary["kind"] == "transfer" and summary["complete"] is True
    assert summary["outputs"] == [str(out)] and Image.open(out).size == (64, 48)
    assert summary["job_file"] == str(tmp_path / "new" / "dir" / "out.job.json")
    assert isinstance(summary["seed"], int) and summary["iterations"] == 2 and summary["seconds"] > 0
    assert set(summary["losses"]) == {"total", "content", "style", "tv"}
    assert summary["losses"]["total"] == summary["loss"]
    assert f"saved {out}" in captured.err

    again = tmp_path / "other" / "again.png"
    code = main(["run", summary["job_file"], "-o", str(again), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    rerun = json.loads(captured.out)
    assert rerun["kind"] == "transfer" and rerun["outputs"] == [str(again)] and rerun["seed"] == summary["seed"]
    assert again.read_bytes() == out.read_bytes()

    run_dir = tmp_path / "runs" / "first"
    code, err = run(capsys, "transfer", content, style, "--run-dir", run_dir, *TINY, "--quiet")
    assert code == 0, err
    assert {"output.png", "history.json", "job.json", "index.html"} <= {p.name for p in run_dir.iterdir()}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from impasto.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_one_option_name_takes_one_kind_of_value_in_every_command() -> None:
    kinds: dict[str, dict[tuple[object, ...], list[str]]] = {}
    for command, parser in _subcommands().items():
        for action in parser._actions:
            for option in action.option_strings:
                kind = (type(action).__name__, action.type, action.nargs == "+")
                kinds.setdefault(option, {}).setdefault(kind, []).append(command)
    differing = {option: found for option, found in kinds.items() if len(found) > 1}
    assert differing == {}
    assert "--lr" not in kinds and "--out" not in kinds  # --learning-rate and -o/--output everywhere


def test_help_states_defaults_in_the_users_terms() -> None:
    for command, parser in _subcommands().items():
        text = parser.format_help()
        for sign in ("None", "('", "PosixPath", "Config"):
            assert sign not in text, (command, sign)
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
        "output folder is a file": ([content, content, "-o", tmp / "weights.pth" / "out.png"], "is not a folder"),
        "output equals input": ([content, content, "-o", content], "same file as an input"),
        "unknown layer": ([content, content, "-o", out, "--style-layers", "relu1_1", "conv9_9"], "conv9_9"),
        "negative weight": ([content, content, "-o", out, "--content-weight", "-1"], "--content-weight"),
        "zero iterations": ([content, content, "-o", out, "--iterations", "0"], "--iterations"),
        "corrupt weights": ([content, content, "-o", out, "--weights", tmp / "weights.pth"], "weights.pth: cannot"),
        "unknown output format": ([content, content, "-o", tmp / "out.xyz"], "unsupported output format"),
    }


BAD_CASES = [
    "missing file", "empty file", "text file named .jpg", "truncated jpeg", "too small", "decompression bomb",
    "too many pixels", "directory as image", "output folder is a file", "output equals input", "unknown layer",
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
    # Two iterations at 32 px, then the final scale: its best image so far is a real picture.
    code, err = run(capsys, "transfer", content, style, "-o", out, *FAST, "--scales", "2", "--min-scale-size", "32",
                    "--coarse-iterations", "2")
    assert code == 130
    assert f"saved to {out}" in err and "after 3 iterations" in err
    assert Image.open(out).size == (64, 48)


# --- colour profiles, bits and metadata of the output --------------------------------------------


def test_a_display_p3_photo_keeps_its_colours_through_a_luminance_transfer(tmp_path: Path, small_pair,
                                                                              capsys) -> None:
    """A saturated P3 green, outside sRGB: the network sees sRGB (or, for luminance, grey), and
    the round trip through the colour pipeline brings the photo's own colour back, in its profile."""
    _, style = small_pair
    y, x = np.mgrid[0:48, 0:64] / np.array([48, 64])[:, None, None]
    rgb = np.stack([0.3 + 0.4 * x, 0.35 + 0.3 * y, 0.6 - 0.3 * x], axis=-1)
    rgb[12:36, 20:44] = (0.0, 1.0, 0.0)  # Display P3's pure green
    photo, out = tmp_path / "p3.png", tmp_path / "out.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(photo, icc_profile=display_p3())
    code, err = run(capsys, "transfer", photo, style, "--preserve-color", "luminance", "--init", "content",
                    *TINY, "--iterations", "10", "--seed", "0", "--quiet", "-o", out)
    assert code == 0, err
    with Image.open(out) as result:
        assert result.info["icc_profile"] == display_p3()
        got = np.asarray(result).astype(np.float64) / 255
    assert np.abs(got - rgb).max() > 0.1  # the style did change the picture
    inside = (slice(16, 32), slice(24, 40))  # the patch, away from its edges
    given, kept = rgb[inside].reshape(-1, 3).mean(0), got[inside].reshape(-1, 3).mean(0)
    assert ciede2000(p3_to_lab(kept), p3_to_lab(given)) < 2
    # Still outside sRGB: a round trip through sRGB would have clipped it.
    assert profiles.convert(kept, profiles.parse(display_p3()), profiles.SRGB)[0] < -0.3


def test_a_16_bit_photo_gives_a_16_bit_result(tmp_path: Path, small_pair, capsys) -> None:
    cv2 = pytest.importorskip("cv2")
    _, style = small_pair
    y, x = np.mgrid[0:48, 0:64] / np.array([47, 63])[:, None, None]
    deep = (np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.2 * x * y], axis=-1) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1])
    for name, extra, bits in (("out.tiff", [], 16), ("out.png", ["--bit-depth", "8"], 8)):
        code, err = run(capsys, "transfer", tmp_path / "deep.png", style, "--preserve-color", "luminance",
                        "--init", "content", *TINY, "--seed", "0", "--quiet", "-o", tmp_path / name, *extra)
        assert code == 0, err
        written = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        assert written.dtype == (np.uint16 if bits == 16 else np.uint8) and written.shape == (48, 64, 3)
    levels = len(np.unique(cv2.imread(str(tmp_path / "out.tiff"), cv2.IMREAD_UNCHANGED)[:, :, 1]))
    assert levels > 256, levels


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [(["--bit-depth", "16", "-o", "out.jpg"], "out.jpg: JPEG holds 8 bits a channel; --bit-depth 16 needs .png or "
      ".tiff"),
     (["--quality", "0", "-o", "out.jpg"], "--quality: an integer from 1 to 100, got 0"),
     (["--output-profile", "missing.icc", "-o", "out.png"], "missing.icc: no such file (give source, srgb or an "
      "ICC profile's file)"),
     (["--output-profile", "notes.txt", "-o", "out.png"], "notes.txt: not a usable ICC profile (not an ICC "
      "profile)")],
)
def test_bad_output_settings_are_one_line_before_the_run(tmp_path: Path, small_pair, capsys, monkeypatch,
                                                        extra: list[str], phrase: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a colour profile\n" * 20)
    content, style = small_pair
    code, err = run(capsys, "transfer", content, style, *TINY, *extra)
    assert code == 2 and err.count("\n") == 1 and phrase in err, err
    assert not (tmp_path / "out.jpg").exists() and not (tmp_path / "out.png").exists()
