"""The optimisation loop's own rules: pixels projected onto [0, 1], the photo's detail added
when a finer scale starts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import impasto
from impasto import images
from impasto.config import TransferConfig
from impasto.gatys.api import build_problem
from impasto.gatys.loop import Progress, initial, photo_octave, project
from impasto.gatys.schedule import plan

SMALL = TransferConfig(size=64, iterations=30, seed=0, scales=1)


def test_projected_lbfgs_finds_the_minimum_on_the_box() -> None:
    # f(x) = Σ a_i (x_i - c_i)², with some c_i outside [0, 1]: the box's minimiser is clamp(c).
    torch.manual_seed(0)
    c = torch.rand(1, 3, 8, 8) * 3 - 1
    a = torch.rand(1, 3, 8, 8) + 0.5
    x = torch.full_like(c, 0.5, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=10, tolerance_grad=-1.0,
                                  tolerance_change=-1.0)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (a * (x - c) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(30):
        before = x.detach().clone()
        optimizer.step(closure)
        project(optimizer, x, before)
        state = optimizer.state[x]
        # The next curvature pair sees the step actually taken.
        assert torch.allclose(state["d"] * state["t"], (x - before).flatten(), atol=1e-6)
        assert float(x.detach().min()) >= 0.0 and float(x.detach().max()) <= 1.0
    assert torch.allclose(x.detach(), c.clamp(0, 1), atol=1e-4)


def test_clamped_runs_report_the_loss_of_the_image_they_return(content64, style64) -> None:
    # With projection the image optimised is the image returned, so its reported loss is the
    # evaluator's loss of the returned image (float32 both; only the rounding of sums differs).
    # float32: on a CPU whose runtime picks bf16, the run's own loss is a bf16 network's.
    config = dataclasses.replace(SMALL, precision="fp32")
    result = impasto.transfer(content64, style64, config)
    scored = float(impasto.evaluate(result.tensor, content64, style64, config).total)
    assert result.loss == pytest.approx(scored, rel=1e-3)
    unclamped = impasto.transfer(content64, style64, dataclasses.replace(config, clamp=False))
    assert unclamped.history != result.history


def test_photo_octave_restores_the_photo_from_its_coarse_version(content64) -> None:
    fine = tuple(content64.shape[-2:])
    coarse = (fine[0] // 2, fine[1] // 2)
    upsampled = images.resize_to(images.resize_to(content64, *coarse), *fine)
    octave = photo_octave(content64, coarse, fine)
    assert torch.allclose(upsampled + octave, content64, atol=1e-5)
    # It is detail: no mean, and smaller than the image.
    assert abs(float(octave.mean())) < 0.01
    assert float(octave.abs().mean()) < 0.2 * float(content64.abs().mean())


def test_finer_scales_start_from_the_coarse_result_plus_the_photos_detail(content64, style64) -> None:
    config = TransferConfig(size=64, scales=2, min_scale_size=32, seed=0)
    coarse_scale, fine_scale = plan(config)
    generator = torch.Generator().manual_seed(0)
    for detail in (True, False):
        problem = build_problem(content64, style64, dataclasses.replace(config, photo_detail=detail), ())
        progress = Progress(scales=2, total=0, start=0.0)
        coarse = torch.rand(1, 3, *problem.shape_at(coarse_scale.size), generator=generator)
        progress.keep(coarse, 1.0, coarse_scale.level)
        start = initial(problem, fine_scale, progress, generator)
        fine = problem.shape_at(fine_scale.size)
        upsampled = images.resize_to(coarse, *fine)
        expected = (upsampled + photo_octave(content64, coarse.shape[-2:], fine)).clamp(0, 1) if detail else upsampled
        assert torch.equal(start, expected)
