"""The optimisation of Gatys, Ecker & Bethge (CVPR 2016): the pixels of an image are adjusted
until its VGG-19 features match the photograph's content and the paintings' Gram matrices.

Speed comes from doing no more work than the paper needs: the network stops at the deepest
layer in use, targets are computed once per scale without autograd, the network runs in
bfloat16 and channels-last where the runtime policy says so (losses stay in float32), and a
coarse-to-fine schedule does most iterations at a fraction of the pixels.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from impasto import colour, images
from impasto.config import TransferConfig
from impasto.errors import ImpastoError, InputError
from impasto.events import Callback, CancelToken, is_cancelled
from impasto.gatys import memory
from impasto.gatys.loop import Progress, initial, optimise_scale
from impasto.gatys.problem import Problem
from impasto.gatys.regions import Region
from impasto.gatys.regions import load as load_regions
from impasto.gatys.schedule import plan, total_iterations
from impasto.gatys.targets import targets
from impasto.losses import LossTerms, Term, objective
from impasto.runtime import resolve_runtime
from impasto.vgg import load_weights

ImageSource = str | Path | Image.Image | np.ndarray | Tensor


@dataclass
class Result:
    """The stylised image (RGB in [0, 1], shape (1, 3, H, W), always at the requested size) and
    how it was reached. ``config`` is the run's, with the seed it drew when none was given.

    A run stopped early (cancelled, or interrupted) holds the best image so far; ``complete``
    says whether every iteration ran, and ``scale_size`` the long side of the
    scale the image comes from (smaller than ``config.size`` when the run stopped at a
    coarse scale: the image is then that scale's best, upsampled). ``scales_done`` counts the
    scales that ran all their iterations. ``is_picture`` is false for a run from noise stopped
    in the first half of its first scale: a grey blur, which ``impasto.jobs`` does not write."""

    tensor: Tensor
    history: list[dict[str, Any]]
    config: TransferConfig
    seconds: float
    device: str
    precision: str
    complete: bool = True
    scale_size: int = 0
    scales_done: int = 0
    is_picture: bool = True

    @property
    def image(self) -> Image.Image:
        return images.to_pil(self.tensor)

    @property
    def loss(self) -> float:
        """The total loss of the returned image: the lowest evaluation at the last scale reached
        (the last evaluation is not always the lowest; coarser scales' losses do not compare)."""
        final = self.history[-1]["scale"]
        return min(row["total"] for row in self.history if row["scale"] == final)


class TransferInterrupted(ImpastoError):
    """Raised on KeyboardInterrupt; ``result`` holds the best image so far, or None when the run
    was stopped before its first iteration."""

    def __init__(self, result: Result | None) -> None:
        super().__init__("interrupted")
        self.result = result


def transfer(
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: TransferConfig | None = None,
    on_iteration: Callback | None = None,
    *,
    cancel: CancelToken | None = None,
    extra_terms: Sequence[Term] = (),
    init_image: ImageSource | None = None,
    regions: Sequence[Region] = (),
) -> Result:
    """Repaint ``content`` in the style of ``styles`` (Gatys et al. 2016).

    Sources may be paths, PIL images, arrays or RGB tensors in [0, 1]. ``on_iteration`` receives
    an :class:`~impasto.events.Iteration` after every iteration. ``cancel`` stops the run after
    the current iteration and returns the best image so far (``Result.complete`` false);
    ``extra_terms`` are added to the paper's objective; ``init_image`` replaces ``config.init``
    as the starting image (resized to each first scale). ``regions`` give parts of the photo
    their own painting or keep them as they are (Gatys et al. 2017, §4.1; ``gatys.regions``);
    ``styles`` then paint the rest, and may be empty to keep it. Raises InputError for unusable
    inputs and TransferInterrupted (carrying the best image so far) on KeyboardInterrupt.
    """
    config = config or TransferConfig()
    if config.seed is None:
        # Drawn here and kept in the result's config, so that every run can be repeated.
        config = replace(config, seed=secrets.randbits(31))
    start = time.perf_counter()
    # Loaded first, so that a bad path fails before the network's weights are read.
    init = _load(init_image, config) if init_image is not None else None
    problem = build_problem(content, styles, config, tuple(extra_terms), regions)
    if init is not None:
        problem = replace(problem, init_image=init)
    scales = plan(config)
    memory.check(problem, scales)
    progress = Progress(len(scales), total_iterations(scales), start)
    generator = torch.Generator().manual_seed(config.seed)
    try:
        for scale in scales:
            if is_cancelled(cancel):
                break
            scale_targets = targets(problem, scale.size)
            optimise_scale(problem, scale, scale_targets, initial(problem, scale, progress, generator), progress,
                           on_iteration, cancel)
    except KeyboardInterrupt:
        raise TransferInterrupted(_result(problem, progress)) from None
    result = _result(problem, progress)
    if result is None:
        raise TransferInterrupted(None)
    return result


def build_problem(
    content: ImageSource, styles: ImageSource | Sequence[ImageSource], config: TransferConfig, extra: tuple[Term, ...],
    regions: Sequence[Region] = (),
) -> Problem:
    """Load and check the inputs (regions' masks and paintings included), colour-match the
    styles where asked, choose the runtime."""
    content_image = _load(content, config)
    style_list = _as_list(styles)
    if not style_list and not any(r.style is not None for r in regions):
        raise InputError("at least one style image is needed" if not regions else
                         "--region: no region has a painting and there is no painting for the rest")
    style_images = [_load(s, config) for s in style_list]
    blend = config.blend(len(style_images)) if style_images else ()

    def match(style: Tensor) -> Tensor:
        return colour.match_histogram(style, content_image) if config.preserve_color == "histogram" else style

    loaded = load_regions(regions, tuple(content_image.shape[-2:]), lambda s: _load(s, config), match)
    runtime = resolve_runtime(config.device, config.precision, config.convolution)
    weights = load_weights(config.weights, config.weights_format)
    style_images = [match(s) for s in style_images]
    return Problem(config, runtime, content_image, style_images, blend, extra, weights, regions=loaded)


def _result(problem: Problem, progress: Progress) -> Result | None:
    """The best image so far at the requested size, or None before the first iteration."""
    if not progress.history or progress.best is None:
        return None
    config = problem.config
    scales = plan(config)
    reached = scales[progress.best_scale]
    ran = [row["scale"] for row in progress.history]
    scales_done = sum(ran.count(scale.level) == scale.iterations for scale in scales)
    # From noise the first iterations are a grey blur; half a scale of L-BFGS has drawn the
    # picture (a single-scale run stopped late keeps its work). A start from an image is one.
    from_noise = config.init == "noise" and problem.init_image is None
    is_picture = scales_done > 0 or not from_noise or 2 * ran.count(scales[0].level) >= scales[0].iterations
    return Result(
        tensor=problem.render(progress.best, problem.shape_at(config.size)),
        history=progress.history,
        config=config,
        seconds=time.perf_counter() - progress.start,
        device=str(problem.runtime.device),
        precision=problem.runtime.precision,
        complete=len(progress.history) == progress.total,
        scale_size=reached.size,
        scales_done=scales_done,
        is_picture=is_picture,
    )


def _as_list(styles: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    """One style source or several, as a list (a tensor or array is one image, not a sequence)."""
    return list(styles) if isinstance(styles, (list, tuple)) else [styles]


def _load(source: ImageSource, config: TransferConfig) -> Tensor:
    if isinstance(source, Tensor):
        if source.dim() != 4 or source.shape[:2] != (1, 3):
            raise InputError(f"tensor: expected shape (1, 3, H, W), got {tuple(source.shape)}")
        return source.detach().float().cpu().clamp(0, 1)
    return images.load_image(source, max_pixels=config.max_pixels)


def evaluate(
    image: ImageSource,
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: TransferConfig | None = None,
    regions: Sequence[Region] = (),
) -> LossTerms:
    """The paper's objective of ``image`` for ``content`` and ``styles`` (and ``regions``, with
    the guided style term of spatial control), in float32.

    The one yardstick used to compare results across precisions, optimisers and tools: the
    content image is resized to the image's size and the styles as ``transfer`` would.
    """
    config = config or TransferConfig()
    fp32 = replace(config, precision="fp32", convolution="direct", preserve_color="none", scales=1)
    img = _load(image, fp32)
    fp32 = replace(fp32, size=max(img.shape[-2:]))
    content_image = images.resize_to(_load(content, fp32), *img.shape[-2:])
    problem = build_problem(content_image, styles, fp32, (), regions)
    with torch.no_grad():
        x = problem.runtime.prepare(img)
        return objective(problem.net(x, problem.layers), x, targets(problem, fp32.size), problem.weights)
