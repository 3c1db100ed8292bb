from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto import images
from impasto.cli import main
from impasto.fast import apply
from impasto.fast.network import Architecture, TransformNet

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "tiny.pt"
    apply.save_model(TransformNet(Architecture(4, 1)), path, "tiny", {"iterations": 7, "seconds": 36.0})
    return path


@pytest.fixture
def no_shipped_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply, "_models_folder", lambda: tmp_path / "no_models")


def test_styles_without_models(capsys, no_shipped_models) -> None:
    code, out, _ = run(capsys, "styles")
    assert code == 0 and "no fast styles are installed" in out


def test_styles_lists_shipped_models(tmp_path: Path, model_file: Path, capsys, monkeypatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(model_file.read_bytes())
    monkeypatch.setattr(apply, "_models_folder", lambda: folder)
    code, out, _ = run(capsys, "styles")
    assert code == 0 and "| tiny | width-4, 1-block, 9x9-edge, 2-stage | 7 |" in out


def test_apply_one_photo_and_several(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    code, _, err = run(capsys, "apply", "--model", model_file, content, "-o", tmp_path / "out.jpg")
    assert code == 0, err
    assert Image.open(tmp_path / "out.jpg").size == Image.open(content).size
    second = tmp_path / "second.png"
    Image.open(content).save(second)
    code, _, err = run(capsys, "apply", "--model", model_file, content, second, "-o", tmp_path / "many",
                       "--preserve-color", "--size", "48", "--quiet")
    assert code == 0 and err == ""
    written = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert written == ["content_tiny.png", "second_tiny.png"]
    assert max(Image.open(tmp_path / "many" / "second_tiny.png").size) == 48


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
    cases = [
        (["--model", tmp_path / "bad.pt", content, "-o", tmp_path / "o.png"], "bad.pt: cannot read model file"),
        (["--model", tmp_path / "none.pt", content, "-o", tmp_path / "o.png"], "none.pt: model file not found"),
        (["--style", "starry_night", content, "-o", tmp_path / "o.png"], "no styles are installed"),
        (["--model", model_file, tmp_path / "no.jpg", "-o", tmp_path / "o.png"], "no.jpg: file not found"),
        (["--model", model_file, content, "-o", content], "same file as an input"),
        (["--model", model_file, content, "-o", tmp_path / "o.gif"], "unsupported output format"),
        (["--model", model_file, content, content, "-o", model_file], "need an output folder"),
        (["--model", model_file, content, "-o", tmp_path / "o.png", "--size", "8"], "--size"),
    ]
    for args, phrase in cases:
        code, _, err = run(capsys, "apply", *args)
        assert code == 2, (args, err)
        assert err.startswith("impasto: error: ") and phrase in err and err.count("\n") == 1, err


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
    photos.mkdir()
    for i, source in enumerate(sorted(PHOTOS.glob("*.jpg"))[:3]):
        images.save_image(images.resize_long_side(images.load_image(source), 48), photos / f"p{i}.jpg")
    out = tmp_path / "m.pt"
    code, _, err = run(capsys, "train", style, "--data", photos, "-o", out, "--width", "4", "--blocks", "0",
                       "--iterations", "2", "--batch-size", "1", "--crop-size", "32", "--style-size", "32",
                       "--holdout-percent", "50", "--preview-every", "1", "--checkpoint-every", "1",
                       "--style-layers", "relu1_1", "relu2_1", "--style-layer-weights", "0.3", "0.7")
    assert code == 0, err
    assert "saved" in err and out.is_file() and (tmp_path / "m.pt.ckpt").is_file()
    settings = json.loads(out.with_suffix(".json").read_text())["settings"]
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
