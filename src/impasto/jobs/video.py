"""The ``transfer-video`` job: Gatys et al. for every frame of a video, held together by optical
flow after Ruder et al. 2016 (``impasto transfer-video``, ``impasto.video.optimise``)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from impasto import storage
from impasto.config import VideoTransferConfig
from impasto.events import Callback, CancelToken
from impasto.jobs.base import BesideOutput, JobInterrupted, Outcome
from impasto.jobs.records import to_record

if TYPE_CHECKING:
    from impasto.video.optimise import VideoTransferResult


@dataclass(frozen=True)
class TransferVideoJob(BesideOutput):
    """``impasto transfer-video``: ``content`` (a video) repainted after ``styles`` into ``output``.
    Finished frames wait in a work folder beside the output (``OUT.frames/``) until the video is
    written, so that the same job, run again after a stop, continues where it stopped."""

    kind: ClassVar[str] = "transfer-video"
    config_type: ClassVar[type] = VideoTransferConfig
    unit: ClassVar[str] = "frame"

    content: Path
    styles: tuple[Path, ...]
    output: Path
    config: VideoTransferConfig = field(default_factory=VideoTransferConfig)

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_transfer_video(self, on_event, cancel)

    def with_output(self, output: Path) -> TransferVideoJob:
        return dataclasses.replace(self, output=output)


def _run_transfer_video(job: TransferVideoJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    # torch and OpenCV load here, not when the CLI starts.
    from impasto.gatys.api import TransferInterrupted
    from impasto.video.optimise import transfer_video, work_folder

    try:
        result = transfer_video(job.content, job.styles, job.output, job.config, on_event=on_event, cancel=cancel)
    except (TransferInterrupted, KeyboardInterrupt):
        # Ctrl-C outside a frame's optimisation (flow, decoding, encoding) keeps the frames too.
        raise JobInterrupted(f"interrupted; finished frames are kept in {work_folder(job.output)}; run the same "
                             "command to continue") from None
    # The seed drawn for an unseeded run is the job file's, so that running it again repeats the run.
    ran = dataclasses.replace(job, config=dataclasses.replace(
        job.config, transfer=dataclasses.replace(job.config.transfer, seed=result.seed)))
    details = _details(job.output, result)
    storage.write_json(ran.job_file, to_record(ran, details))
    written = [job.output] if result.complete else []
    return Outcome([*written, ran.job_file], result.complete, _summary(job.output, result), result, details)


def _details(output: Path, result: VideoTransferResult) -> dict[str, Any]:
    """What the job file records and ``--json`` prints (the fields ``transfer-video --json`` always had)."""
    return {"outputs": [os.fspath(output)] if result.complete else [], "frames": result.frames,
            "resumed": result.resumed, "fps": result.fps, "seconds": round(result.seconds, 3), "seed": result.seed,
            "audio": result.audio, "complete": result.complete}


def _summary(output: Path, result: VideoTransferResult) -> str:
    if not result.complete:
        return (f"cancelled after {result.frames} frames; they are kept in {result.work}; run the same job again "
                "to continue")
    resumed = f", {result.resumed} of them from an earlier run" if result.resumed else ""
    sound = ", with sound" if result.audio else ""
    return (f"saved {output} ({result.frames} frames at {result.fps:g} fps{resumed}{sound}; seed {result.seed}) "
            f"in {result.seconds:.0f} s")
