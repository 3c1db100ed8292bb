"""The coarse-to-fine schedule: which sizes a transfer runs at and how many iterations each gets.

A departure from Gatys et al. (2016), who optimise at one size: solving at a fraction of the
pixels first and refining the upsampled result is neural-style's multi-resolution recipe and
style-transfer-pytorch's default. The objective at the final size is the paper's; only the
starting point of the last scale differs. ``scales=1`` is the paper's single scale.

Why 100 iterations at each coarse scale and 250 at the last (measured at 512 px, Tübingen ×
The Starry Night, docs/benchmarks.md): the last scale starts from an upsampled image that lacks
the top octave of brushwork, and L-BFGS needs about 120 iterations there to rebuild it whatever
came before (300/300 coarse iterations, 100/100, or five √2-spaced scales of 50 all passed the
same loss after 105-135 final ones), so coarse iterations beyond what forms the composition are
wasted; the long final scale then ends 2-4 % below single-scale L-BFGS at equal cost. Each finer
scale starts with the photo's own detail at that octave added (``loop.photo_octave``), which cut
that count by 14 %; moving iterations between the coarse scales did not help further.

At print sizes (outputs above ``LARGE_OUTPUT`` px) a scale's cost grows with its pixels, so
iterations are spread by cost rather than by count: each scale above ``REFERENCE_SIZE`` px runs
the larger of the two counts divided by its pixel count relative to a ``REFERENCE_SIZE`` px scale
(at least ``MIN_LARGE_ITERATIONS``), so that every such scale costs about as much as that many
iterations at 256 px. On a 4096 px output the 128, 256, 512, 1024, 2048 and 4096 px scales run
100, 100, 62, 16, 4 and 3 iterations: 92 % of them at 512 px or less, where the composition
forms, and the last scales only refine detail in an image already converged at a quarter of its
size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from impasto.config import TransferConfig

LARGE_OUTPUT = 1024
REFERENCE_SIZE = 256
MIN_LARGE_ITERATIONS = 3


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
    counts = [config.iterations if level == count - 1 else coarse for level in range(count)]
    if config.size > LARGE_OUTPUT:
        budget = max(coarse, config.iterations)
        counts = [n if size <= REFERENCE_SIZE else _by_cost(budget, size)
                  for n, size in zip(counts, sizes, strict=True)]
    return tuple(Scale(level, size, n) for level, (size, n) in enumerate(zip(sizes, counts, strict=True)))


def _by_cost(iterations: int, size: int) -> int:
    """``iterations`` at a scale of long side ``size`` (above ``REFERENCE_SIZE``) of a print-size
    output: divided by the scale's pixels relative to a ``REFERENCE_SIZE`` px scale, at least
    ``MIN_LARGE_ITERATIONS``."""
    return max(min(iterations, MIN_LARGE_ITERATIONS), round(iterations * (REFERENCE_SIZE / size) ** 2))


def total_iterations(scales: tuple[Scale, ...]) -> int:
    return sum(s.iterations for s in scales)
