"""Jobs: a long task (a transfer, a training, stylising files) described as data.

A job names its inputs, its outputs and its typed config. ``run`` checks every path before any
work, runs the task, writes its outputs, and writes the job file beside them: the job as it
ran, seed included, paths absolute, plus a summary of the result. ``impasto run JOB`` (the CLI),
the web studio and a cluster runner all submit jobs, so each command's logic lives here once, a
module per family of kinds, each kind carrying its config type and its ``run`` (``jobs.base.Job``)::

    {"format": "impasto-job", "version": 1, "kind": "transfer",
     "job": {"content": "/abs/photo.jpg", "styles": [...], "output": "/abs/out.png", ...},
     "config": {...TransferConfig...}, "result": {...}}

Running the job file again reproduces the run (bit for bit for a seeded run on the same CPU).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

from impasto import storage
from impasto.config import coerce, from_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken
from impasto.jobs.apply import ApplyJob
from impasto.jobs.base import FORMAT, VERSION, BesideOutput, Job, JobInterrupted, Outcome
from impasto.jobs.export import ExportJob
from impasto.jobs.figures import GalleryJob, InitComparisonJob, OptimizerComparisonJob, ReportJob, TradeoffJob
from impasto.jobs.records import to_record
from impasto.jobs.segments import VideoJoinJob, VideoSegmentJob
from impasto.jobs.training import ArbitraryJob, MultiTrainJob, TrainJob
from impasto.jobs.transfer import TransferJob
from impasto.jobs.video import TransferVideoJob

__all__ = [
    "FORMAT", "KINDS", "VERSION", "ApplyJob", "ArbitraryJob", "BesideOutput", "ExportJob", "GalleryJob",
    "InitComparisonJob", "Job", "JobInterrupted", "MultiTrainJob", "OptimizerComparisonJob", "Outcome", "ReportJob",
    "TradeoffJob", "TrainJob", "TransferJob", "TransferVideoJob", "VideoJoinJob", "VideoSegmentJob", "from_record",
    "load", "run", "to_record", "with_output",
]

#: Every job kind by the name its job files give.
KINDS: dict[str, type[Any]] = {cls.kind: cls for cls in (TransferJob, TrainJob, ArbitraryJob, MultiTrainJob, ApplyJob,
                                                      TransferVideoJob, ExportJob, ReportJob, GalleryJob,
                                                      OptimizerComparisonJob, TradeoffJob, InitComparisonJob,
                                                      VideoSegmentJob, VideoJoinJob)}


def run(job: Job, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
    """Run a job, write its outputs and its job file; see the module's docstring."""
    return job.run(on_event, cancel)


def with_output(job: Job, output: Path) -> Job:
    """The job writing its main output to ``output`` instead (``Job.with_output``)."""
    return job.with_output(output)


def from_record(record: Any, label: str = "job") -> Job:
    """The job a job file describes; every problem is one InputError line naming the field."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{label}: not an impasto job file (no \"format\": \"{FORMAT}\")")
    if not isinstance(record.get("version"), int) or record["version"] > VERSION:
        raise InputError(f"{label}: job format version {record.get('version')!r} is not one this impasto reads")
    kind = record.get("kind")
    if kind not in KINDS:
        raise InputError(f"{label}: kind {kind!r} is not one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    fields = record.get("job")
    if not isinstance(fields, dict):
        raise InputError(f"{label}: \"job\" must be an object")
    known = {f.name for f in dataclasses.fields(cls)} - {"config"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InputError(f"{label}: unknown field job.{unknown[0]} for a {kind} job")
    config = from_dict(cls.config_type, record.get("config", {}), f"{label}: config")
    hints = typing.get_type_hints(cls)
    values = {name: coerce(value, hints[name], f"{label}: job.{name}") for name, value in fields.items()}
    try:
        return cls(**values, config=config)
    except TypeError as exc:
        raise InputError(f"{label}: {storage.reason(exc)}") from None


def load(path: str | os.PathLike[str]) -> Job:
    return from_record(storage.read_json(path, "job file"), os.fsdecode(path))
