"""A clip split at key frames into segments that are stylised apart, in parallel, then joined.

Why a temporally consistent clip can be split (:mod:`impasto.video.temporal`): every run over a
clip has a key on each ``interval``-th frame, and from a key on, an output depends on the frames
from that key alone, with one exception. A new key keeps ``KEY_CARRY`` (half) of the previous
output's coarse shading, and that output carries its own key's shading, and so on back to the
clip's first frame. So a segment starts ``OVERLAP_KEYS`` keys early: it stylises those frames
from a fresh key, without the shading before it, and discards them. What its first key carries
then differs from what the sequential run's carries by about ``KEY_CARRY ** OVERLAP_KEYS`` of
one key's carried shading, and the difference halves again at each key after it. Carrying the
exact shading instead would need the previous segment's last output: the segments would run one
after another. Measured (docs/video.md, 192 frames of 384 x 288 in four segments): with no
warm-up, the frame pairs at the cuts have 12 % more warping error and the whole clip 0.7 %; a
warm-up of one key (4 frames) gives the sequential run's warping error (within 0.4 % at the cuts,
0.01 % over the clip) with frames up to 10 levels of 255 off; two keys, frames up to 3 levels
off (0.03 on average), below what the H.264 writer changes (5 on average). Two keys it is, for
8 frames more a segment.

A segment is written as lossless video (FFV1 in Matroska, through OpenCV, which every video
install has) to a hidden partial file renamed when whole, so a segment file is whole or absent.
The join decodes them in order and encodes the frames with the writer a single run uses, with
the source's sound: the same frames give the same video.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from impasto.errors import InputError
from impasto.storage import job_path, make_folder
from impasto.video.io import VideoReader, VideoWriter, cv2_module, partial_files, to_frames, to_tensor

# Keys run before a segment's first frame and discarded; see the module's docstring.
OVERLAP_KEYS = 2
# A segment's frames when neither a count nor a length is asked for: at 24 fps, five seconds,
# which keeps the warm-up (8 frames) to 7 % of the work; a minute of video makes 12 segments.
DEFAULT_SEGMENT_FRAMES = 120
SEGMENT_SUFFIX = ".mkv"
# How many frames the join decodes and encodes at a time.
JOIN_BATCH = 16


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` to ``stop`` (exclusive; None: to the clip's end) of a clip, after
    ``lead`` frames before ``start`` stylised and discarded."""

    index: int
    start: int
    stop: int | None
    lead: int


def segment_length(total: int, interval: int, segments: int | None = None, frames: int | None = None) -> int:
    """Frames a segment: ``frames``, or the clip's ``total`` split into ``segments``, or
    ``DEFAULT_SEGMENT_FRAMES``; rounded up to a whole number of key intervals, so that every
    segment starts on a key of the sequential run."""
    if segments is not None and frames is not None:
        raise InputError("--segments and --segment-frames: one or the other")
    for value, option in ((segments, "--segments"), (frames, "--segment-frames")):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"{option}: must be a positive integer, got {value!r}")
    wanted = math.ceil(total / segments) if segments is not None else frames or DEFAULT_SEGMENT_FRAMES
    return max(interval, math.ceil(wanted / interval) * interval)


def plan(total: int, length: int, lead: int) -> list[Segment]:
    """Segments of ``length`` frames over a clip of ``total`` frames, each after up to ``lead``
    frames of warm-up. ``total`` is the container's count, which may be a little off: the last
    segment runs to the clip's end, wherever that is."""
    starts = range(0, max(total, 1), length)
    return [Segment(i, start, starts[i + 1] if i + 1 < len(starts) else None, min(lead, start))
            for i, start in enumerate(starts)]


def frame_count(source: Path) -> int:
    """The clip's frame count as its container states it; 0 when unknown or unreadable (the
    clip then goes as one piece, and its job says what is wrong with it)."""
    try:
        reader = VideoReader(source)
    except InputError:
        return 0
    try:
        return reader.total
    finally:
        reader.close()


def work_folder(output: Path) -> Path:
    """Where a video's segments wait for the join, beside it: ``out/clip_style.segments/``."""
    return output.with_name(f"{output.stem}.segments")


def segment_path(work: Path, index: int) -> Path:
    return work / f"segment_{index:05d}{SEGMENT_SUFFIX}"


class SegmentWriter:
    """Lossless frames to ``path`` through a hidden partial file; ``commit`` renames it, ``close``
    without a commit removes it. Frames lose an odd last row or column, as the final writer's do,
    so that the join hands it frames it keeps whole."""

    def __init__(self, path: Path, fps: float) -> None:
        self.cv2 = cv2_module()
        self.path, self.fps = path, fps
        self.partial = partial_files(path)[0]
        self.writer: Any = None
        self.frames = self.width = self.height = 0

    def write(self, batch: Tensor) -> None:
        if self.writer is None:
            self.height, self.width = (side - side % 2 for side in batch.shape[-2:])
            make_folder(self.partial.parent)
            self.writer = self.cv2.VideoWriter(os.fspath(self.partial), self.cv2.VideoWriter_fourcc(*"FFV1"),
                                               self.fps, (self.width, self.height))
            if not self.writer.isOpened():
                raise InputError(f"{self.path}: this OpenCV cannot write FFV1 video (lossless segments)")
        for frame in to_frames(batch[..., : self.height, : self.width]):
            self.writer.write(frame)
        self.frames += len(batch)

    def commit(self) -> int:
        """Move the segment into place; returns its frames. A segment of no frames (its start lay
        past the clip's end, which the container's count put further) is an empty file."""
        if self.writer is None:
            make_folder(self.partial.parent)
            self.partial.write_bytes(b"")
        else:
            self.writer.release()
            self.writer = None
        os.replace(self.partial, self.path)
        return self.frames

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        self.partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class Joined:
    frames: int
    fps: float
    width: int
    height: int
    audio: bool


def join(segments: Sequence[Path], output: Path, source: Path) -> Joined:
    """Write ``output`` from the ``segments`` in order, at ``source``'s frame rate and with its
    sound; a missing segment is one InputError line, and nothing is written."""
    missing = next((p for p in segments if not p.is_file()), None)
    if missing is not None:
        raise InputError(f"{output}: cannot join: the segment {missing} is missing; run the batch again to make it")
    reader = VideoReader(source)
    fps = reader.fps
    reader.close()
    writer = VideoWriter(output, fps)
    frames = 0
    try:
        for path in segments:
            if path.stat().st_size == 0:
                continue
            part = VideoReader(path)
            try:
                for batch in part.batches(JOIN_BATCH):
                    writer.write(to_tensor(batch))
                    frames += len(batch)
            finally:
                part.close()
        if not frames:
            raise InputError(f"{source}: no frame could be decoded")
        audio = writer.commit(audio_from=source)
    finally:
        writer.close()
    return Joined(frames, fps, writer.width, writer.height, audio)


def remove(segments: Sequence[Path]) -> None:
    """Remove the joined segments, their job files and what killed attempts left, then their
    folder if nothing else is in it."""
    for path in segments:
        for own in (path, job_path(path)):
            own.unlink(missing_ok=True)
            for left in path.parent.glob(f".{glob.escape(own.name)}.*.tmp"):  # storage.atomic_file's
                left.unlink(missing_ok=True)
        partial_files(path)[0].unlink(missing_ok=True)
    for folder in {p.parent for p in segments}:
        with contextlib.suppress(OSError):  # something else is in it, not ours to remove
            folder.rmdir()
