"""The figure jobs: the paper's experiments (``impasto gallery``, ``tradeoff``,
``compare-optimizers``, ``compare-init``; ``research.experiments``) and the report of a transfer
run (``impasto report``; ``research.report``).

Each fills one output folder, its target, and writes its job file inside it: ``job.json`` for
an experiment, ``report.job.json`` for a report, whose folder is a run folder that already holds
its transfer's ``job.json``. The experiments take no cancel token: their runs are compared with
each other, so half an experiment has no figure to give; Ctrl-C stops one, keeping the runs
that finished (``JobInterrupted``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from impasto import storage
from impasto.config import (
    ExperimentConfig,
    GalleryConfig,
    OptimizerComparisonConfig,
    ReportConfig,
    TradeoffConfig,
)
from impasto.events import Callback, CancelToken
from impasto.jobs.base import JobInterrupted, Outcome
from impasto.jobs.records import to_record

#: The page every experiment writes into its folder.
INDEX = "index.html"


class InFolder:
    """A job whose outputs fill the folder ``output``, with its job file inside (``job.json``)."""

    output: Path

    @property
    def target(self) -> Path:
        return self.output

    @property
    def job_file(self) -> Path:
        return self.output / storage.RUN_JOB


@dataclass(frozen=True)
class GalleryJob(InFolder):
    """``impasto gallery``: the paper's Fig. 3 from the photo and paintings of ``images``
    (``content/``, ``style/`` and, for ``with_reference``, ``reference/``)."""

    kind: ClassVar[str] = "gallery"
    config_type: ClassVar[type] = GalleryConfig
    unit: ClassVar[str] = "it"

    images: Path
    output: Path
    config: GalleryConfig = field(default_factory=GalleryConfig)

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.research import experiments

        return _run_experiment(self, lambda **kw: experiments.gallery(
            self.images, self.output, with_reference=self.config.with_reference, **kw), on_event)

    def with_output(self, output: Path) -> GalleryJob:
        return dataclasses.replace(self, output=output)


@dataclass(frozen=True)
class TradeoffJob(InFolder):
    """``impasto tradeoff``: the paper's Fig. 4, ``content`` in the style of ``style``."""

    kind: ClassVar[str] = "tradeoff"
    config_type: ClassVar[type] = TradeoffConfig
    unit: ClassVar[str] = "it"

    content: Path
    style: Path
    output: Path
    config: TradeoffConfig = field(default_factory=TradeoffConfig)

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.research import experiments

        return _run_experiment(self, lambda **kw: experiments.tradeoff(
            self.content, self.style, self.output, ratios=self.config.ratios, **kw), on_event)

    def with_output(self, output: Path) -> TradeoffJob:
        return dataclasses.replace(self, output=output)


@dataclass(frozen=True)
class OptimizerComparisonJob(InFolder):
    """``impasto compare-optimizers``: L-BFGS against Adam from one start."""

    kind: ClassVar[str] = "compare-optimizers"
    config_type: ClassVar[type] = OptimizerComparisonConfig
    unit: ClassVar[str] = "it"

    content: Path
    style: Path
    output: Path
    config: OptimizerComparisonConfig = field(default_factory=OptimizerComparisonConfig)

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.research import experiments

        return _run_experiment(self, lambda **kw: experiments.compare_optimizers(
            self.content, self.style, self.output, adam_lrs=self.config.adam_learning_rates, **kw), on_event)

    def with_output(self, output: Path) -> OptimizerComparisonJob:
        return dataclasses.replace(self, output=output)


@dataclass(frozen=True)
class InitComparisonJob(InFolder):
    """``impasto compare-init``: noise, the photo and the painting as the starting image."""

    kind: ClassVar[str] = "compare-init"
    config_type: ClassVar[type] = ExperimentConfig
    unit: ClassVar[str] = "it"

    content: Path
    style: Path
    output: Path
    config: ExperimentConfig = field(default_factory=ExperimentConfig)

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.research import experiments

        return _run_experiment(self, lambda **kw: experiments.compare_init(
            self.content, self.style, self.output, **kw), on_event)

    def with_output(self, output: Path) -> InitComparisonJob:
        return dataclasses.replace(self, output=output)


@dataclass(frozen=True)
class ReportJob:
    """``impasto report``: the HTML report of the transfer run in ``run_dir``, written into that
    folder or into ``output`` (``research.report.write_report``)."""

    kind: ClassVar[str] = "report"
    config_type: ClassVar[type] = ReportConfig
    unit: ClassVar[str] = "it"

    run_dir: Path
    output: Path | None = None
    config: ReportConfig = field(default_factory=ReportConfig)

    @property
    def target(self) -> Path:
        return self.output if self.output is not None else self.run_dir

    @property
    def job_file(self) -> Path:
        return self.target / storage.REPORT_JOB

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        from impasto.research.report import write_report

        index = write_report(self.run_dir, self.output)
        summary = {"outputs": [os.fspath(index)], "complete": True}
        storage.write_json(self.job_file, to_record(self, summary))
        return Outcome([index, self.job_file], True, f"wrote {index}", index, summary)

    def with_output(self, output: Path) -> ReportJob:
        return dataclasses.replace(self, output=output)


Experiment = GalleryJob | TradeoffJob | OptimizerComparisonJob | InitComparisonJob


def _run_experiment(job: Experiment, experiment: Callable[..., list[Path]], on_event: Callback | None) -> Outcome:
    """Call ``experiment`` with the job's shared settings; write the job file into its folder."""
    from impasto.gatys.api import TransferInterrupted

    config: ExperimentConfig = job.config
    start = time.perf_counter()
    try:
        files = experiment(size=config.size, iterations=config.iterations, seed=config.seed,
                           base=config.transfer_config(), on_event=on_event)
    except TransferInterrupted:
        # Each run's image is saved as it finishes; the figures, results.json and the page come last.
        raise JobInterrupted(f"interrupted; finished runs are in {job.output}") from None
    seconds = round(time.perf_counter() - start, 1)
    summary: dict[str, Any] = {"outputs": [os.fspath(p) for p in files], "seconds": seconds, "complete": True,
                               "seed": config.seed}
    storage.write_json(job.job_file, to_record(job, summary))
    written = [*files, job.job_file]
    return Outcome(written, True, f"wrote {len(written)} files; open {job.output / INDEX}", files, summary)

