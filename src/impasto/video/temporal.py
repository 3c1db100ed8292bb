"""Temporal consistency for feed-forward stylisation: the previous stylised frame, warped by
optical flow onto the current one, blended in where the flow is reliable.

out_t = m · (a · W(out_{t-1}) + (1 − a) · s_t) + (1 − m) · s_t

with s_t the network's output for frame t, W the backward warp by the flow t → t-1, m the
reliability mask (see :mod:`impasto.video.flow`) and ``a`` the blend strength. Along a motion
path this is an exponential moving average of the network's outputs, so the texture that boils
from frame to frame settles, while occluded and newly visible pixels take the network's output
as it is. This is the post-hoc route (in the spirit of Lai et al., ECCV 2018, with the flow and
masks of Ruder et al. 2016) rather than a network trained with a temporal loss (Huang et al.
2017; ReCoNet, Gao et al. 2018): it works with any style network unchanged.

Departures: the mask is eroded by a few pixels and softened, so that flow errors at the
boundaries of moving regions do not drag old texture along (hard mask edges showed as seams).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from impasto import images
from impasto.video.flow import FlowMethod, Motion, warp

DEFAULT_STRENGTH = 0.8


def soften(mask: Tensor, radius: int = 2) -> Tensor:
    """Erode the mask by ``radius`` pixels, then blur its edge over as many."""
    size = 2 * radius + 1
    eroded = -F.max_pool2d(-mask, size, stride=1, padding=radius)
    return F.avg_pool2d(eroded, size, stride=1, padding=radius, count_include_pad=False)


class TemporalBlender:
    """Feeds frames in order: ``blend(frame, stylised)`` returns the consistent output for the
    source ``frame`` (1, 3, H, W) whose network output is ``stylised`` (same size)."""

    def __init__(self, strength: float = DEFAULT_STRENGTH, method: FlowMethod = "dis") -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        self.strength = strength
        self.motion = Motion(method)
        self.previous: Tensor | None = None

    def blend(self, frame: Tensor, stylised: Tensor) -> Tensor:
        if frame.shape[-2:] != stylised.shape[-2:]:
            frame = images.resize_to(frame, *stylised.shape[-2:])
        step = self.motion.step(frame)
        if step is None or self.previous is None:
            out = stylised
        else:
            backward, mask = step
            weight = self.strength * soften(mask)
            out = weight * warp(self.previous, backward) + (1 - weight) * stylised
        self.previous = out
        return out
