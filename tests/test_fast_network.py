from __future__ import annotations

import io
from typing import get_args

import pytest
import torch

from impasto.config import FastVariant
from impasto.errors import InputError
from impasto.fast.network import VARIANTS, Architecture, TransformNet, build, parameter_count


@pytest.fixture(scope="module")
def net() -> TransformNet:
    torch.manual_seed(0)
    return TransformNet(Architecture(width=4, blocks=1)).eval()


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (61, 35), (8, 9), (5, 6), (96, 64)])
def test_any_size_gives_the_same_size_in_range(net: TransformNet, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_single_image_without_batch_dimension(net: TransformNet) -> None:
    x = torch.rand(3, 37, 41)
    with torch.no_grad():
        assert torch.equal(net(x), net(x[None])[0])


def test_padding_is_reflection_and_cropped_back(net: TransformNet) -> None:
    # An odd-sized image is processed as its reflection-padded version, then cropped.
    x = torch.rand(1, 3, 37, 42)
    padded = torch.nn.functional.pad(x, (0, -42 % net.arch.multiple, 0, -37 % net.arch.multiple), mode="reflect")
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded)[..., :37, :42], atol=1e-6)


def test_batch_items_are_independent(net: TransformNet) -> None:
    # Instance normalisation: each image's output does not depend on its batch mates.
    x = torch.rand(3, 3, 32, 40)
    with torch.no_grad():
        assert torch.allclose(net(x)[1:2], net(x[1:2]), atol=1e-6)


def test_variants_and_config_agree() -> None:
    assert set(get_args(FastVariant)) == set(VARIANTS)
    johnson = build("johnson")
    assert johnson.arch == Architecture(32, 5)
    assert parameter_count(build("fast")) < parameter_count(johnson) / 3
    assert parameter_count(build("lite")) < parameter_count(build("fast"))
    with pytest.raises(InputError, match="unknown variant"):
        build("huge")
    with pytest.raises(InputError):
        Architecture(0, 5)


def test_johnson_network_fits_in_8_mb_as_fp16() -> None:
    state = {k: v.half() for k, v in build("johnson").state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert buffer.tell() <= 8 * 1024 * 1024


def test_gradients_reach_every_parameter(net: TransformNet) -> None:
    model = TransformNet(net.arch)
    model(torch.rand(2, 3, 32, 32)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("size", [(16, 16), (17, 45), (64, 40)])
def test_lite_variant_takes_any_size_from_its_minimum(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = build("lite").eval()
    assert (net.arch.multiple, net.arch.min_side) == (8, 16)
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and 0.0 <= float(y.min()) <= float(y.max()) <= 1.0


def test_architecture_rejects_even_kernels_and_negative_stages() -> None:
    with pytest.raises(InputError, match="odd"):
        Architecture(8, 3, kernel=4)
    with pytest.raises(InputError):
        Architecture(8, 3, stages=-1)
    assert Architecture(8, 1, kernel=9, stages=1).min_side == 5
