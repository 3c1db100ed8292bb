"""Styles graphs (``impasto export --all-styles``, ``impasto.fast.graph``): a multi-style network
with every style in one ONNX graph, painting as the network does, and ``impasto apply`` on the
shipped one without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from conftest import tiny_model
from impasto import images, storage, style_spec
from impasto.cli import main
from impasto.fast.graph import read_graph, shipped_graph
from impasto.fast.model import save_model
from impasto.fast.multistyle.model import bind, save_multistyle
from impasto.fast.network import Architecture, TransformNet
from impasto.fast.styles import resolve, shipped_multistyle
from impasto.fast.stylize import stylize

pytest.importorskip("onnx")
pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = Path(impasto.__file__).parent / "models" / "multistyle"


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    model = tmp_path / "multi.pt"
    save_multistyle(tiny_model(), model)
    out = tmp_path / "multi.onnx"
    code, _, err = run(capsys, "export", model, "--all-styles", "-o", out, "-q")
    assert code == 0, err
    return out


def test_a_styles_graph_paints_every_style_mix_and_strength_as_the_network(graph_file: Path) -> None:
    model = tiny_model()
    graph = read_graph(graph_file)
    assert graph.names == ("starry", "scream")
    assert graph.source_sha256 is not None and len(graph.source_sha256) == 64
    photos = np.random.default_rng(1).random((2, 3, 37, 50), dtype=np.float32)
    for mix, strength in ((("starry", 1.0),), 1.0), ((("starry", 0.7), ("scream", 0.3)), 0.5), \
                         ((("scream", 1.0),), 0.0):
        expected = stylize(bind(model, mix, strength), torch.from_numpy(photos)).numpy()
        painted = graph.painter(mix, strength)(photos)
        assert painted.shape == photos.shape
        assert np.abs(painted - expected).max() < 1e-5
    # Strength 0 is the identity vector: the photo itself.
    assert np.abs(graph.painter((("scream", 1.0),), 0.0)(photos) - photos).max() < 1e-5


def test_apply_takes_a_styles_graph_as_its_model(graph_file: Path, tmp_path: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    out, reference = tmp_path / "graph.png", tmp_path / "torch.png"
    code, _, err = run(capsys, "apply", "--model", graph_file, "--style", "starry:0.6,scream:0.4", "--strength",
                       "0.8", content, "-o", out, "-q")
    assert code == 0, err
    code, _, err = run(capsys, "apply", "--model", graph_file.with_suffix(".pt"), "--style", "starry:0.6,scream:0.4",
                       "--strength", "0.8", "--backend", "torch", content, "-o", reference, "-q")
    assert code == 0, err
    a, b = (np.asarray(Image.open(p), dtype=int) for p in (out, reference))
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize(("args", "words"), [
    (["--style", "nope"], "has no style 'nope'"),
    ([], "holds 2 styles"),
    (["--style", "starry", "--backend", "torch"], "a styles graph paints photos with --backend auto"),
])
def test_a_styles_graph_refuses_in_one_line(graph_file: Path, tmp_path: Path, small_pair, capsys, args: list[str],
                                            words: str) -> None:
    content, _ = small_pair
    code, _, err = run(capsys, "apply", "--model", graph_file, *args, content, "-o", tmp_path / "x.png")
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_export_all_styles_refuses_what_it_cannot_keep(tmp_path: Path, capsys) -> None:
    model = tmp_path / "multi.pt"
    save_multistyle(tiny_model(), model)
    for extra in (["--style", "starry"], ["--strength", "0.5"], ["--input-height", "64", "--input-width", "64"]):
        code, _, err = run(capsys, "export", model, "--all-styles", *extra, "-o", tmp_path / "x.onnx")
        assert code == 2 and "--all-styles" in err, extra
    one_style = tmp_path / "one.pt"
    save_model(TransformNet(Architecture(4, 1)), one_style, "one", {"iterations": 1})
    code, _, err = run(capsys, "export", one_style, "--all-styles", "-o", tmp_path / "x.onnx")
    assert code == 2 and "takes a multi-style model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()


def test_the_shipped_graph_is_the_shipped_model() -> None:
    # A retrained .pt without a new graph would paint differently on the two back-ends.
    (model,) = shipped_multistyle()
    graph = shipped_graph(set(model.names))
    assert graph is not None and graph.names == tuple(model.names)
    assert graph.source_sha256 == storage.sha256_of(SHIPPED / "paper_fig3.pt")
    photo = np.random.default_rng(2).random((1, 3, 64, 80), dtype=np.float32)
    for name in model.names:
        expected = stylize(resolve(name), torch.from_numpy(photo)).numpy()
        assert np.abs(graph.painter(((name, 1.0),))(photo) - expected).max() < 1e-4, name


def test_shipped_graphs_are_found_in_the_models_folder(tmp_path: Path, graph_file: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models" / "multistyle").mkdir(parents=True)
    monkeypatch.setattr(style_spec, "models_folder", lambda: tmp_path / "models")
    assert shipped_graph({"starry"}) is None
    (tmp_path / "models" / "multistyle" / "fig3.onnx").write_bytes(graph_file.read_bytes())
    found = shipped_graph({"starry", "scream"})
    assert found is not None and found.names == ("starry", "scream")
    assert shipped_graph({"starry", "other"}) is None
    # Beside a model file it was not exported from (a retrained one), the graph is not used.
    model = tmp_path / "models" / "multistyle" / "fig3.pt"
    model.write_bytes(graph_file.with_suffix(".pt").read_bytes() + b"\0")
    assert shipped_graph({"starry"}) is None
    model.write_bytes(graph_file.with_suffix(".pt").read_bytes())
    assert shipped_graph({"starry"}) is not None


def test_apply_with_a_shipped_style_runs_without_torch(tmp_path: Path, tubingen_path: Path) -> None:
    photo = tmp_path / "photo.png"
    images.save_image(images.resize_long_side(images.load_image(tubingen_path), 96), photo)
    script = ("import sys\nfrom impasto.cli import main\n"
              f"code = main(['apply', '--style', 'starry_night:0.5,the_scream:0.5', {str(photo)!r}, '-o', "
              f"{str(tmp_path / 'out.png')!r}, '-q'])\n"
              "assert code == 0, code\nassert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = stylize(resolve("starry_night:0.5,the_scream:0.5"), images.load_image(photo))
    written = images.load_image(tmp_path / "out.png")
    assert (written - expected).abs().max() <= 1.5 / 255


def test_the_command_line_starts_without_torch() -> None:
    script = "import sys\nfrom impasto.cli import build_parser\nbuild_parser()\nassert 'torch' not in sys.modules\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
