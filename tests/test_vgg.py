from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto import vgg
from impasto.errors import InputError, WeightsError

ORIGINAL_DIGEST = "0f7b5cfccc0260344e463aa697e3cf3f7c8b0b4e6d20abdad2ad54050985a5fc"


def ramp(size: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, (x + y) / 2]).unsqueeze(0)


def test_original_weights_shapes_and_checksum(weights: vgg.VGGWeights) -> None:
    assert list(weights.convs) == list(vgg.CONV_LAYERS)
    assert weights.convs["conv1_1"][0].shape == (64, 3, 3, 3)
    assert weights.convs["conv3_4"][0].shape == (256, 256, 3, 3)
    assert weights.convs["conv5_4"][1].shape == (512,)
    assert weights.input_format == "caffe"
    assert weights.digest() == ORIGINAL_DIGEST
    # Dequantised weights take at most 256 distinct values per layer.
    assert weights.convs["conv4_2"][0].unique().numel() <= 256


def test_known_activation_statistics(weights: vgg.VGGWeights) -> None:
    net = vgg.VGG19(weights, "relu5_1")
    features = net(ramp(), ["relu1_1", "relu3_1", "relu5_1"])
    assert features["relu1_1"].mean().item() == pytest.approx(26.4594, rel=1e-3)
    assert features["relu3_1"].mean().item() == pytest.approx(141.923, rel=1e-3)
    assert features["relu5_1"].std().item() == pytest.approx(137.212, rel=1e-3)


def test_reduced_network_sees_input_changes_below_one_grey_level(weights: vgg.VGGWeights) -> None:
    """A step of 0.1 grey level (L-BFGS's steps near convergence are that small) must reach the
    first features as in float32; an input cast to bfloat16 is rounded to about one grey level."""
    image, step = ramp(), 0.1 / 255

    def change(net: vgg.VGG19) -> torch.Tensor:
        before, after = (net(x, ["relu1_1"])["relu1_1"].float() for x in (image, image + step))
        return after - before

    exact = change(vgg.VGG19(weights, "relu1_1"))
    reduced = vgg.VGG19(weights, "relu2_1").reduced(torch.device("cpu"), torch.bfloat16)
    assert reduced.layers["conv1_1"].weight.dtype == torch.float32
    assert reduced.layers["conv2_1"].weight.dtype == torch.bfloat16
    assert reduced.shift.dtype == torch.float32 and reduced.shift[0, 0, 0, 0].item() == pytest.approx(103.939)
    assert reduced(image, ["relu2_1"])["relu2_1"].dtype == torch.bfloat16
    everything_bf16 = vgg.VGG19(weights, "relu1_1").to(torch.bfloat16)
    assert (change(reduced) - exact).norm() < 0.05 * exact.norm()
    assert (change(everything_bf16) - exact).norm() > exact.norm()


def test_caffe_preprocessing_is_bgr_0_255_minus_mean(weights: vgg.VGGWeights) -> None:
    net = vgg.VGG19(weights, "relu1_1")
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    x = net.preprocess(red)
    assert x[0, :, 0, 0].tolist() == pytest.approx([-103.939, -116.779, 255 - 123.68], abs=1e-4)
    # The inverse of the documented transform recovers the image exactly.
    back = (x + net.shift).flip(1) / 255.0
    assert torch.allclose(back, red, atol=1e-6)


def test_network_stops_at_the_deepest_layer_needed(weights: vgg.VGGWeights) -> None:
    net = vgg.VGG19(weights, vgg.deepest(["relu1_1", "relu3_1", "relu2_2"]))
    assert list(net.layers)[-1] == "relu3_1"
    assert "conv3_2" not in net.layers
    with pytest.raises(ValueError, match="past this network"):
        net(ramp(32), ["relu4_1"])
    out = net(ramp(32), ["relu2_2", "relu1_1"])
    assert set(out) == {"relu1_1", "relu2_2"} and out["relu2_2"].shape == (1, 128, 16, 16)


def test_average_pooling_changes_deeper_features_only(weights: vgg.VGGWeights) -> None:
    x = ramp(32)
    a = vgg.VGG19(weights, "relu3_1", "max")(x, ["relu1_2", "relu3_1"])
    b = vgg.VGG19(weights, "relu3_1", "avg")(x, ["relu1_2", "relu3_1"])
    assert torch.equal(a["relu1_2"], b["relu1_2"])
    assert not torch.allclose(a["relu3_1"], b["relu3_1"])


def test_unknown_layer_is_an_input_error() -> None:
    with pytest.raises(InputError, match="relu6_1"):
        vgg.check_layers(["relu1_1", "relu6_1"])


def _as_torchvision_state(convs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    index = dict(zip(vgg.CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True))
    state = {}
    for name, (w, b) in convs.items():
        state[f"features.{index[name]}.weight"] = w.clone()
        state[f"features.{index[name]}.bias"] = b.clone()
    return state


def test_user_weights_in_caffe_convention_are_detected(tmp_path: Path, weights: vgg.VGGWeights) -> None:
    path = tmp_path / "vgg19-caffe.pth"
    torch.save(_as_torchvision_state(dict(weights.convs)), path)
    loaded = vgg.load_weights(path)
    assert loaded.input_format == "caffe"
    assert loaded.digest() == ORIGINAL_DIGEST


def test_user_weights_in_torchvision_convention_give_the_same_features(
    tmp_path: Path, weights: vgg.VGGWeights
) -> None:
    # Fold the Caffe preprocessing into conv1_1 so that the same network expects torchvision's
    # normalised RGB input; both conventions must then yield identical features.
    convs = dict(weights.convs)
    w, b = convs["conv1_1"]
    mean = torch.tensor(vgg.IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
    std = torch.tensor(vgg.IMAGENET_STD_RGB).view(1, 3, 1, 1)
    caffe_mean = torch.tensor(vgg.CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    w_rgb = w.flip(1)  # BGR -> RGB input channels
    w_tv = w_rgb * 255.0 * std
    b_tv = b + (w_rgb * (255.0 * mean - caffe_mean.flip(1))).sum(dim=(1, 2, 3))
    convs["conv1_1"] = (w_tv, b_tv)
    path = tmp_path / "vgg19-tv.pth"
    torch.save(_as_torchvision_state(convs), path)
    loaded = vgg.load_weights(path)
    assert loaded.input_format == "torchvision"
    x = ramp(32)
    layers = ["relu1_1", "relu3_1"]
    ours = vgg.VGG19(weights, "relu3_1")(x, layers)
    theirs = vgg.VGG19(loaded, "relu3_1")(x, layers)
    # Identical away from the border (zero padding means a different colour in each convention).
    assert torch.allclose(ours["relu1_1"][..., 1:-1, 1:-1], theirs["relu1_1"][..., 1:-1, 1:-1], rtol=1e-4, atol=1e-3)
    assert (ours["relu3_1"] - theirs["relu3_1"]).norm() < 0.01 * ours["relu3_1"].norm()
    # Forcing the wrong convention must really change the result.
    forced = vgg.VGG19(vgg.load_weights(path, "caffe"), "relu3_1")(x, layers)
    assert (ours["relu3_1"] - forced["relu3_1"]).norm() > 0.5 * ours["relu3_1"].norm()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read weights"),
        (b"\x00garbage" * 100, "cannot read weights"),
    ],
)
def test_corrupt_weights_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as info:
        vgg.load_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_incomplete_weights(tmp_path: Path, weights: vgg.VGGWeights) -> None:
    state = _as_torchvision_state(dict(weights.convs))
    good = tmp_path / "good.pth"
    torch.save(state, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cannot read weights"):
        vgg.load_weights(cut)
    del state["features.34.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"missing features\.34\.weight"):
        vgg.load_weights(tmp_path / "partial.pth")
    state = _as_torchvision_state(dict(weights.convs))
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(WeightsError, match="conv1_1 has shape"):
        vgg.load_weights(tmp_path / "shape.pth")
    with pytest.raises(WeightsError, match="not found"):
        vgg.load_weights(tmp_path / "missing.pth")
