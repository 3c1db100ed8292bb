"""The droplet term's view inside a transformation network: how much a few outlying values
inflate the variance of what enters each of its instance normalisations
(``losses.perceptual.outlier_inflation``), per image, while the network runs once.

Forward hooks rather than a second output of the networks: the term is a training aid, so the
networks, their exports and every back-end stay as they are, and the three families' trainers
share this one probe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from impasto.fast.conditional import ConditionalInstanceNorm
from impasto.losses import outlier_inflation

# Measured on 4 held-out photos at 256 px under each of the five styles: in the shipped width-8
# five-painting network, which has no droplets, outliers inflate no channel entering a
# normalisation by more than 1.39 (the median channel: 0.01-0.17); in the width-32 network whose
# outputs show droplets, the median channel entering its last normalisation by 53 and the worst
# by 490. Below the ceiling the term is zero, so it leaves ordinary features alone.
DROPLET_CEILING = 1.5

NORMALISATIONS = (nn.InstanceNorm2d, ConditionalInstanceNorm)


class DropletProbe:
    """Collects, per forward pass, the outlier inflation of each normalisation's input."""

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling
        self._excess: list[Tensor] = []

    def record(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        self._excess.append(outlier_inflation(inputs[0], self.ceiling))

    def per_image(self) -> Tensor:
        """(B,): the mean over the normalisations of each image's outlier inflation beyond the
        ceiling; what the droplet term of ``losses.perceptual_objective`` averages."""
        if not self._excess:
            raise RuntimeError("the probe saw no instance normalisation run")
        return torch.stack(self._excess).mean(dim=0)


@contextmanager
def droplet_probe(net: nn.Module, enabled: bool = True,
                  ceiling: float = DROPLET_CEILING) -> Iterator[DropletProbe | None]:
    """Within the block, every forward pass of ``net``'s instance normalisations feeds the
    yielded probe (None, and no hooks, when not ``enabled``); the hooks go when the block ends."""
    if not enabled:
        yield None
        return
    probe = DropletProbe(ceiling)
    handles = [m.register_forward_pre_hook(probe.record) for m in net.modules() if isinstance(m, NORMALISATIONS)]
    try:
        yield probe
    finally:
        for handle in handles:
            handle.remove()
