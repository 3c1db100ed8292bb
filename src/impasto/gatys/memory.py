"""How one scale of a transfer fits a memory budget: tiled or not, the tiles' size, and how many
L-BFGS curvature pairs the optimiser may keep.

The budget (``TransferConfig.max_memory``, default a quarter of the machine's RAM) is shared by:

* the process itself (PyTorch, the network's weights): ``BASE_BYTES``;
* image-sized state: the optimised variable, its gradient, the best and latest images, the
  optimiser's working vectors, the content image and its features: ``STATE_BYTES`` per pixel;
* L-BFGS's history, 2 × history × channels × pixels floats (Nocedal & Wright's two-loop
  recursion keeps a step and a gradient change per pair). At 4096 × 3072 the paper-era default
  of 100 pairs would take 30 GB, so at large scales the history is cut to at most half of what
  the state leaves (never below one pair); torch creates pairs only as iterations run, so a
  scale of k iterations holds at most k − 1 whatever the setting;
* the activations of one forward and backward pass, ``ACTIVATION_BYTES`` per input pixel
  (measured peak, bench/large.py): over the whole image when that fits, else over one tile and
  its halo, with the tile as large as the rest allows (fewer tiles, less halo recomputed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from impasto.errors import InputError
from impasto.gatys.problem import Problem
from impasto.gatys.schedule import Scale
from impasto.gatys.tiles import Tiling, halo_for, tiling_for

GIB = 2**30
DEFAULT_SHARE = 0.25
BASE_BYTES = 700 * 2**20
# Peak bytes per input pixel of one forward and backward pass up to relu5_1, measured on
# 512 px images and 256 px tiles (bench/large.py), with a margin; a forward pass without
# autograd (targets, pass 1 of a tiled evaluation) needs well under half of it.
ACTIVATION_BYTES = {torch.bfloat16: 2000, torch.float16: 2000, torch.float32: 2800}
# Per pixel and channel of the optimised variable: itself, its gradient, the best and the latest
# copies (the latest is also where the projection onto [0, 1] measures each step from), and
# L-BFGS's flat gradient, previous gradient, direction and step (float32 each).
VARIABLE_COPIES = 10
# Per pixel besides: the content image and its resized copy, the style image at the scale, and
# the content features at relu4_2 (512 channels at 1/64 of the pixels).
STATE_BYTES = 3 * 4 * 3 + 512 // 64 * 4
MIN_TILE = 64


def machine_memory() -> int:
    """Physical memory in bytes (8 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


def budget(problem: Problem) -> int:
    """The memory budget in bytes: ``max_memory`` GiB, or a quarter of the machine's RAM, which
    leaves room for the system, other programs and the allocator's slack."""
    gib = problem.config.max_memory
    return int(gib * GIB) if gib is not None else int(DEFAULT_SHARE * machine_memory())


@dataclass(frozen=True)
class Plan:
    """One scale's layout: ``tiling`` None for one pass over the whole image; ``history`` the
    L-BFGS pairs kept; ``bytes`` the estimated peak."""

    tiling: Tiling | None
    history: int
    bytes: int


def plan(problem: Problem, shape: tuple[int, int], iterations: int) -> Plan:
    """The layout of a scale of ``shape`` (height, width) running ``iterations`` iterations."""
    config, dtype = problem.config, problem.runtime.dtype
    pixels = shape[0] * shape[1]
    channels = 1 if problem.luminance else 3
    value = channels * pixels * 4
    fixed = BASE_BYTES + VARIABLE_COPIES * value + STATE_BYTES * pixels
    pair = 2 * value if config.optimizer == "lbfgs" else 0
    # Adam keeps two moments; L-BFGS a step and a gradient change per pair, created one per
    # iteration after the first.
    wanted = min(config.lbfgs_history, max(1, iterations - 1)) if pair else 0
    optimiser = pair * wanted if pair else 2 * value
    whole = ACTIVATION_BYTES[dtype] * pixels
    total = budget(problem)
    size = config.tile_size
    if size is None and (config.tile == "off" or fixed + optimiser + whole <= total):
        return Plan(None, max(wanted, 1), fixed + optimiser + whole)
    left = total - fixed
    history = max(1, min(wanted, (left // 2) // pair)) if pair else 0
    optimiser = pair * history if pair else optimiser
    if size is None:
        halo, _ = halo_for(problem.layers)
        room = (left - optimiser) / ACTIVATION_BYTES[dtype]
        size = int(math.sqrt(max(room, 0))) - 2 * halo
        if size < MIN_TILE:
            need = (fixed + optimiser + ACTIVATION_BYTES[dtype] * (MIN_TILE + 2 * halo) ** 2) / GIB
            raise InputError(
                f"--max-memory: {total / GIB:.1f} GiB is too little for a {shape[1]}x{shape[0]} image; "
                f"it needs about {need:.1f} GiB"
            )
    tiling = tiling_for(problem.layers, size)
    tile_pixels = min(pixels, (tiling.tile + 2 * tiling.halo) ** 2)
    return Plan(tiling, max(history, 1), fixed + optimiser + ACTIVATION_BYTES[dtype] * tile_pixels)


def check(problem: Problem, scales: Sequence[Scale]) -> None:
    """Raise the one-line InputError a scale's plan would, before any scale runs: a budget too
    small for the largest scale, or extra loss terms at a scale that must be tiled."""
    for scale in scales:
        layout = plan(problem, problem.shape_at(scale.size), scale.iterations)
        if layout.tiling is not None and problem.extra:
            names = ", ".join(t.name for t in problem.extra)
            raise InputError(f"--tile: the extra loss terms ({names}) see whole images and cannot be tiled at "
                             f"{scale.size} px; use --tile off or a larger --max-memory")


def forward_tiling(problem: Problem, pixels: int) -> Tiling | None:
    """Tiles for a forward pass without autograd over an image of ``pixels`` (the targets), or
    None when the whole image fits: such a pass keeps one layer's input and output at a time."""
    config, dtype = problem.config, problem.runtime.dtype
    if config.tile == "off":
        return None
    need = ACTIVATION_BYTES[dtype] // 2
    room = budget(problem) - BASE_BYTES - STATE_BYTES * pixels
    if config.tile_size is None and need * pixels <= room:
        return None
    halo, _ = halo_for(problem.layers)
    size = config.tile_size or max(MIN_TILE, int(math.sqrt(max(room, 0) / need)) - 2 * halo)
    return tiling_for(problem.layers, size)
