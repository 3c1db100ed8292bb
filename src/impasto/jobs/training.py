"""The training jobs: a network for one painting (``train``), for several (``train-multistyle``)
and the any-painting network (``train-arbitrary``); each writes its model file and job file."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from impasto import storage
from impasto.config import ArbitraryConfig, TrainConfig
from impasto.events import Callback, CancelToken, broadcast
from impasto.jobs.base import BesideOutput, JobInterrupted, Outcome
from impasto.jobs.records import to_record


@dataclass(frozen=True)
class TrainJob(BesideOutput):
    """``impasto train``: a network for one painting, written to ``output`` (.pt)."""

    kind: ClassVar[str] = "train"
    config_type: ClassVar[type] = TrainConfig
    unit: ClassVar[str] = "it"

    style_image: Path
    data: Path
    output: Path
    config: TrainConfig = field(default_factory=TrainConfig)
    name: str | None = None
    preview_dir: Path | None = None
    checkpoint: Path | None = None
    resume: bool = False

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_train(self, on_event, cancel)

    def with_output(self, output: Path) -> TrainJob:
        return dataclasses.replace(self, output=output, preview_dir=None, checkpoint=None)

@dataclass(frozen=True)
class ArbitraryJob(BesideOutput):
    """``impasto train-arbitrary``: the any-painting network, trained on the photos of ``data``
    and the paintings of ``paintings``, written to ``output`` (.pt); the held-out losses are
    appended to ``log`` (JSON lines) when one is given."""

    kind: ClassVar[str] = "train-arbitrary"
    config_type: ClassVar[type] = ArbitraryConfig
    unit: ClassVar[str] = "it"

    data: Path
    paintings: Path
    output: Path
    config: ArbitraryConfig = field(default_factory=ArbitraryConfig)
    checkpoint: Path | None = None
    resume: bool = False
    log: Path | None = None
    init_from: Path | None = None

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_arbitrary(self, on_event, cancel)

    def with_output(self, output: Path) -> ArbitraryJob:
        return dataclasses.replace(self, output=output, checkpoint=None, log=None)

@dataclass(frozen=True)
class MultiTrainJob(BesideOutput):
    """``impasto train A.jpg B.jpg …``: one multi-style network for several paintings (Dumoulin et
    al. 2017); with ``base`` (``--add-style --model BASE.pt``) only the new paintings' style
    vectors train, the convolutions of ``base`` frozen."""

    kind: ClassVar[str] = "train-multistyle"
    config_type: ClassVar[type] = TrainConfig
    unit: ClassVar[str] = "it"

    style_images: tuple[Path, ...]
    data: Path
    output: Path
    config: TrainConfig = field(default_factory=TrainConfig)
    names: tuple[str, ...] | None = None
    base: Path | None = None
    preview_dir: Path | None = None
    checkpoint: Path | None = None
    resume: bool = False
    # A model file whose training this run continues (``impasto train --init-from``).
    init_from: Path | None = None

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_train_multistyle(self, on_event, cancel)

    def with_output(self, output: Path) -> MultiTrainJob:
        return dataclasses.replace(self, output=output, preview_dir=None, checkpoint=None)


def _run_train(job: TrainJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    from impasto.fast.single.train import train
    from impasto.fast.training.loop import TrainingInterrupted, check_model_path

    output = check_model_path(job.output)
    preview_dir = job.preview_dir
    try:
        result = train(job.style_image, job.data, output, job.config, style_name=job.name, preview_dir=preview_dir,
                       checkpoint=job.checkpoint, resume=job.resume, on_event=on_event, cancel=cancel)
    except TrainingInterrupted as stop:
        raise JobInterrupted(f"{stop}; continue with --resume") from None
    return _trained(job, output, result)


def _run_arbitrary(job: ArbitraryJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    from impasto.fast.arbitrary.train import ValidationLog, train_arbitrary
    from impasto.fast.training.loop import TrainingInterrupted, check_model_path

    output = check_model_path(job.output)
    log = ValidationLog(storage.check_output_path(job.log, [output])) if job.log is not None else None
    try:
        result = train_arbitrary(job.data, job.paintings, output, job.config, checkpoint=job.checkpoint,
                                 resume=job.resume, init_from=job.init_from, on_event=broadcast(log, on_event),
                                 cancel=cancel)
    except TrainingInterrupted as stop:
        raise JobInterrupted(f"{stop}; continue with --resume") from None
    return _trained(job, output, result)


def _trained(job: TrainJob | ArbitraryJob, output: Path, result: Any) -> Outcome:
    """A training's job file and outcome (``result``: a ``fast.training.loop.TrainResult``)."""
    summary = {"outputs": [os.fspath(output)], "iterations": result.iterations, "seconds": round(result.seconds, 1),
               "complete": result.complete, "seed": job.config.seed,
               "validation": result.validation[-1] if result.validation else None}
    storage.write_json(job.job_file, to_record(job, summary))
    state = "saved" if result.complete else "cancelled; saved the network as trained so far to"
    return Outcome([output, job.job_file], result.complete,
                   f"{state} {output} after {result.iterations} iterations in {result.seconds:.0f} s"
                   f"{_held_out(result.validation)}", result, summary)


def _held_out(validation: list[dict[str, float]]) -> str:
    """The last held-out loss for a summary line; nothing when this run validated nothing (one
    that continued a model already at its --iterations)."""
    return f"; held-out loss {validation[-1]['total']:.4g}" if validation else ""


def _run_train_multistyle(job: MultiTrainJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    from impasto.fast.multistyle.train import train_multistyle
    from impasto.fast.training.loop import TrainingInterrupted, check_model_path

    output = check_model_path(job.output)
    try:
        result = train_multistyle(list(job.style_images), job.data, output, job.config,
                                  names=list(job.names) if job.names else None, base=job.base,
                                  init_from=job.init_from, preview_dir=job.preview_dir, checkpoint=job.checkpoint,
                                  resume=job.resume, on_event=on_event, cancel=cancel)
    except TrainingInterrupted as stop:
        raise JobInterrupted(f"{stop}; continue with --resume") from None
    summary = {"outputs": [os.fspath(output)], "iterations": result.iterations, "seconds": round(result.seconds, 1),
               "complete": result.complete, "seed": job.config.seed, "styles": result.model.names,
               "validation": result.validation[-1] if result.validation else None}
    storage.write_json(job.job_file, to_record(job, summary))
    state = "saved" if result.complete else "cancelled; saved the network as trained so far to"
    return Outcome([output, job.job_file], result.complete,
                   f"{state} {output} ({len(result.model.names)} styles) after {result.iterations} iterations in "
                   f"{result.seconds:.0f} s{_held_out(result.validation)}", result, summary)
