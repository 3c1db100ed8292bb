"""ONNX export of the conditional transformer (style vector as a second input, or baked in),
run by onnxruntime and OpenCV dnn, against PyTorch; the CLI's one-line errors for apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import images
from impasto.cli import main
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.arbitrary.model import ArbitraryNet, save_arbitrary
from impasto.fast.backends import GAMMABETA, INPUT, OUTPUT, export_conditional_onnx, make_backend
from impasto.fast.network import Architecture
from impasto.fast.styles import load_style
from impasto.fast.stylize import stylize
from impasto.style_spec import AnyPainting


@pytest.fixture(scope="module")
def net() -> ArbitraryNet:
    torch.manual_seed(5)
    model = ArbitraryNet(Architecture(4, 1, 3), style_size=32)
    with torch.no_grad():
        torch.nn.init.normal_(model.predictor.head.weight, std=0.05)
    return model.eval()


def style_vector(net: ArbitraryNet, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    with torch.no_grad():
        return net.predictor.gammabeta(net.predictor.code(torch.rand(1, net.predictor.statistics)))


def test_onnx_with_the_style_vector_as_input(net: ArbitraryNet) -> None:
    ort = pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    data = export_conditional_onnx(net.transformer)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    opencv = cv2.dnn.readNetFromONNX(np.frombuffer(data, dtype=np.uint8))
    x = torch.rand(2, 3, 30, 41)  # not multiples of 4: the padding is in the graph
    for seed in (1, 2):
        vector = style_vector(net, seed)
        with torch.no_grad():
            expected = net.transformer(x, vector)
        got = session.run([OUTPUT], {INPUT: x.numpy(), GAMMABETA: vector.numpy()})[0]
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)
        opencv.setInput(x.numpy(), INPUT)
        opencv.setInput(vector.numpy(), GAMMABETA)
        np.testing.assert_allclose(opencv.forward(OUTPUT), expected.numpy(), atol=1e-4)


@pytest.mark.parametrize("backend", ["onnxruntime", "opencv", "torch-bf16"])
def test_a_bound_style_runs_on_every_backend(net: ArbitraryNet, backend: str, style64: torch.Tensor) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    model = arbitrary.ArbitraryModel(net)
    bound = arbitrary.bind(model, [style64], strength=0.8)
    x = torch.rand(2, 3, 36, 44)
    expected = stylize(bound, x)
    got = stylize(bound, x, backend=make_backend(backend, bound))
    tolerance = 0.05 if backend == "torch-bf16" else 1e-4
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=0)


# --- the CLI ---------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def model_file(tmp_path: Path, net: ArbitraryNet) -> Path:
    path = tmp_path / "arbitrary.pt"
    save_arbitrary(net, path, {"iterations": 0})
    return path


def test_apply_with_style_images(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, style = small_pair
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o",
                       tmp_path / "out.png", "--strength", "0.7", "--preserve-color", "luminance")
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == Image.open(content).size
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-blend", "0.7", "0.3", "--style-image",
                       style, "--style-image", content, content, style, "-o", tmp_path / "mixed")
    assert code == 0, err
    assert (tmp_path / "mixed" / "content_style+content.png").is_file()
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o",
                       tmp_path / "none.png", "--strength", "0")
    assert code == 0, err
    torch.testing.assert_close(images.load_image(tmp_path / "none.png"), images.load_image(content), atol=1 / 255,
                               rtol=0)


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], err


def test_apply_errors_are_one_line(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    content, style = small_pair
    out = tmp_path / "out.png"
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", tmp_path / "missing.jpg", content,
                       "-o", out)
    one_line_error(code, err, "missing.jpg")
    code, _, err = run(capsys, "apply", "--model", model_file, content, "-o", out)
    one_line_error(code, err, "an arbitrary-style model; give the painting with --style-image")
    from impasto.fast.model import save_model
    from impasto.fast.network import TransformNet

    save_model(TransformNet(Architecture(4, 1)), tmp_path / "one.pt", "one", {})
    code, _, err = run(capsys, "apply", "--model", tmp_path / "one.pt", "--style-image", style, content, "-o", out)
    one_line_error(code, err, "a one-style network, not an arbitrary-style model")
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o", out,
                       "--strength", "1.5")
    one_line_error(code, err, "--strength: must lie in [0, 1]")
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o", out,
                       "--style-blend", "1", "2")
    one_line_error(code, err, "--style-blend: 2 weights given for 1 style images")
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o", out,
                       "--style-size", "16")
    one_line_error(code, err, "--style-size: must be")
    code, _, err = run(capsys, "apply", "--model", tmp_path / "one.pt", content, "-o", out, "--style-size", "300")
    one_line_error(code, err, "--style-size: sets the size paintings are read at; give --style-image")
    code, _, err = run(capsys, "apply", "--model", tmp_path / "one.pt", content, "-o", out, "--strength", "0.5")
    one_line_error(code, err, "is a one-style network, which has no strength")
    assert not out.exists()


def test_export_bakes_a_paintings_style_code_into_the_graph(tmp_path: Path, model_file: Path, small_pair,
                                                            capsys) -> None:
    ort = pytest.importorskip("onnxruntime")
    content, style = small_pair
    out = tmp_path / "painting.onnx"
    code, _, err = run(capsys, "export", model_file, "--style-image", style, "--strength", "0.8", "-o", out)
    assert code == 0, err
    photo = images.load_image(content)
    expected = stylize(load_style(AnyPainting(model_file, (style,), strength=0.8)), photo)
    session = ort.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: photo.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)
    code, _, err = run(capsys, "export", model_file, "-o", tmp_path / "none.onnx")
    one_line_error(code, err, "an arbitrary-style model; give the painting with --style-image")
    code, _, err = run(capsys, "export", "-o", tmp_path / "none.onnx")
    one_line_error(code, err, "export: give a model file")
    assert not (tmp_path / "none.onnx").exists()


def test_train_arbitrary_errors_are_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "train-arbitrary", "--data", tmp_path, "--paintings", tmp_path / "none", "-o",
                       tmp_path / "m.pt")
    one_line_error(code, err, "")
    code, _, err = run(capsys, "train-arbitrary", "--data", tmp_path, "--paintings", tmp_path, "-o",
                       tmp_path / "m.pt", "--batch-size", "0")
    one_line_error(code, err, "--batch-size")


def test_the_job_file_reruns_an_arbitrary_apply(tmp_path: Path, model_file: Path, small_pair, capsys) -> None:
    from impasto.jobs import from_record, load, to_record

    content, style = small_pair
    code, _, err = run(capsys, "apply", "--model", model_file, "--style-image", style, content, "-o",
                       tmp_path / "out.png", "--strength", "0.5")
    assert code == 0, err
    job = load(tmp_path / "out.job.json")
    assert job.config.style_images == (style.absolute(),) and job.config.strength == 0.5
    assert from_record(to_record(job)) == job
    code, _, err = run(capsys, "run", tmp_path / "out.job.json", "-o", tmp_path / "again.png")
    assert code == 0, err
    torch.testing.assert_close(images.load_image(tmp_path / "again.png"), images.load_image(tmp_path / "out.png"))
