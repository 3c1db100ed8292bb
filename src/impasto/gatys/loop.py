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
from impasto.events import CancelToken, Iteration, is_cancelled
from impasto.gatys.problem import Problem
from impasto.gatys.schedule import Scale
from impasto.losses import Targets, objective
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
        return images.resize_to(progress.best.float().cpu().clamp(0, 1), *hw)
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
    source = problem.content if config.init == "content" else problem.styles[0]
    return problem.colour_space(images.resize_to(source, *hw))


def make_optimizer(problem: Problem, x: Tensor) -> torch.optim.Optimizer:
    config = problem.config
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.lr)
    # One iteration per step() call (state persists between calls), so every evaluation is
    # reported and an interrupt loses nothing; without a line search each iteration costs
    # exactly one evaluation, as in the paper and neural-style.
    return torch.optim.LBFGS(
        [x], lr=config.lr, max_iter=1, history_size=config.lbfgs_history, tolerance_grad=-1.0, tolerance_change=-1.0
    )


@dataclass
class _Last:
    """The latest evaluation of a scale."""

    factor: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    x: Tensor | None = None
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
    runtime = problem.runtime
    # A copy: the initial image may be the content or style tensor itself.
    x = start.to(runtime.device, copy=True).requires_grad_(True)
    progress.keep(x.detach().clone(), math.inf, scale.level)
    optimizer = make_optimizer(problem, x)
    last = _Last()

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        image = problem.to_network(x)
        features = problem.net(runtime.prepare(image), problem.layers)
        terms = objective(features, image, targets, problem.weights, problem.extra)
        total = terms.total
        total.backward()
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
        progress.keep(last.x, last.losses["total"], scale.level)
        return total.detach() * last.factor

    for _ in range(scale.iterations):
        if is_cancelled(cancel):
            return
        optimizer.step(closure)
        _emit(problem, scale, progress, last, on_iteration)
        if not math.isfinite(last.losses["total"]):
            # Should a step still overshoot, resume from the best image with fresh memory.
            assert progress.best is not None
            with torch.no_grad():
                x.copy_(progress.best)
            optimizer = make_optimizer(problem, x)


def _emit(problem: Problem, scale: Scale, progress: Progress, last: _Last, on_iteration: Any) -> None:
    assert last.x is not None
    height, width = last.x.shape[-2:]
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
        image=partial(problem.render, last.x),
    )
    progress.history.append(event.record())
    if on_iteration is not None:
        on_iteration(event)
