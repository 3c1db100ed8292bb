"""Parity of the back-ends: the same input through PyTorch, onnxruntime and OpenCV dnn.

Tolerances: the ONNX back-ends compute in float32 like PyTorch, so they agree to 1e-4 (observed
~1e-6, summation order only); the bfloat16 network keeps 8 significant bits, so 0.05.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from impasto.errors import InputError
from impasto.fast import backends as export
from impasto.fast.model import FastModel
from impasto.fast.network import Architecture, TransformNet

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

FP32_TOLERANCE = 1e-4
BF16_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def net() -> TransformNet:
    torch.manual_seed(2)
    network = TransformNet(Architecture(width=8, blocks=2)).eval()
    # Instance-norm affine parameters away from their (1, 0) initialisation, as after training.
    with torch.no_grad():
        for name, p in network.named_parameters():
            if "InstanceNorm" not in name and p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return network


@pytest.fixture(scope="module")
def graph(net: TransformNet) -> bytes:
    return export.export_onnx(net)


@pytest.mark.parametrize("size", [(45, 62), (64, 64), (33, 97)])
def test_backends_agree_at_any_size(net: TransformNet, graph: bytes, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        reference = net(x)
    for name, tolerance in [("onnxruntime", FP32_TOLERANCE), ("opencv", FP32_TOLERANCE),
                            ("torch-bf16", BF16_TOLERANCE)]:
        output = export.make_backend(name, net, graph)(x)
        assert output.shape == reference.shape and output.dtype == torch.float32, name
        assert (output - reference).abs().max() < tolerance, name


def test_bilinear_upsampling_exports_to_both_back_ends() -> None:
    torch.manual_seed(3)
    bilinear = TransformNet(Architecture(width=8, blocks=1, upsample="bilinear")).eval()
    graph = export.export_onnx(bilinear)
    x = torch.rand(1, 3, 37, 58)
    with torch.no_grad():
        reference = bilinear(x)
    for name in ("onnxruntime", "opencv"):
        assert (export.make_backend(name, bilinear, graph)(x) - reference).abs().max() < FP32_TOLERANCE, name


def test_one_opencv_net_serves_several_sizes(net: TransformNet, graph: bytes) -> None:
    styler = export.OpenCVStyler(graph)
    for size in [(40, 48), (37, 51)]:
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            assert (styler(x) - net(x)).abs().max() < FP32_TOLERANCE


def test_opencv_bgr_frames(net: TransformNet, graph: bytes) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (36, 50, 3), dtype=np.uint8)
    out = export.OpenCVStyler(graph).stylize_bgr(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    rgb = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = (net(rgb)[0].permute(1, 2, 0).numpy()[..., ::-1] * 255).round()
    assert np.abs(out.astype(np.float32) - expected).max() <= 1


def test_fixed_size_export_and_metadata(tmp_path: Path, net: TransformNet) -> None:
    import onnx

    path = tmp_path / "fixed.onnx"
    export.export_onnx(FastModel(net, "tiny"), path, height=36, width=44)
    graph = onnx.load(path)
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 36, 44]
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["style"] == "tiny" and "[0, 1]" in meta["convention"]
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        assert (export.onnxruntime_backend(path)(x) - net(x)).abs().max() < FP32_TOLERANCE


def test_export_errors(tmp_path: Path, net: TransformNet) -> None:
    with pytest.raises(InputError, match="both --input-height and --input-width"):
        export.export_onnx(net, height=64)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile is not a folder"):
        export.export_onnx(net, tmp_path / "afile" / "m.onnx")
    with pytest.raises(InputError, match="--backend"):
        export.make_backend("tensorrt", net)
