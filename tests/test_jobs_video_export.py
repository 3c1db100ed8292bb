"""``transfer-video`` and ``export`` as jobs: each command writes a job file beside its output,
``impasto run JOB -o OTHER`` repeats it, and a bad field of the job file is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto import images, jobs
from impasto.cli import main
from impasto.config import ExportConfig, TransferConfig, VideoTransferConfig, from_dict, to_dict
from impasto.errors import InputError
from impasto.fast import model as fast_model
from impasto.fast.network import Architecture, TransformNet
from impasto.video.metrics import frames_of
from impasto.video.synthetic import MOVES, camera_clip, write_clip

# As tests/test_video_optimise.py's CLI test: three 36x48 frames, two iterations each.
TINY_VIDEO = ["--size", "48", "--scales", "1", "--iterations", "2", "--init", "content", "--precision", "fp32"]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, phrase: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and phrase in lines[0], err


def edited(job_file: Path, where: Path, change: dict[str, Any]) -> Path:
    """A copy of ``job_file`` at ``where`` with ``change`` ("section.key": value, one level deep
    or "config.transfer.key") applied."""
    record = json.loads(job_file.read_text())
    for dotted, value in change.items():
        *path, key = dotted.split(".")
        place = record
        for part in path:
            place = place[part]
        place[key] = value
    where.write_text(json.dumps(record))
    return where


def test_a_nested_config_goes_to_json_and_back() -> None:
    config = VideoTransferConfig(TransferConfig(size=64, seed=3, style_layers=("relu1_1",)), temporal_weight=5.0)
    data = json.loads(json.dumps(to_dict(config)))
    assert data["transfer"]["size"] == 64 and data["transfer"]["style_layers"] == ["relu1_1"]
    assert from_dict(VideoTransferConfig, data) == config
    assert from_dict(VideoTransferConfig, {"transfer": {"size": 64}}).transfer == TransferConfig(size=64)
    with pytest.raises(InputError, match=r"^job: config\.transfer\.size: expected an integer, got 'x'$"):
        from_dict(VideoTransferConfig, {"transfer": {"size": "x"}}, "job: config")
    with pytest.raises(InputError, match=r"^job: config\.transfer: expected an object of settings, got 5$"):
        from_dict(VideoTransferConfig, {"transfer": 5}, "job: config")
    with pytest.raises(InputError, match=r"^job: config\.transfer: unknown setting 'colour'"):
        from_dict(VideoTransferConfig, {"transfer": {"colour": 1}}, "job: config")


def test_export_config_names_the_field_at_fault() -> None:
    config = ExportConfig("m.pt", "a:0.5,b:0.5", strength=0.5, input_height=64, input_width=96)
    assert from_dict(ExportConfig, json.loads(json.dumps(to_dict(config)))) == config
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({}, "model", "export: give a model file"),
        ({"model": ""}, "model", "model: a model file or a shipped style's name is needed"),
        ({"model": "m.pt", "style": ""}, "style", "--style: "),
        ({"model": "m.pt", "strength": 1.5}, "strength", "--strength: must lie in [0, 1]"),
        ({"style_images": ("a.jpg",), "style_weights": (1.0, 2.0)}, "style_blend", "--style-blend: 2 weights"),
        ({"model": "m.pt", "input_height": 0, "input_width": 8}, "input_height", "--input-height: must be"),
        ({"model": "m.pt", "input_height": 64}, "input_width", "give both --input-height and --input-width"),
        ({"style_images": ("a.jpg",), "style_size": 8}, "style_size", "--style-size: must be"),
        ({"model": "m.pt", "style_size": 300}, "style_size", "--style-size: sets the size paintings are read at"),
    ]
    for values, field, message in cases:
        with pytest.raises(InputError) as info:
            ExportConfig(**values)
        assert info.value.field == field and str(info.value).startswith(message), (values, str(info.value))


# --- transfer-video ----------------------------------------------------------------------------


@pytest.fixture
def clip(tmp_path: Path, tubingen_path: Path) -> Path:
    still = images.resize_long_side(images.load_image(tubingen_path), 128)
    return write_clip(camera_clip(still, MOVES["pan"], 3, 36, 48), tmp_path / "clip.mp4")


def test_transfer_video_writes_a_job_file_that_run_repeats(clip: Path, tmp_path: Path, starry_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    # No --seed: the one drawn is the job file's, so that the run repeats.
    code, stdout, err = run(capsys, "transfer-video", clip, starry_path, *TINY_VIDEO, "-o", out, "--json")
    assert code == 0, err
    assert f"saved {out} (3 frames at " in err
    printed = json.loads(stdout)
    job_file = tmp_path / "out.job.json"
    assert set(printed) == {"kind", "complete", "outputs", "frames", "resumed", "fps", "seconds", "seed", "audio",
                            "job_file", "files"}
    assert printed["kind"] == "transfer-video" and printed["complete"] and printed["frames"] == 3
    assert printed["outputs"] == [str(out)] and printed["job_file"] == str(job_file)
    assert printed["files"] == [str(out), str(job_file)]
    record = json.loads(job_file.read_text())
    assert record["kind"] == "transfer-video" and record["job"]["styles"] == [str(starry_path)]
    assert record["config"]["transfer"]["seed"] == printed["seed"] == record["result"]["seed"]
    assert record["result"]["frames"] == 3 and not (tmp_path / "out.frames").exists()

    again = tmp_path / "again.mp4"
    code, _, err = run(capsys, "run", job_file, "-o", again, "-q")
    assert code == 0 and err == ""
    first, second = list(frames_of(out)), list(frames_of(again))
    assert len(second) == 3
    for a, b in zip(first, second, strict=True):
        # The same seed on the same CPU: the same frames, up to the video codec's rounding.
        assert float((a - b).abs().max()) <= 1 / 255 + 1e-6
    assert json.loads((tmp_path / "again.job.json").read_text())["job"]["output"] == str(again)


def test_a_bad_transfer_video_job_file_is_one_line(clip: Path, tmp_path: Path, starry_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = VideoTransferConfig(TransferConfig(size=48, scales=1, iterations=2, seed=1))
    job = jobs.TransferVideoJob(clip, (starry_path,), tmp_path / "out.mp4", config)
    good = tmp_path / "good.job.json"
    good.write_text(json.dumps(jobs.to_record(job)))
    assert jobs.load(good) == jobs.TransferVideoJob(clip, (starry_path,), tmp_path / "out.mp4", config)
    cases = [
        ({"config.temporal_weight": "high"}, "config.temporal_weight: expected a number, got 'high'"),
        ({"config.transfer.size": "big"}, "config.transfer.size: expected an integer, got 'big'"),
        ({"config.transfer": 3}, "config.transfer: expected an object of settings, got 3"),
        ({"config.flow": "optical"}, "--flow: 'optical' is not one of dis, farneback"),
        ({"job.styles": str(starry_path)}, "job.styles: expected a list of paths"),
        ({"job.frames": 3}, "unknown field job.frames for a transfer-video job"),
    ]
    for change, phrase in cases:
        code, _, err = run(capsys, "run", edited(good, tmp_path / "bad.job.json", change), "-q")
        one_line_error(code, err, phrase)
    assert not (tmp_path / "out.mp4").exists()


# --- export ------------------------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "tiny.pt"
    fast_model.save_model(TransformNet(Architecture(4, 1)), path, "tiny", {"iterations": 7})
    return path


def test_export_writes_a_job_file_that_run_repeats(tmp_path: Path, model_file: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)  # a relative model path: the job file holds it absolute
    code, stdout, err = run(capsys, "export", "tiny.pt", "-o", "tiny.onnx", "--input-height", "40",
                            "--input-width", "48", "--json")
    out, job_file = tmp_path / "tiny.onnx", tmp_path / "tiny.job.json"
    assert code == 0, err
    size = out.stat().st_size
    assert err.strip() == f"wrote tiny.onnx ({size / 1e6:.1f} MB)"
    printed = json.loads(stdout)
    assert printed["kind"] == "export" and printed["complete"] and printed["bytes"] == size
    assert printed["files"] == ["tiny.onnx", "tiny.job.json"] and printed["job_file"] == "tiny.job.json"
    record = json.loads(job_file.read_text())
    assert record["job"]["output"] == str(out) and record["config"]["model"] == str(model_file)
    assert record["config"]["input_height"] == 40 and record["result"]["bytes"] == size

    monkeypatch.chdir(tmp_path.parent)
    again = tmp_path / "elsewhere" / "again.onnx"  # its folder is made
    code, stdout, err = run(capsys, "run", job_file, "-o", again, "-q")
    assert code == 0 and stdout == err == ""
    assert again.read_bytes() == out.read_bytes()
    assert (tmp_path / "elsewhere" / "again.job.json").is_file()


def test_a_bad_export_job_file_is_one_line(tmp_path: Path, model_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.job.json"
    good.write_text(json.dumps(jobs.to_record(jobs.ExportJob(tmp_path / "m.onnx", ExportConfig(str(model_file))))))
    assert jobs.load(good) == jobs.ExportJob(tmp_path / "m.onnx", ExportConfig(str(model_file)))
    cases = [
        ({"config.strength": "full"}, "config.strength: expected a number, got 'full'"),
        ({"config.input_height": 64}, "give both --input-height and --input-width"),
        ({"config.style_images": "a.jpg"}, "config.style_images: expected a list of paths"),
        ({"config.model": None}, "export: give a model file, a shipped style's name, or --style-image PAINTING"),
        ({"job.output": 5}, "job.output: expected a path, got 5"),
        ({"job.output": str(tmp_path / "m.pt2")}, "the output must end in .onnx"),
    ]
    for change, phrase in cases:
        code, _, err = run(capsys, "run", edited(good, tmp_path / "bad.job.json", change), "-q")
        one_line_error(code, err, phrase)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.pt2").exists()
