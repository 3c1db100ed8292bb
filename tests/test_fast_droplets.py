"""The probe of a transformation network's instance normalisations that the droplet term reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from conftest import training_photos
from impasto import examples, images
from impasto.config import train_config
from impasto.events import TrainStep
from impasto.fast.conditional import ConditionalInstanceNorm, ConditionalNet
from impasto.fast.multistyle.train import train_multistyle
from impasto.fast.network import Architecture, TransformNet
from impasto.fast.training.droplets import DROPLET_CEILING, droplet_probe
from impasto.losses import outlier_inflation

ARCH = Architecture(8, 1, 3)


def _inputs_of_normalisations(net: nn.Module, run: Callable[[], Tensor]) -> list[Tensor]:
    seen: list[Tensor] = []
    handles = [m.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
               for m in net.modules() if isinstance(m, nn.InstanceNorm2d | ConditionalInstanceNorm)]
    with torch.no_grad():
        run()
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("conditional", [False, True])
def test_the_probe_averages_every_normalisations_excess_per_image(conditional: bool) -> None:
    torch.manual_seed(0)
    photos = torch.rand(3, 3, 32, 32)
    if conditional:
        net: nn.Module = ConditionalNet(ARCH)
        code = net.identity() + 0.3 * torch.randn(1, net.code_size)

        def run() -> Tensor:
            return net(photos, code)
    else:
        net = TransformNet(ARCH)

        def run() -> Tensor:
            return net(photos)
    inputs = _inputs_of_normalisations(net, run)
    # Every normalisation of the layout: 3 down, 2 per block, 2 up.
    assert len(inputs) == 3 + 2 * ARCH.blocks + 2
    expected = torch.stack([outlier_inflation(x, 0.0) for x in inputs]).mean(dim=0)
    with torch.no_grad(), droplet_probe(net, ceiling=0.0) as probe:
        run()
    assert probe is not None
    assert probe.per_image().shape == (3,)
    assert torch.allclose(probe.per_image(), expected)
    # The hooks leave with the block: a later pass records nothing.
    with torch.no_grad():
        run()
    assert torch.allclose(probe.per_image(), expected)


def test_a_disabled_probe_hooks_nothing() -> None:
    net = TransformNet(ARCH)
    with droplet_probe(net, enabled=False) as probe:
        net(torch.rand(1, 3, 32, 32))
    assert probe is None
    assert not any(m._forward_pre_hooks for m in net.modules())
    assert DROPLET_CEILING > 0.1  # above what a Gaussian field's tails inflate


def test_the_training_records_the_droplet_term_only_when_weighted(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    training_photos(photos, 6, 64)
    paintings = [tmp_path / f"{name}.png" for name in ("starry_night", "the_scream")]
    for path in paintings:
        images.save_image(images.resize_long_side(images.load_image(examples.painting(path.stem)), 64), path)
    config = train_config("gatys", width=8, blocks=1, kernel=3, iterations=2, batch_size=2, crop_size=32,
                          style_size=32, holdout_percent=25.0, previews=2, preview_every=0, checkpoint_every=0,
                          precision="fp32")
    plain: list[TrainStep] = []
    weighted: list[TrainStep] = []
    train_multistyle(paintings, photos, tmp_path / "plain.pt", config, on_event=plain.append)
    result = train_multistyle(paintings, photos, tmp_path / "weighted.pt",
                              dataclasses.replace(config, droplet_weight=1e9), on_event=weighted.append)
    assert len(plain) == len(weighted) == 2
    assert all("droplet" not in step.losses for step in plain)
    assert all(step.losses["droplet"] >= 0 for step in weighted)
    assert result.model.training["settings"]["droplet_weight"] == 1e9
