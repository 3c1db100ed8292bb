"""Video through a fast style network: frame by frame, or temporally consistent (the previous
output warped by optical flow and blended in where the flow is reliable, see
:mod:`impasto.video.temporal`); a whole clip, or one segment of it (:mod:`impasto.video.segments`).

It lives with the fast path, which uses ``impasto.video``'s reading, writing and flow; the video
package never imports the fast one (``tests/test_imports.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
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
from impasto.video.segments import SegmentWriter
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
    along the optical flow, a new key on every ``interval``-th frame and wherever the flow loses
    track (see :mod:`impasto.video.temporal`); false stylises every frame on its own. The source's sound
    is kept when PyAV is installed. ``on_event`` receives a :class:`~impasto.events.Frames`
    after each batch. ``cancel`` stops after the current batch
    and keeps the frames done so far as a shorter video (``complete`` false).
    """
    output = check_video_output(Path(output), Path(source))
    reader = VideoReader(source)
    writer = VideoWriter(output, reader.fps)
    blender = TemporalBlender(interval) if temporal else None
    audio = False
    try:
        done = 0
        for out in _stylised(model, reader, None, blender, backend, size, preserve_color, batch_size, on_event,
                             cancel):
            writer.write(out)
            done += len(out)
        if not done:
            raise InputError(f"{reader.source}: no frame could be decoded")
        audio = writer.commit(audio_from=reader.source)
    finally:
        reader.close()
        writer.close()
    return VideoResult(done, reader.fps, writer.width, writer.height, complete=not is_cancelled(cancel), audio=audio)


def stylize_segment(
    model: FastModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    start: int,
    stop: int | None,
    lead: int,
    *,
    backend: Backend | None = None,
    size: int | None = None,
    preserve_color: bool = False,
    batch_size: int = 4,
    temporal: bool = True,
    interval: int = DEFAULT_INTERVAL,
    cancel: CancelToken | None = None,
) -> VideoResult:
    """Frames ``start`` to ``stop`` (exclusive; None: to the end) of ``source``, stylised as
    :func:`stylize_video` stylises them, into ``output``, a lossless segment file
    (:mod:`impasto.video.segments`). The ``lead`` frames before ``start`` are stylised first and
    discarded: they give the segment's first key the shading a run over the whole clip gives it.
    ``start - lead`` must be a key of that run (a multiple of ``interval``). ``cancel`` stops
    after the current batch and writes nothing (``complete`` false)."""
    first = start - lead
    if temporal and first % interval:
        raise ValueError(f"a segment's warm-up must start on a key (a multiple of {interval}), not frame {first}")
    reader = VideoReader(source)
    writer = SegmentWriter(Path(output), reader.fps)
    blender = TemporalBlender(interval, start=first) if temporal else None
    try:
        reader.skip(first)
        count = None if stop is None else stop - first
        done = 0
        for out in _stylised(model, reader, count, blender, backend, size, preserve_color, batch_size, None, cancel):
            # The batch's frames before ``start`` (the warm-up) are left out.
            writer.write(out[max(0, lead - done):])
            done += len(out)
        if not done and start == 0:
            raise InputError(f"{reader.source}: no frame could be decoded")
        complete = not is_cancelled(cancel)
        if complete:
            writer.commit()
    finally:
        reader.close()
        writer.close()
    return VideoResult(writer.frames, reader.fps, writer.width, writer.height, complete=complete)


def _stylised(
    model: FastModel, reader: VideoReader, count: int | None, blender: TemporalBlender | None,
    backend: Backend | None, size: int | None, preserve_color: bool, batch_size: int,
    on_event: Callback | None, cancel: CancelToken | None,
) -> Iterator[torch.Tensor]:
    """The next ``count`` frames of ``reader`` (None: all) stylised, a batch at a time, blended
    along the motion by ``blender`` when there is one. Stops after the batch during which
    ``cancel`` was set."""
    start, done = time.perf_counter(), 0
    for frames in reader.batches(batch_size, count):
        batch = to_tensor(frames)
        if size:
            batch = images.resize_long_side(batch, size)
        out = stylize(model, batch, preserve_color=preserve_color, backend=backend)
        if blender is not None:
            out = torch.cat([blender.blend(f[None], o[None]) for f, o in zip(batch, out, strict=True)])
        done += len(frames)
        yield out
        if on_event is not None:
            on_event(Frames(done, reader.total, time.perf_counter() - start, {}, reader.source.name))
        if is_cancelled(cancel):
            return
