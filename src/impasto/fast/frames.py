"""Video through a fast style network: frame by frame, or temporally consistent (the previous
output warped by optical flow and blended in where the flow is reliable, see
:mod:`impasto.video.temporal`).

It lives with the fast path, which uses ``impasto.video``'s reading, writing and flow; the video
package never imports the fast one (``tests/test_imports.py``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from impasto import images
from impasto.errors import InputError
from impasto.events import Callback, CancelToken, Frames, is_cancelled
from impasto.fast.backends import Backend
from impasto.fast.model import FastModel
from impasto.fast.stylize import stylize
from impasto.video.io import VideoReader, VideoWriter, check_video_output, to_tensor
from impasto.video.temporal import DEFAULT_INTERVAL, TemporalBlender


@dataclass(frozen=True)
class VideoResult:
    frames: int
    fps: float
    width: int
    height: int
    complete: bool = True
    audio: bool = False


def stylize_video(
    model: FastModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    backend: Backend | None = None,
    size: int | None = None,
    preserve_color: bool = False,
    batch_size: int = 4,
    temporal: bool = True,
    interval: int = DEFAULT_INTERVAL,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> VideoResult:
    """Stylise every frame of ``source`` into ``output`` at the source's frame rate.

    ``size`` resizes frames to that long side first. ``temporal`` carries a keyframe's output
    along the optical flow, a new key every ``interval`` frames at most (see
    :mod:`impasto.video.temporal`); false stylises every frame on its own. The source's sound
    is kept when PyAV is installed. ``on_event`` receives a :class:`~impasto.events.Frames`
    after each batch. ``cancel`` stops after the current batch
    and keeps the frames done so far as a shorter video (``complete`` false).
    """
    output = check_video_output(Path(output), Path(source))
    reader = VideoReader(source)
    writer = VideoWriter(output, reader.fps)
    blender = TemporalBlender(interval) if temporal else None
    start, done, audio = time.perf_counter(), 0, False
    try:
        for frames in reader.batches(batch_size):
            batch = to_tensor(frames)
            if size:
                batch = images.resize_long_side(batch, size)
            out = stylize(model, batch, preserve_color=preserve_color, backend=backend)
            if blender is not None:
                out = torch.cat([blender.blend(f[None], o[None]) for f, o in zip(batch, out, strict=True)])
            writer.write(out)
            done += len(frames)
            if on_event is not None:
                on_event(Frames(done, reader.total, time.perf_counter() - start, {}, reader.source.name))
            if is_cancelled(cancel):
                break
        if not done:
            raise InputError(f"{reader.source}: no frame could be decoded")
        audio = writer.commit(audio_from=reader.source)
    finally:
        reader.close()
        writer.close()
    return VideoResult(done, reader.fps, writer.width, writer.height, complete=not is_cancelled(cancel), audio=audio)
