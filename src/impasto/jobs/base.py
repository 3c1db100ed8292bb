"""What every job kind shares: the job file's format, the outcome of a run, and the interface a
kind implements (``Job``): its config, the file it writes its job file to, and its ``run``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from impasto import storage
from impasto.errors import ImpastoError
from impasto.events import Callback, CancelToken

FORMAT = "impasto-job"
VERSION = 1


class JobInterrupted(ImpastoError):
    """KeyboardInterrupt stopped a job; the message says what was kept."""


@dataclass(frozen=True)
class Outcome:
    """What a job wrote. ``complete`` is false for a cancelled job, whose outputs hold the
    best result so far; ``summary`` says what was written, a line per file, for a person;
    ``details`` is the summary of the result its job file records (JSON-ready; its ``outputs``
    are the job's main files, without the job file, history or report)."""

    outputs: list[Path]
    complete: bool
    summary: str
    result: Any = field(repr=False, default=None)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, job: Job) -> dict[str, Any]:
        """What ``impasto … --json`` prints: the job's kind, ``details``, its job file (None when
        none was written) and every file written."""
        job_file = os.fspath(job.job_file) if job.job_file in self.outputs else None
        return {"kind": job.kind, "complete": self.complete, **self.details, "job_file": job_file,
                "files": [os.fspath(p) for p in self.outputs]}


class Job(Protocol):
    """A job kind: a frozen dataclass of its inputs and outputs (paths) and a typed ``config``
    (an instance of ``config_type``), known in job files by ``kind``. ``unit`` names what its
    progress events count."""

    kind: ClassVar[str]
    config_type: ClassVar[type]
    unit: ClassVar[str]

    @property
    def config(self) -> Any: ...

    @property
    def target(self) -> Path:
        """The main output."""

    @property
    def job_file(self) -> Path:
        """Where the job file of a finished run goes."""

    def run(self, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
        """Check every path before any work, do the work, write the outputs and the job file."""

    def with_output(self, output: Path) -> Job:
        """The job writing its main output to ``output`` instead, without the side outputs
        (history, snapshots, previews, checkpoints) whose paths belong to the original run."""


class BesideOutput:
    """A job whose re-runnable job file is written beside its one output (``OUT.job.json``)."""

    output: Path

    @property
    def target(self) -> Path:
        return self.output

    @property
    def job_file(self) -> Path:
        return storage.job_path(self.output)
