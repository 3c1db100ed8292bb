"""A job as the JSON record of its job file (``jobs.from_record`` reads one back)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from impasto.config import RegionSpec, to_dict
from impasto.jobs.base import FORMAT, VERSION, Job


def to_record(job: Job, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job file's contents: paths absolute, so that it runs from any folder."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(job):  # type: ignore[arg-type]
        if f.name == "config":
            continue
        value = getattr(job, f.name)
        if isinstance(value, Path):
            value = os.fspath(value.absolute())
        elif isinstance(value, tuple):
            value = [os.fspath(v.absolute()) if isinstance(v, Path) else v.to_dict() if isinstance(v, RegionSpec)
                     else v for v in value]
        fields[f.name] = value
    record = {"format": FORMAT, "version": VERSION, "kind": job.kind, "job": fields, "config": to_dict(job.config)}
    if result is not None:
        record["result"] = result
    return record
