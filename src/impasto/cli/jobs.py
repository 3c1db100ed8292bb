"""Running a job from the CLI (every command that writes files, and ``impasto run JOB``): the
progress bar, the summary on stderr (or as JSON on stdout), and the exit code."""

from __future__ import annotations

import json
import sys
from typing import Any

from impasto.cli.exits import EXIT_CANCELLED, EXIT_OK
from impasto.cli.progress import ProgressBar
from impasto.jobs import Job, TransferJob, run


def run_job(job: Job, *, quiet: bool = False, as_json: bool = False) -> int:
    """Run ``job`` with a progress bar unless ``quiet``; print what it wrote, and with ``as_json``
    the result as one JSON object on stdout. A KeyboardInterrupt becomes ``JobInterrupted``,
    which ``impasto.cli.main`` reports."""
    bar = None if quiet else ProgressBar(job.unit)
    try:
        outcome = run(job, on_event=bar)
    finally:
        if bar is not None:
            bar.close()
    if isinstance(job, TransferJob) and job.run_dir is not None and not quiet:
        print(f"report: {job.run_dir / 'index.html'}", file=sys.stderr)
    if not quiet and outcome.summary:
        print(outcome.summary, file=sys.stderr)
    if as_json:
        print_json(outcome.to_dict(job))
    return EXIT_OK if outcome.complete else EXIT_CANCELLED


def print_json(data: Any) -> None:
    """``--json``: one JSON object on stdout, the only thing a command prints there."""
    print(json.dumps(data, indent=1, default=str))
