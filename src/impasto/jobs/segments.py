"""A fast-network video in parallel: its segments (``video-segment``) and their join
(``video-join``), the jobs ``impasto batch`` makes of a clip (:mod:`impasto.video.segments`)."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from impasto import storage
from impasto.config import ApplyConfig
from impasto.events import Callback, CancelToken
from impasto.jobs.apply import ApplyJob
from impasto.jobs.base import BesideOutput, Outcome
from impasto.jobs.records import to_record


@dataclass(frozen=True)
class VideoSegmentJob(BesideOutput):
    """Frames ``start`` to ``stop`` (exclusive; None: to the end) of ``source`` through
    ``config``'s network into ``output``, a lossless segment file, after ``lead`` frames before
    ``start`` run and discarded (``fast.frames.stylize_segment``)."""

    kind: ClassVar[str] = "video-segment"
    config_type: ClassVar[type] = ApplyConfig
    unit: ClassVar[str] = "frame"

    source: Path
    output: Path
    start: int
    stop: int | None
    lead: int
    config: ApplyConfig

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.fast.backends import make_backend
        from impasto.fast.frames import stylize_segment
        from impasto.fast.styles import load_style

        start = time.perf_counter()
        model = load_style(self.config.spec)
        c = self.config
        result = stylize_segment(model, self.source, self.output, self.start, self.stop, self.lead,
                                 backend=make_backend(c.backend, model), size=c.size, preserve_color=c.preserve_color,
                                 batch_size=c.batch_size, temporal=c.temporal, cancel=cancel)
        if not result.complete:
            return Outcome([], False, f"cancelled; {self.output} not written")
        details = {"outputs": [os.fspath(self.output)], "frames": result.frames,
                   "seconds": round(time.perf_counter() - start, 3), "complete": True}
        storage.write_json(self.job_file, to_record(self, details))
        return Outcome([self.output, self.job_file], True, f"saved {self.output} ({result.frames} frames)", result,
                       details)

    def with_output(self, output: Path) -> VideoSegmentJob:
        return dataclasses.replace(self, output=output)


@dataclass(frozen=True)
class VideoJoinJob(BesideOutput):
    """``segments`` (from :class:`VideoSegmentJob`, in order) joined into ``output`` with
    ``source``'s sound. Its job file is the ``apply`` job of the whole clip, which ``impasto run``
    repeats in one piece; the segments are removed once the video is written."""

    kind: ClassVar[str] = "video-join"
    config_type: ClassVar[type] = ApplyConfig
    unit: ClassVar[str] = "frame"

    source: Path
    segments: tuple[Path, ...]
    output: Path
    config: ApplyConfig

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.video.io import check_video_output
        from impasto.video.segments import join, remove

        start = time.perf_counter()
        check_video_output(self.output, self.source)
        joined = join(self.segments, self.output, self.source)
        details = {"outputs": [os.fspath(self.output)], "images": 0, "videos": 1,
                   "seconds": round(time.perf_counter() - start, 3), "complete": True, "frames": joined.frames,
                   "segments": len(self.segments), "audio": joined.audio}
        storage.write_json(self.job_file, to_record(ApplyJob((self.source,), self.output, self.config), details))
        remove(self.segments)
        sound = ", with sound" if joined.audio else ""
        summary = (f"saved {self.output} ({joined.width}x{joined.height}, {joined.frames} frames at {joined.fps:g} fps "
                   f"from {len(self.segments)} segments{sound})")
        return Outcome([self.output, self.job_file], True, summary, joined, details)

    def with_output(self, output: Path) -> VideoJoinJob:
        return dataclasses.replace(self, output=output)
