"""Clips with a known camera motion, made from a still: a window that pans and zooms over it.

For tests and benchmarks of temporal consistency, where the motion must be known and the
footage must not be shipped: the still is read in place and the clip written wherever asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.video.io import VideoWriter


@dataclass(frozen=True)
class CameraMove:
    """Over the clip the window's centre moves by ``pan`` (fractions of the still's width and
    height) and its size is multiplied by ``zoom`` (below 1: zooming in). The window starts
    at ``start`` of the still's size, centred."""

    name: str
    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0
    start: float = 0.7


MOVES = {
    "pan": CameraMove("pan", pan=(0.2, 0.0)),
    "zoom": CameraMove("zoom", zoom=0.6, start=0.9),
    "pan_zoom": CameraMove("pan_zoom", pan=(-0.12, 0.08), zoom=0.7, start=0.85),
}


def camera_clip(still: Tensor, move: CameraMove, frames: int, height: int, width: int) -> list[Tensor]:
    """``frames`` views (each (1, 3, height, width)) of ``still`` (1, 3, H, W) along ``move``."""
    clip = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        scale = move.start * move.zoom**t
        cx, cy = move.pan[0] * t, move.pan[1] * t
        # An affine grid in [-1, 1] coordinates of the still: scale, then shift.
        theta = torch.tensor([[scale, 0.0, 2 * cx], [0.0, scale, 2 * cy]])[None]
        grid = F.affine_grid(theta, [1, 3, height, width], align_corners=False)
        clip.append(F.grid_sample(still, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
                    .clamp(0, 1))
    return clip


def write_clip(frames: list[Tensor], path: Path, fps: float = 24.0) -> Path:
    """Write frames as a video with OpenCV (MPEG-4 Part 2)."""
    writer = VideoWriter(path, fps)
    try:
        for frame in frames:
            writer.write(frame)
        writer.commit()
    finally:
        writer.close()
    return path
