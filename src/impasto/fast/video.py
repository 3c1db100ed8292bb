"""Video through a fast style network, frame by frame, with OpenCV (the ``export`` extra).

Frames are decoded and encoded by OpenCV (``cv2.VideoCapture`` / ``cv2.VideoWriter``, MPEG-4
Part 2 ``mp4v``, the codec every OpenCV build can write); the sound track is not copied. The
output is written to a hidden temporary file next to it and renamed when complete, so a failed
or interrupted run leaves no partial video and an existing file untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from impasto import images
from impasto.errors import InputError
from impasto.fast.apply import Backend, FastModel, stylize

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")
# What the writer can produce: the container follows the output's extension.
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")

FrameCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoResult:
    frames: int
    fps: float
    width: int
    height: int


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_video_output(path: Path, source: Path) -> Path:
    """Refuse, before any work, an output the writer cannot produce or that would overwrite the input."""
    return images.check_output_path(path, [source], OUTPUT_SUFFIXES)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise InputError("video needs OpenCV: pip install 'impasto[export]'") from None
    return cv2


def _to_tensor(frames: list[np.ndarray]) -> Tensor:
    """OpenCV's BGR uint8 frames as an RGB float batch (B, 3, H, W) in [0, 1]."""
    batch = np.stack(frames)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().div_(255.0)


def _to_frames(batch: Tensor) -> np.ndarray:
    data = batch.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(data[..., ::-1])


def stylize_video(
    model: FastModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    backend: Backend | None = None,
    size: int | None = None,
    preserve_color: bool = False,
    batch_size: int = 4,
    on_frames: FrameCallback | None = None,
) -> VideoResult:
    """Stylise every frame of ``source`` into ``output`` at the source's frame rate.

    ``size`` resizes frames to that long side first. ``on_frames(done, total)`` is called after
    each batch (``total`` is the container's frame count, 0 when it does not say).
    """
    cv2 = _cv2()
    source, output = Path(source), check_video_output(Path(output), Path(source))
    if not source.is_file():
        raise InputError(f"{source}: video file not found" if not source.exists() else f"{source}: not a file")
    capture = cv2.VideoCapture(os.fspath(source))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{source}: cannot be read as a video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and np.isfinite(fps) and fps > 0 else 25.0
    total = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    writer = None
    done, width, height = 0, 0, 0
    try:
        while True:
            frames = []
            while len(frames) < batch_size:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                break
            batch = _to_tensor(frames)
            if size:
                batch = images.resize_long_side(batch, size)
            result = stylize(model, batch, preserve_color=preserve_color, backend=backend)
            if writer is None:
                height, width = result.shape[-2:]
                writer = cv2.VideoWriter(os.fspath(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                if not writer.isOpened():
                    raise InputError(f"{output}: OpenCV cannot write this video format")
            for frame in _to_frames(result):
                writer.write(frame)
            done += len(frames)
            if on_frames is not None:
                on_frames(done, total)
        if writer is None:
            raise InputError(f"{source}: no frame could be decoded")
        writer.release()
        os.replace(partial, output)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        partial.unlink(missing_ok=True)
    return VideoResult(done, fps, width, height)
