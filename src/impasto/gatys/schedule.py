"""The coarse-to-fine schedule: which sizes a transfer runs at and how many iterations each gets.

A departure from Gatys et al. (2016), who optimise at one size: solving at a fraction of the
pixels first and refining the upsampled result is neural-style's multi-resolution recipe and
style-transfer-pytorch's default. The objective at the final size is the paper's; only the
starting point of the last scale differs. ``scales=1`` is the paper's single scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from impasto.config import TransferConfig


@dataclass(frozen=True)
class Scale:
    """One level of the schedule: its index (0 = coarsest), long side in px and iterations."""

    level: int
    size: int
    iterations: int


def plan(config: TransferConfig) -> tuple[Scale, ...]:
    """The scales of a transfer, coarsest first, ending at ``config.size``.

    Without ``config.scales``, the size halves while the coarsest level stays at least
    ``min_scale_size`` px. Every scale but the last runs ``coarse_iterations`` (``iterations``
    when that is None); the last runs ``iterations``.
    """
    if config.scales is None:
        count = 1 + max(0, math.floor(math.log2(config.size / config.min_scale_size)))
    else:
        count = config.scales
    sizes = [max(32, round(config.size / 2**k)) for k in reversed(range(count))]
    coarse = config.iterations if config.coarse_iterations is None else config.coarse_iterations
    return tuple(
        Scale(level, size, config.iterations if level == count - 1 else coarse) for level, size in enumerate(sizes)
    )


def total_iterations(scales: tuple[Scale, ...]) -> int:
    return sum(s.iterations for s in scales)
