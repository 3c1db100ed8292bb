"""The warping error of Lai et al. (ECCV 2018, "Learning blind video temporal consistency"):
how much a stylised video changes along the original video's motion.

E_warp = 1/(T−1) Σ_t  Σ_x M_t(x) ‖O_t(x) − Ŵ(O_{t+1})(x)‖² / Σ_x M_t(x)

with O the stylised frames as RGB in [0, 1], Ŵ(O_{t+1}) frame t+1 warped back onto frame t by
the flow t → t+1 of the *original* frames, and M_t the non-occlusion mask of the forward–
backward check. Lai et al. use FlowNet2 flow; here it is OpenCV's DIS (or Farneback), the
method named in the result. Departure: M_t also excludes pixels flowing out of the frame and
motion boundaries (see :func:`impasto.video.flow.reliable`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from impasto import images
from impasto.config import TransferConfig
from impasto.errors import InputError
from impasto.video.flow import FlowEstimator, FlowMethod, grey, reliable, warp
from impasto.video.io import VideoReader, to_tensor


@dataclass(frozen=True)
class WarpingError:
    """The mean warping error over frame pairs and each pair's (frame t and t+1, from 0)."""

    mean: float
    per_frame: list[float] = field(default_factory=list)
    method: str = "dis"

    def to_dict(self) -> dict[str, object]:
        return {"warping_error": self.mean, "method": self.method, "pairs": len(self.per_frame),
                "per_frame": self.per_frame}


def pair_error(original: tuple[Tensor, Tensor], stylised: tuple[Tensor, Tensor], estimate: FlowEstimator) -> float:
    """The masked mean squared difference of one pair of consecutive stylised frames."""
    a, b = grey(original[0]), grey(original[1])
    forward, backward = estimate(a, b), estimate(b, a)
    mask = reliable(forward, backward)
    difference = (stylised[0] - warp(stylised[1], forward)).pow(2).sum(1, keepdim=True)
    covered = float(mask.sum())
    return float((difference * mask).sum()) / covered if covered else 0.0


def warping_error(
    originals: Iterable[Tensor], stylised: Iterable[Tensor], method: FlowMethod = "dis"
) -> WarpingError:
    """The warping error of ``stylised`` frames (each (1, 3, H, W)) against their ``originals``;
    originals of another size are resized to the stylised frames' size first."""
    estimate = FlowEstimator(method)
    errors: list[float] = []
    before: tuple[Tensor, Tensor] | None = None
    for original, output in zip(originals, stylised, strict=True):
        if tuple(original.shape[-2:]) != tuple(output.shape[-2:]):
            original = images.resize_to(original, *output.shape[-2:])
        if before is not None:
            if before[1].shape != output.shape:
                raise InputError("the stylised video changes frame size mid-stream")
            errors.append(pair_error((before[0], original), (before[1], output), estimate))
        before = (original, output)
    if not errors:
        raise InputError("the warping error needs at least two frames")
    return WarpingError(sum(errors) / len(errors), errors, method)


def frames_of(path: str | os.PathLike[str]) -> Iterator[Tensor]:
    """A video's frames, one (1, 3, H, W) tensor at a time."""
    reader = VideoReader(path)
    try:
        for batch in reader.batches(1):
            yield to_tensor(batch)
    finally:
        reader.close()


def video_warping_error(
    original: str | os.PathLike[str], stylised: str | os.PathLike[str], method: FlowMethod = "dis"
) -> WarpingError:
    """The warping error of the video ``stylised`` made from ``original`` (same frame count)."""
    try:
        return warping_error(frames_of(original), frames_of(stylised), method)
    except ValueError as exc:
        if "zip()" in str(exc):
            raise InputError(f"{stylised}: not the same number of frames as {original}") from None
        raise


def style_losses(
    frames: Sequence[Tensor], styles: Sequence[Tensor], config: TransferConfig | None = None
) -> list[float]:
    """The paper's weighted style loss β L_style of each frame (RGB (1, 3, H, W), one size), in
    float32, against ``styles`` (RGB tensors) resized as ``transfer`` would for that size: the
    yardstick of how much a temporal scheme costs in style. One network serves every frame."""
    from impasto.gatys.problem import Problem
    from impasto.gatys.targets import targets
    from impasto.losses import objective
    from impasto.runtime import resolve_runtime
    from impasto.vgg import load_weights

    if not frames:
        return []
    config = replace(config or TransferConfig(), precision="fp32", convolution="direct", preserve_color="none",
                     scales=1, size=max(frames[0].shape[-2:]))
    runtime = resolve_runtime(config.device, config.precision, config.convolution)
    problem = Problem(config, runtime, frames[0], list(styles),
                      config.blend(len(styles)), (), load_weights(config.weights, config.weights_format))
    goal = targets(problem, config.size)
    losses = []
    with torch.no_grad():
        for frame in frames:
            x = problem.runtime.prepare(frame)
            terms = objective(problem.net(x, problem.layers), x, goal, problem.weights)
            losses.append(float(terms.style))
    return losses
