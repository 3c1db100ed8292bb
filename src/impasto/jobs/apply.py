"""The ``apply`` job: photos, videos and folders through a trained network (``impasto apply``)."""

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
from impasto.jobs.base import BesideOutput, Outcome
from impasto.jobs.records import to_record


@dataclass(frozen=True)
class ApplyJob(BesideOutput):
    """``impasto apply``: photos, videos and folders through a trained network."""

    kind: ClassVar[str] = "apply"
    config_type: ClassVar[type] = ApplyConfig
    unit: ClassVar[str] = "frame"

    inputs: tuple[Path, ...]
    output: Path
    config: ApplyConfig

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_apply(self, on_event, cancel)

    def with_output(self, output: Path) -> ApplyJob:
        return dataclasses.replace(self, output=output)


def _run_apply(job: ApplyJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    from impasto.fast.apply import apply

    start = time.perf_counter()
    written = apply(job.inputs, job.output, job.config, on_event=on_event, cancel=cancel)
    complete = not (cancel is not None and cancel.cancelled)
    videos = sum(1 for w in written if w.frames)
    summary = {"outputs": [os.fspath(w.output) for w in written], "images": len(written) - videos, "videos": videos,
               "seconds": round(time.perf_counter() - start, 3), "complete": complete}
    storage.write_json(job.job_file, to_record(job, summary))
    lines = [f"saved {w.output} ({w.width}x{w.height}" + (f", {w.frames} frames at {w.fps:g} fps" if w.frames else "")
             + f") in {w.seconds * 1000:.0f} ms" for w in written]
    return Outcome([w.output for w in written] + [job.job_file], complete, "\n".join(lines), written, summary)
