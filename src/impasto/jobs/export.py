"""The ``export`` job: a fast style network written as an ONNX graph (``impasto export``), its
style (a multi-style model's mix, or paintings' style code) baked in."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from impasto import storage
from impasto.config import ExportConfig
from impasto.errors import InputError
from impasto.events import Callback, CancelToken
from impasto.jobs.base import BesideOutput, Outcome
from impasto.jobs.records import to_record

ONNX_SUFFIX = ".onnx"


@dataclass(frozen=True)
class ExportJob(BesideOutput):
    """``impasto export``: the network ``config`` names, written to ``output`` (.onnx)."""

    kind: ClassVar[str] = "export"
    config_type: ClassVar[type] = ExportConfig
    # An export emits no progress events; "it" is what a bar would count if it did.
    unit: ClassVar[str] = "it"

    output: Path
    config: ExportConfig

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_export(self)

    def with_output(self, output: Path) -> ExportJob:
        return dataclasses.replace(self, output=output)


def _run_export(job: ExportJob) -> Outcome:
    # torch and onnx load here, not when the CLI starts.
    from impasto.fast.backends import export_onnx, export_styles_onnx
    from impasto.fast.multistyle.model import read_multistyle
    from impasto.fast.styles import load_style, multistyle_file

    if job.output.suffix.lower() != ONNX_SUFFIX:
        raise InputError(f"{job.output}: the output must end in {ONNX_SUFFIX}")
    config = job.config
    # The output's folder is checked before a model is read or a graph traced.
    storage.check_output_path(job.output, config.style_images, suffixes=(ONNX_SUFFIX,))
    start = time.perf_counter()
    if config.all_styles:
        source = multistyle_file(config.spec)
        data = export_styles_onnx(read_multistyle(source), job.output, storage.sha256_of(source))
    else:
        data = export_onnx(load_style(config.spec), job.output, height=config.input_height, width=config.input_width)
    details = {"outputs": [os.fspath(job.output)], "bytes": len(data), "seconds": round(time.perf_counter() - start, 3),
               "complete": True}
    storage.write_json(job.job_file, to_record(job, details))
    return Outcome([job.output, job.job_file], True, f"wrote {job.output} ({len(data) / 1e6:.1f} MB)", None, details)
