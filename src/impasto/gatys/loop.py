"""The optimisation of one scale: L-BFGS (the paper's optimiser) or Adam over the image's pixels,
one objective evaluation per iteration, reporting every iteration and keeping the best image."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from impasto import images
from impasto.errors import InputError
from impasto.events import CancelToken, Iteration, TileDone, is_cancelled
from impasto.gatys import memory, regions, tiles
from impasto.gatys.problem import Problem
from impasto.gatys.schedule import Scale
from impasto.losses import LossTerms, Targets, objective
from impasto.vgg import IMAGENET_MEAN_RGB

NOISE_STD = 1.0 / 255.0


@dataclass
class Progress:
    """What a transfer has reached so far, across its scales."""

    scales: int
    total: int
    start: float
    best: Tensor | None = None
    best_loss: float = math.inf
    best_scale: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    def keep(self, x: Tensor, loss: float, level: int) -> None:
        """Remember ``x`` if it is the best of the current scale (coarser scales' losses do not
        compare with finer ones', so a new scale starts a new comparison)."""
        if level != self.best_scale or loss < self.best_loss:
            self.best, self.best_loss, self.best_scale = x, loss, level


def initial(problem: Problem, scale: Scale, progress: Progress, generator: torch.Generator) -> Tensor:
    """The starting image of a scale: the previous scale's best upsampled, or the init."""
    hw = problem.shape_at(scale.size)
    if scale.level > 0 and progress.best is not None:
        coarse = progress.best.float().cpu().clamp(0, 1)
        upsampled = images.resize_to(coarse, *hw)
        if not problem.config.photo_detail:
            return upsampled
        return (upsampled + photo_octave(problem.colour_space(problem.content), coarse.shape[-2:], hw)).clamp(0, 1)
    config = problem.config
    if problem.init_image is not None:
        return problem.colour_space(images.resize_to(problem.init_image, *hw))
    if config.init == "noise":
        # White noise of about one grey level around the mean colour the network was trained
        # on, as neural-style does: high-amplitude noise sits where the quartic style loss is
        # so steep that L-BFGS's first curvature estimate throws the image out of range.
        mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
        mean = problem.colour_space(mean)
        return mean + NOISE_STD * torch.randn((1, mean.shape[1], *hw), generator=generator)
    source = problem.content if config.init == "content" else problem.paintings[0]
    return problem.colour_space(images.resize_to(source, *hw))


def photo_octave(photo: Tensor, coarse: tuple[int, int], fine: tuple[int, int]) -> Tensor:
    """The detail of ``photo`` at size ``fine`` that a ``coarse``-sized image cannot hold: the
    photo minus its own round trip through the coarse size (a Laplacian pyramid's top level).

    Added to the upsampled coarse result at the start of a finer scale, it supplies the octave
    the upsampling lacks, which the relu4_2 content term otherwise rebuilds slowly: at 512 px
    the last scale passed the loss of 200 single-scale iterations 24 iterations sooner (142
    against 166) and ended 1.1 % lower (docs/benchmarks.md).
    """
    fine_photo = images.resize_to(photo, *fine)
    return fine_photo - images.resize_to(images.resize_to(fine_photo, *coarse), *fine)


def make_optimizer(problem: Problem, x: Tensor, history: int | None = None) -> torch.optim.Optimizer:
    """Adam, or L-BFGS keeping ``history`` curvature pairs (the config's by default; fewer where
    the memory plan says so)."""
    config = problem.config
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.lr)
    # One iteration per step() call (state persists between calls), so every evaluation is
    # reported and an interrupt loses nothing; without a line search each iteration costs
    # exactly one evaluation, as in the paper and neural-style.
    return torch.optim.LBFGS(
        [x], lr=config.lr, max_iter=1, history_size=history or config.lbfgs_history, tolerance_grad=-1.0,
        tolerance_change=-1.0
    )


def project(optimizer: torch.optim.Optimizer, x: Tensor, before: Tensor) -> None:
    """Bring ``x`` back into [0, 1] after a step from ``before``.

    Projected L-BFGS: without it ~0.2 % of the pixels end out of range and clipping them on
    saving raises the loss by 2 % (measured at 512 px); with it the image saved is the one
    optimised. torch's L-BFGS takes its next curvature pair's step from its state (``d`` × ``t``,
    the step it meant); it is rewritten as the step actually taken, so that the pair stays
    consistent with the gradients it is paired with.
    """
    with torch.no_grad():
        x.clamp_(0, 1)
        state = optimizer.state.get(x, {})
        if isinstance(optimizer, torch.optim.LBFGS) and "d" in state and state.get("t"):
            state["d"] = (x - before).flatten().div_(state["t"])


@dataclass
class _Last:
    """The latest evaluation of a scale."""

    factor: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    x: Tensor | None = None
    # The image of ``x``: ``x`` itself, or with kept regions pinned to the photo (gatys.regions).
    image: Tensor | None = None
    evaluations: int = 0


def optimise_scale(
    problem: Problem,
    scale: Scale,
    targets: Targets,
    start: Tensor,
    progress: Progress,
    on_iteration: Any = None,
    cancel: CancelToken | None = None,
) -> None:
    """Run ``scale.iterations`` iterations from ``start``, updating ``progress`` after each;
    stop early when ``cancel`` is set."""
    layout = memory.plan(problem, tuple(start.shape[-2:]), scale.iterations)
    if layout.tiling is not None and problem.extra:
        names = ", ".join(t.name for t in problem.extra)
        raise InputError(f"--tile: the extra loss terms ({names}) see whole images and cannot be tiled; "
                         "use --tile off or a larger --max-memory")
    # A copy: the initial image may be the content or style tensor itself.
    x = start.to(problem.runtime.device, copy=True).requires_grad_(True)
    pin = _pin(problem, tuple(start.shape[-2:]))
    compose = pin.compose if pin is not None else (lambda v: v)
    progress.keep(compose(x.detach()).clone(), math.inf, scale.level)
    optimizer = make_optimizer(problem, x, layout.history)
    last = _Last()
    on_tile = _tile_reporter(scale, progress, on_iteration)

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        image = compose(x)
        if layout.tiling is None:
            terms = _evaluate(problem, image, targets)
        else:
            terms, grad = tiles.evaluate(problem, image, targets, layout.tiling, on_tile)
            x.grad = pin.pull_back(grad) if pin is not None else grad
        total = terms.total
        assert x.grad is not None
        # L-BFGS falls back to a plain gradient step whenever its curvature pair is rejected
        # (the loss is locally concave near a flat start); with the paper's unnormalised loss
        # that step moves pixels by ~1e9. Scaling the objective, fixed per scale, so that the
        # first gradient is at most 1 per pixel keeps that step within the image's range and
        # changes nothing else: L-BFGS's other steps are invariant to the scale.
        if last.factor is None:
            last.factor = 1.0 / max(float(x.grad.abs().max()), 1e-30)
        x.grad.mul_(last.factor)
        last.losses, last.x, last.evaluations = terms.as_floats(), x.detach().clone(), last.evaluations + 1
        last.image = image.detach().clone() if pin is not None else last.x
        progress.keep(last.image, last.losses["total"], scale.level)
        return total.detach() * last.factor

    for _ in range(scale.iterations):
        if is_cancelled(cancel):
            return
        optimizer.step(closure)
        if problem.config.clamp:
            # The closure ran once, before the update: ``last.x`` is where this step started.
            assert last.x is not None
            project(optimizer, x, last.x)
        _emit(problem, scale, progress, last, on_iteration)
        if not math.isfinite(last.losses["total"]):
            # Should a step still overshoot, resume from the best image with fresh memory.
            assert progress.best is not None
            with torch.no_grad():
                x.copy_(progress.best)
            optimizer = make_optimizer(problem, x, layout.history)


def _pin(problem: Problem, shape: tuple[int, int]) -> regions.Pin | None:
    """Kept regions at a scale of ``shape``: the image is K ⊙ photo + (1 − K) ⊙ x (gatys.regions)."""
    keep = problem.layout.keep if problem.regions else None
    if keep is None:
        return None
    photo = problem.colour_space(images.resize_to(problem.content, *shape))
    return regions.pin(keep, photo.to(problem.runtime.device))


def _evaluate(problem: Problem, x: Tensor, targets: Targets) -> LossTerms:
    """The objective of ``x`` in one pass over the whole image, its gradient left in the grad of
    the leaf ``x`` is computed from."""
    image = problem.to_network(x)
    features = problem.net(problem.runtime.prepare(image), problem.layers)
    terms = objective(features, image, targets, problem.weights, problem.extra)
    terms.total.backward()
    return terms


def _tile_reporter(scale: Scale, progress: Progress, on_iteration: Any) -> tiles.TileCallback | None:
    """A callback reporting each tile of an iteration under way as a TileDone event."""
    if on_iteration is None:
        return None

    def report(tile: int, count: int) -> None:
        on_iteration(TileDone(step=len(progress.history) + 1, total=progress.total,
                              seconds=time.perf_counter() - progress.start, losses={}, scale=scale.level,
                              scales=progress.scales, tile=tile, tiles=count))

    return report


def _emit(problem: Problem, scale: Scale, progress: Progress, last: _Last, on_iteration: Any) -> None:
    assert last.image is not None
    height, width = last.image.shape[-2:]
    event = Iteration(
        step=len(progress.history) + 1,
        total=progress.total,
        seconds=time.perf_counter() - progress.start,
        losses=last.losses,
        scale=scale.level,
        scales=progress.scales,
        height=height,
        width=width,
        evaluations=last.evaluations,
        image=partial(problem.render, last.image),
    )
    progress.history.append(event.record())
    if on_iteration is not None:
        on_iteration(event)
