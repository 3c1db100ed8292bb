from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colour_profiles import display_p3
from conftest import training_photos
from impasto import images, style_spec
from impasto.cli import main
from impasto.fast import model as fast_model
from impasto.fast import styles
from impasto.fast.network import Architecture, TransformNet
from impasto.fast.stylize import stylize


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "tiny.pt"
    fast_model.save_model(TransformNet(Architecture(4, 1)), path, "tiny", {"iterations": 7, "seconds": 36.0})
    return path


@pytest.fixture
def no_shipped_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style_spec, "models_folder", lambda: tmp_path / "no_models")


def test_styles_without_models(capsys, no_shipped_models) -> None:
    code, out, _ = run(capsys, "styles")
    assert code == 0 and "no fast styles are installed" in out


def test_styles_lists_shipped_models(tmp_path: Path, model_file: Path, capsys, monkeypatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(model_file.read_bytes())
    monkeypatch.setattr(style_spec, "models_folder", lambda: folder)
    code, out, _ = run(capsys, "styles")
    assert code == 0 and "| tiny | width-4, 1-block, 9x9-edge, 2-stage | 7 |" in out


def test_styles_show_the_shipped_networks_licence(capsys) -> None:
    code, out, _ = run(capsys, "styles")
    assert code == 0
    licence = styles.NON_COMMERCIAL
    assert "non-commercial research" in licence
    assert f"licence (shipped model 'paper_fig3.pt'): {licence}" in out
    assert f"licence (any_painting.pt): {licence}" in out
    code, out, _ = run(capsys, "styles", "--json")
    entries = json.loads(out)
    assert code == 0 and all(e["licence"] == licence for e in entries)
    assert entries[-1]["kind"] == "arbitrary" and entries[-1]["model"] == "any_painting.pt"


def test_a_model_file_has_no_licence_impasto_knows(model_file: Path, capsys) -> None:
    code, out, _ = run(capsys, "styles", "--json", "--model", model_file)
    assert code == 0 and json.loads(out)[0]["licence"] is None
    code, out, _ = run(capsys, "styles", "--model", model_file)
    assert code == 0 and "licence" not in out


def test_a_video_on_the_base_install_advises_the_video_extra(tmp_path: Path, small_pair, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    content, _ = small_pair
    # None in sys.modules makes the import fail, as where OpenCV and PyAV are not installed.
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "av", None)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded")
    code, _, err = run(capsys, "apply", "--style", "starry_night", content, clip, "-o", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("impasto: error: ") and "pip install 'impasto[video]'" in err
    assert not (tmp_path / "out").exists()  # refused before the photo was stylised


def test_apply_one_photo_and_several(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    code, _, err = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "out.jpg")
    assert code == 0, err
    assert Image.open(tmp_path / "out.jpg").size == Image.open(content).size
    second = tmp_path / "second.png"
    Image.open(content).save(second)
    code, _, err = run(capsys, "apply", "--model", model_file, content, second, "-o", tmp_path / "many",
                       "--preserve-color", "luminance", "--size", "48", "--quiet")
    assert code == 0 and err == ""
    written = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert written == ["content_tiny.png", "job.json", "second_tiny.png"]
    assert max(Image.open(tmp_path / "many" / "second_tiny.png").size) == 48


def test_apply_json_on_stdout_into_missing_folders(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, style = small_pair
    code, out, err = run(capsys, "apply", "--model", model_file, content, style, "-o", tmp_path / "new" / "dir",
                         "--json")
    assert code == 0, err
    summary = json.loads(out)
    folder = tmp_path / "new" / "dir"
    assert summary["kind"] == "apply" and summary["complete"] is True
    assert summary["images"] == 2 and summary["videos"] == 0 and summary["seconds"] > 0
    assert summary["outputs"] == [str(folder / "content_tiny.png"), str(folder / "style_tiny.png")]
    assert summary["job_file"] == str(folder / "job.json") and (folder / "job.json").is_file()
    code, out, err = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "one" / "out.png",
                         "--json", "--quiet")
    assert code == 0 and err == "" and json.loads(out)["outputs"] == [str(tmp_path / "one" / "out.png")]
    # One photo into a name without a suffix: a folder, as for several.
    code, out, err = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "stylised", "--json", "-q")
    assert code == 0 and json.loads(out)["outputs"] == [str(tmp_path / "stylised" / "content_tiny.png")]


def test_apply_with_opencv(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("onnx")
    content, _ = small_pair
    code, _, err = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "cv.png",
                       "--backend", "opencv")
    assert code == 0, err
    ours = images.load_image(tmp_path / "cv.png")
    code, _, _ = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "pt.png")
    assert (ours - images.load_image(tmp_path / "pt.png")).abs().max() <= 1 / 255 + 1e-6


def test_apply_errors_exit_2_with_one_line(tmp_path: Path, model_file: Path, small_pair, capsys,
                                           no_shipped_models) -> None:
    content, _ = small_pair
    (tmp_path / "bad.pt").write_bytes(b"junk")
    (tmp_path / "empty").mkdir()
    cases = [
        (["--model", tmp_path / "bad.pt", content, "-o", tmp_path / "o.png"], "bad.pt: cannot read model file"),
        (["--model", tmp_path / "none.pt", content, "-o", tmp_path / "o.png"], "none.pt: model file not found"),
        (["--style", "starry_night", content, "-o", tmp_path / "o.png"], "no styles are installed"),
        (["--model", model_file, tmp_path / "no.jpg", "-o", tmp_path / "o.png"], "no.jpg: file not found"),
        (["--model", model_file, content, "-o", content], "same file as an input"),
        (["--model", model_file, content, "-o", tmp_path / "o.gif"], "unsupported output format"),
        (["--model", model_file, content, content, "-o", model_file], "need an output folder"),
        (["--model", model_file, content, "-o", tmp_path / "o.png", "--batch-size", "0"], "--batch-size"),
        (["--model", model_file, tmp_path / "empty", "-o", tmp_path / "out"], "no images or videos in this folder"),
        (["--model", model_file, content, content, "-o", tmp_path / "out"], "two inputs of the same name"),
        (["--model", model_file, content, "-o", tmp_path / "o.png", "--size", "8"], "--size"),
        (["--model", model_file, content, "-o", tmp_path / "o.webp", "--bit-depth", "16"], "WEBP holds 8 bits"),
        (["--model", model_file, content, "-o", tmp_path / "o.jpg", "--quality", "101"], "--quality"),
        (["--model", model_file, content, "-o", tmp_path / "o.png", "--output-profile", tmp_path / "none.icc"],
         "none.icc: no such file"),
    ]
    for args, phrase in cases:
        code, _, err = run(capsys, "apply", *args)
        assert code == 2, (args, err)
        assert err.startswith("impasto: error: ") and phrase in err and err.count("\n") == 1, err


def test_apply_keeps_a_photos_colours_metadata_and_bits(tmp_path: Path, model_file: Path, capsys) -> None:
    cv2 = pytest.importorskip("cv2")
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    rgb[:16, :16] = (0, 255, 0)  # Display P3's green, outside sRGB
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Canon", 6  # Make, Orientation: turned 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "p3.jpg", icc_profile=display_p3(), exif=exif, quality=95)
    sizes = {}
    for quality in (40, 95):
        out = tmp_path / f"q{quality}.jpg"
        code, _, err = run(capsys, "apply", "--model", model_file, tmp_path / "p3.jpg", "-o", out, "--quality",
                           str(quality), "--preserve-color", "luminance", "-q")
        assert code == 0, err
        with Image.open(out) as img:
            assert img.info["icc_profile"] == display_p3() and img.size == (48, 64)
            assert (img.getexif()[0x010F], img.getexif()[0x0112]) == ("Canon", 1)
        sizes[quality] = out.stat().st_size
    assert sizes[40] < sizes[95]
    deep = (np.random.default_rng(1).random((48, 64, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    code, _, err = run(capsys, "apply", "--model", model_file, tmp_path / "deep.png", "-o", tmp_path / "out.tif",
                       "-q")
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "out.tif"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def _write_video(path: Path, frames: int, size: tuple[int, int] = (48, 40)) -> None:
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, size)
    assert writer.isOpened()
    for i in range(frames):
        # A moving gradient, so that frames differ and compression keeps them close.
        x = torch.linspace(0, 1, size[0]).view(1, -1).expand(size[1], -1)
        frame = torch.stack([(x + i / frames) % 1, x.flip(-1), torch.full_like(x, 0.5)], dim=-1)
        writer.write(frame.mul(255).round().to(torch.uint8).numpy()[..., ::-1].copy())
    writer.release()


def _read_video(path: Path) -> tuple[list[torch.Tensor], float]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1).float().div(255)[None])
    capture.release()
    return frames, fps


def test_apply_to_a_video_frame_by_frame(tmp_path: Path, model_file: Path, capsys) -> None:
    source, out = tmp_path / "clip.mp4", tmp_path / "clip_tiny.mp4"
    _write_video(source, 7)
    code, _, err = run(capsys, "apply", "--model", model_file, source, "-o", out, "--batch-size", "3",
                         "--no-temporal")
    assert code == 0, err
    assert "7 frames at 12 fps" in err and not list(tmp_path.glob(".*partial*"))
    inputs, _ = _read_video(source)
    outputs, fps = _read_video(out)
    assert len(outputs) == 7 and fps == pytest.approx(12.0) and outputs[0].shape == (1, 3, 40, 48)
    model = fast_model.read_model(model_file)
    for frame, styled in zip(inputs, outputs, strict=True):
        # Each output frame is the network's output for that frame, up to mp4v's lossy coding of
        # tiny frames (a few grey levels), and far from the input frame.
        expected = stylize(model, frame)
        assert (styled - expected).abs().mean() < 0.05
        assert (styled - expected).abs().mean() < 0.25 * (styled - frame).abs().mean()


def test_apply_to_folders_of_photos_and_videos(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(content).save(folder / "a.png")
    Image.open(content).save(folder / "b.jpg")
    _write_video(folder / "c.mp4", 3)
    (folder / "notes.txt").write_text("not an image")
    code, _, err = run(capsys, "apply", "--model", model_file, folder, "-o", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_tiny.png", "b_tiny.png", "c_tiny.mp4",
                                                                     "job.json"]
    # a.png and b.jpg went through the network as one batch of two: same result as alone.
    alone = tmp_path / "alone.png"
    assert run(capsys, "apply", "--model", model_file, folder / "a.png", "-o", alone, "--quiet")[0] == 0
    batched = images.load_image(tmp_path / "out" / "a_tiny.png")
    assert (batched - images.load_image(alone)).abs().max() <= 1 / 255 + 1e-6


def test_bad_videos_exit_2_and_write_nothing(tmp_path: Path, model_file: Path, capsys) -> None:
    pytest.importorskip("cv2")
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    good = tmp_path / "good.mp4"
    _write_video(good, 2)
    cases = [
        ([fake, "-o", tmp_path / "o.mp4"], "fake.mp4: "),
        ([good, "-o", tmp_path / "o.png"], "output must end in .mp4"),
        ([good, "-o", good], "same file as an input"),
        ([tmp_path / "missing.mp4", "-o", tmp_path / "o.mp4"], "missing.mp4: video file not found"),
    ]
    for args, phrase in cases:
        code, _, err = run(capsys, "apply", "--model", model_file, *args)
        assert code == 2, (args, err)
        assert phrase in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4", "good.mp4", "tiny.pt"]


def test_export_command(tmp_path: Path, model_file: Path, capsys) -> None:
    pytest.importorskip("onnx")
    code, _, err = run(capsys, "export", model_file, "-o", tmp_path / "tiny.onnx")
    assert code == 0 and (tmp_path / "tiny.onnx").stat().st_size > 0, err
    code, _, err = run(capsys, "export", model_file, "-o", tmp_path / "tiny.pt2")
    assert code == 2 and "must end in .onnx" in err


@pytest.fixture
def one_thread() -> Iterator[None]:
    """As in test_fast_train: tiny batches gain nothing from threads that a busy machine oversubscribes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_command(tmp_path: Path, small_pair, capsys, one_thread) -> None:
    _, style = small_pair
    photos = tmp_path / "photos"
    training_photos(photos, 3, 48)
    out = tmp_path / "m.pt"
    code, _, err = run(capsys, "train", style, "--data", photos, "-o", out, "--width", "4", "--blocks", "0",
                       "--iterations", "2", "--batch-size", "1", "--crop-size", "32", "--style-size", "32",
                       "--holdout-percent", "50", "--preview-every", "1", "--checkpoint-every", "1",
                       "--style-layers", "relu1_1", "relu2_1", "--style-layer-weights", "0.3", "0.7")
    assert code == 0, err
    assert "saved" in err and out.is_file() and (tmp_path / "m.pt.ckpt").is_file()
    job = json.loads((tmp_path / "m.job.json").read_text())
    assert job["kind"] == "train" and job["result"]["iterations"] == 2
    settings = job["config"]
    assert settings["style_layers"] == ["relu1_1", "relu2_1"] and settings["style_layer_weights"] == [0.3, 0.7]
    assert len(list((tmp_path / "m_previews").iterdir())) == 3
    code, _, err = run(capsys, "train", style, "--data", photos, "-o", out, "--iterations", "0")
    assert code == 2 and "--iterations" in err
    code, _, err = run(capsys, "train", style, "--data", tmp_path / "void", "-o", out, "--quiet")
    assert code == 2 and "photo folder not found" in err


def test_help_has_examples(capsys) -> None:
    for command in ("train", "apply", "export"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0 and "examples:" in capsys.readouterr().out


def test_fast_path_errors_are_one_line_and_exit_2(tmp_path: Path, small_pair, capsys, monkeypatch,
                                                  one_thread) -> None:
    """The ValueErrors that used to reach users as tracebacks: an impossible architecture in a model
    file, a network that cannot be stored (diverged), a device name that cannot exist."""
    content, style = small_pair
    record = torch.load(fast_model_file(tmp_path), weights_only=True)
    record["architecture"]["kernel"] = 4
    torch.save(record, tmp_path / "even.pt")
    code, _, err = run(capsys, "apply", "--model", tmp_path / "even.pt", content, "-o", tmp_path / "o.png")
    assert code == 2 and "kernel must be a positive odd integer" in err and err.count("\n") == 1, err

    photos = tmp_path / "photos"
    training_photos(photos, 2, 48)
    from impasto.fast.single import train as training

    step = training._Trainer.step

    def diverge(self, batch):
        losses = step(self, batch)
        with torch.no_grad():
            next(self.net.parameters()).fill_(1e6)  # finite, but beyond what float16 can store
        return losses

    monkeypatch.setattr(training._Trainer, "step", diverge)
    out = tmp_path / "m.pt"
    code, _, err = run(capsys, "train", style, "--data", photos, "-o", out, "--width", "4", "--blocks", "0",
                       "--iterations", "1", "--batch-size", "1", "--crop-size", "32", "--style-size", "32",
                       "--holdout-percent", "0", "--preview-every", "0", "--checkpoint-every", "0", "--quiet")
    assert code == 2 and "not written" in err and "diverged" in err and err.count("\n") == 1, err
    assert not out.exists()
    for command in (["train", style, "--data", photos, "-o", out],
                    ["transfer", content, style, "-o", tmp_path / "o.png"]):
        code, _, err = run(capsys, *command, "--device", "gpu")
        assert code == 2 and "--device: 'gpu' is not auto, cpu, cuda or cuda:N" in err, err


def fast_model_file(folder: Path) -> Path:
    path = folder / "tiny_arch.pt"
    fast_model.save_model(TransformNet(Architecture(4, 1)), path, "tiny", {})
    return path


def test_apply_reports_each_batch_of_photos_written(tmp_path: Path, model_file: Path, small_pair) -> None:
    from impasto.config import ApplyConfig
    from impasto.events import Photos
    from impasto.fast.apply import apply

    content, _ = small_pair
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.png")
        Image.open(content).save(photos[-1])
    events: list[Photos] = []
    apply(photos, tmp_path / "out", ApplyConfig(str(model_file), batch_size=2), on_event=events.append)
    # Batches of two: after the first two photos, then after the third, each naming its last file.
    assert [(e.step, e.total, e.name) for e in events] == [(2, 3, "p1.png"), (3, 3, "p2.png")]
    assert all(isinstance(e, Photos) and e.seconds >= 0 and e.record()["step"] == e.step for e in events)
