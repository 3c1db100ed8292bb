"""Jobs: a long task (a transfer, a training, stylising files) described as data.

A job names its inputs, its outputs and its typed config. ``run`` checks every path before any
work, runs the task, writes its outputs, and writes the job file beside them: the job as it
ran, seed included, paths absolute, plus a summary of the result. ``impasto run JOB`` (the CLI),
the web studio and a cluster runner all submit jobs, so each command's logic lives here once::

    {"format": "impasto-job", "version": 1, "kind": "transfer",
     "job": {"content": "/abs/photo.jpg", "styles": [...], "output": "/abs/out.png", ...},
     "config": {...TransferConfig...}, "result": {...}}

Running the job file again reproduces the run (bit for bit for a seeded run on the same CPU).
"""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from impasto import images, storage
from impasto.config import (
    ApplyConfig,
    ArbitraryConfig,
    RegionSpec,
    TrainConfig,
    TransferConfig,
    coerce,
    from_dict,
    to_dict,
)
from impasto.errors import ImpastoError, InputError
from impasto.events import Callback, CancelToken, History, broadcast

if TYPE_CHECKING:
    from torch import Tensor

    from impasto.gatys.api import Result

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


class _BesideOutput:
    """A job whose re-runnable job file is written beside its one output (``OUT.job.json``)."""

    output: Path

    @property
    def job_file(self) -> Path:
        return storage.job_path(self.output)


@dataclass(frozen=True)
class TransferJob:
    """``impasto transfer``: the output (or ``run_dir/output.png``), and optionally the history
    JSON, snapshots every ``snapshot_every`` iterations and a run folder with an HTML report."""

    kind: ClassVar[str] = "transfer"

    content: Path
    styles: tuple[Path, ...]
    output: Path | None = None
    config: TransferConfig = field(default_factory=TransferConfig)
    run_dir: Path | None = None
    history: Path | None = None
    snapshot_every: int = 0
    snapshot_dir: Path | None = None
    # The starting image instead of ``config.init`` (``transfer(init_image=...)``).
    init_image: Path | None = None
    # Spatial control: masks with their paintings (or kept); ``styles`` paint the rest.
    regions: tuple[RegionSpec, ...] = ()

    @property
    def target(self) -> Path:
        if self.output is not None:
            return self.output
        if self.run_dir is None:
            raise InputError("an output is needed: -o OUTPUT or --run-dir DIR")
        return self.run_dir / storage.RUN_OUTPUT

    @property
    def job_file(self) -> Path:
        return self.run_dir / storage.RUN_JOB if self.run_dir is not None else storage.job_path(self.target)


@dataclass(frozen=True)
class TrainJob(_BesideOutput):
    """``impasto train``: a network for one painting, written to ``output`` (.pt)."""

    kind: ClassVar[str] = "train"

    style_image: Path
    data: Path
    output: Path
    config: TrainConfig = field(default_factory=TrainConfig)
    name: str | None = None
    preview_dir: Path | None = None
    checkpoint: Path | None = None
    resume: bool = False


@dataclass(frozen=True)
class ArbitraryJob(_BesideOutput):
    """``impasto train-arbitrary``: the any-painting network, trained on the photos of ``data``
    and the paintings of ``paintings``, written to ``output`` (.pt); the held-out losses are
    appended to ``log`` (JSON lines) when one is given."""

    kind: ClassVar[str] = "train-arbitrary"

    data: Path
    paintings: Path
    output: Path
    config: ArbitraryConfig = field(default_factory=ArbitraryConfig)
    checkpoint: Path | None = None
    resume: bool = False
    log: Path | None = None
    init_from: Path | None = None


@dataclass(frozen=True)
class MultiTrainJob(_BesideOutput):
    """``impasto train A.jpg B.jpg …``: one multi-style network for several paintings (Dumoulin et
    al. 2017); with ``base`` (``--add-style --model BASE.pt``) only the new paintings' style
    vectors train, the convolutions of ``base`` frozen."""

    kind: ClassVar[str] = "train-multistyle"

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


@dataclass(frozen=True)
class ApplyJob(_BesideOutput):
    """``impasto apply``: photos, videos and folders through a trained network."""

    kind: ClassVar[str] = "apply"

    inputs: tuple[Path, ...]
    output: Path
    config: ApplyConfig


Job = TransferJob | TrainJob | ArbitraryJob | MultiTrainJob | ApplyJob
KINDS: dict[str, type[TransferJob] | type[TrainJob] | type[ArbitraryJob] | type[MultiTrainJob] | type[ApplyJob]] = {
    "transfer": TransferJob, "train": TrainJob, "train-arbitrary": ArbitraryJob, "train-multistyle": MultiTrainJob,
    "apply": ApplyJob,
}
CONFIGS = {"transfer": TransferConfig, "train": TrainConfig, "train-arbitrary": ArbitraryConfig,
           "train-multistyle": TrainConfig, "apply": ApplyConfig}


def run(job: Job, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
    """Run a job, write its outputs and its job file; see the module's docstring."""
    if isinstance(job, TransferJob):
        return _run_transfer(job, on_event, cancel)
    if isinstance(job, TrainJob):
        return _run_train(job, on_event, cancel)
    if isinstance(job, ArbitraryJob):
        return _run_arbitrary(job, on_event, cancel)
    if isinstance(job, MultiTrainJob):
        return _run_train_multistyle(job, on_event, cancel)
    return _run_apply(job, on_event, cancel)


# --- job files -------------------------------------------------------------------------------


def to_record(job: Job, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job file's contents: paths absolute, so that it runs from any folder."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(job):
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
    config = from_dict(CONFIGS[kind], record.get("config", {}), f"{label}: config")
    hints = typing.get_type_hints(cls)
    values = {name: coerce(value, hints[name], f"{label}: job.{name}") for name, value in fields.items()}
    try:
        return cls(**values, config=config)
    except TypeError as exc:
        raise InputError(f"{label}: {storage.reason(exc)}") from None


def load(path: str | os.PathLike[str]) -> Job:
    return from_record(storage.read_json(path, "job file"), os.fsdecode(path))


def with_output(job: Job, output: Path) -> Job:
    """The job writing its main output to ``output`` instead, without the side outputs (history,
    snapshots, run folder) whose paths belong to the original run."""
    if isinstance(job, TransferJob):
        return dataclasses.replace(job, output=output, run_dir=None, history=None, snapshot_dir=None,
                                   snapshot_every=0)
    if isinstance(job, (TrainJob, MultiTrainJob)):
        return dataclasses.replace(job, output=output, preview_dir=None, checkpoint=None)
    if isinstance(job, ArbitraryJob):
        return dataclasses.replace(job, output=output, checkpoint=None, log=None)
    return dataclasses.replace(job, output=output)


# --- transfer --------------------------------------------------------------------------------


def _check_transfer(job: TransferJob) -> Path:
    inputs = [job.content, *job.styles, *([job.init_image] if job.init_image is not None else []),
              *(p for r in job.regions for p in (r.mask, r.style) if p is not None)]
    if job.snapshot_every < 0:
        raise InputError(f"--snapshot-every: must be positive, got {job.snapshot_every}")
    if job.run_dir is not None:
        if job.run_dir.exists() and not job.run_dir.is_dir():
            raise InputError(f"{job.run_dir}: exists and is not a folder")
        storage.check_folder(job.run_dir)
    bits, profile = job.config.bit_depth, job.config.output_profile
    if job.output is not None:
        output = images.check_output_path(job.output, inputs, bit_depth=bits, profile=profile)
    else:
        output = job.target
        images.check_output_format(output, bits, profile)
    if job.history is not None:
        storage.check_output_path(job.history, inputs)
    return output


@dataclass(frozen=True)
class _Photo:
    """A transfer's photo as the optimisation takes it: its ``pixels`` in the colours of the ICC
    profile ``space`` (None: sRGB), and what else it holds (``info``: profile, EXIF, bits).

    A luminance-only transfer (Gatys et al. 2017) shows the network the photo's luminance alone,
    a grey image (exactly the same grey in Display P3, whose white and tone curve are sRGB's;
    nearly so in other RGB spaces), and takes the colours from the photo: there the photo stays
    in its own colour space, so that colours outside sRGB come back as they were. Otherwise the
    network sees the photo in sRGB."""

    pixels: Tensor
    space: bytes | None
    info: images.PhotoInfo

    @classmethod
    def load(cls, job: TransferJob) -> _Photo:
        pixels, info = images.load_photo(job.content, job.config.max_pixels)
        if job.config.preserve_color == "luminance" and info.icc_profile is not None:
            return cls(pixels, info.icc_profile, info)
        return cls(images.to_srgb(pixels, info.icc_profile, os.fsdecode(job.content)), None, info)

    def in_srgb(self, callback: Callback) -> Callback:
        """``callback``, its events' images (rendered in ``space``) converted to sRGB first."""
        if self.space is None:
            return callback

        def converted(event: Any) -> None:
            render = getattr(event, "image", None)
            if render is not None:
                event = dataclasses.replace(event, image=lambda: images.to_srgb(render(), self.space))
            callback(event)

        return converted

    def save(self, image: Tensor, output: Path, config: TransferConfig) -> None:
        images.save_photo(image, output, self.info, space=self.space, profile=config.output_profile,
                          bit_depth=config.bit_depth, quality=config.quality)


def _run_transfer(job: TransferJob, on_event: Callback | None, cancel: CancelToken | None) -> Outcome:
    from impasto.gatys.api import TransferInterrupted, transfer
    from impasto.gatys.regions import Region

    output = _check_transfer(job)
    photo = _Photo.load(job)
    history = History()
    snapshots = None
    if job.snapshot_every:
        folder = job.snapshot_dir or job.run_dir or output.with_name(output.stem + "_snapshots")
        snapshots = storage.Snapshots(folder, job.snapshot_every, images.save_image)
    try:
        result = transfer(photo.pixels, job.styles, job.config, photo.in_srgb(broadcast(history, snapshots, on_event)),
                          cancel=cancel, init_image=job.init_image,
                          regions=[Region(r.mask, r.style) for r in job.regions])
    except TransferInterrupted as stop:
        if stop.result is None:
            raise JobInterrupted(f"interrupted before the first iteration; {output} left untouched") from None
        if not stop.result.is_picture:
            raise JobInterrupted(f"interrupted before the picture formed; {output} left untouched") from None
        _save_transfer(job, output, stop.result, history, photo)
        raise JobInterrupted(f"interrupted; {_partial(stop.result, output)}") from None
    if not result.is_picture:
        # Early in the first scale from noise the image is a grey blur, not worth writing over
        # whatever -o holds.
        return Outcome([], False, f"cancelled before the picture formed; {output} left untouched", result)
    written, details = _save_transfer(job, output, result, history, photo)
    if result.complete:
        summary = (f"saved {output} ({result.tensor.shape[-1]}x{result.tensor.shape[-2]}) in {result.seconds:.1f} s "
                   f"on {result.device} {result.precision}; loss {result.loss:.4g}")
    else:
        summary = f"cancelled; {_partial(result, output)}"
    return Outcome(written, result.complete, summary, result, details)


def _partial(result: Result, output: Path) -> str:
    """What a stopped transfer kept, in words."""
    done = len(result.history)
    h, w = result.tensor.shape[-2:]
    where = "" if result.scale_size == result.config.size else (
        f" (from the {result.scale_size} px scale, upsampled to {w}x{h})")
    return f"best image after {done} iterations saved to {output}{where}"


def _save_transfer(job: TransferJob, output: Path, result: Result, history: History,
                   photo: _Photo) -> tuple[list[Path], dict[str, Any]]:
    if job.run_dir is not None:
        storage.make_folder(job.run_dir)
    photo.save(result.tensor, output, result.config)
    written = [output]
    summary = {"outputs": [os.fspath(output)], "seconds": round(result.seconds, 3), "device": result.device,
               "precision": result.precision, "iterations": len(result.history), "complete": result.complete,
               "seed": result.config.seed, "loss": result.loss, "losses": _final_losses(result)}
    ran = dataclasses.replace(job, config=result.config)
    meta = {"content": os.fspath(job.content), "styles": [os.fspath(s) for s in job.styles],
            "output": os.fspath(output), "config": to_dict(result.config), **summary}
    for path in (job.history, job.run_dir and job.run_dir / storage.RUN_HISTORY):
        if path is not None:
            storage.write_json(path, {**meta, "history": history.rows})
            written.append(path)
    storage.write_json(ran.job_file, to_record(ran, summary))
    written.append(ran.job_file)
    if job.run_dir is not None:
        from impasto.research.report import write_report

        written.append(write_report(job.run_dir))
    return written, summary


def _final_losses(result: Result) -> dict[str, float]:
    """The loss terms of the image returned: the lowest total at the last scale reached."""
    final = result.history[-1]["scale"]
    best = min((row for row in result.history if row["scale"] == final), key=lambda row: row["total"])
    return {k: best[k] for k in ("total", "content", "style", "tv") if k in best}


# --- training and apply ----------------------------------------------------------------------


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
    val = result.validation[-1]["total"] if result.validation else float("nan")
    state = "saved" if result.complete else "cancelled; saved the network as trained so far to"
    return Outcome([output, job.job_file], result.complete,
                   f"{state} {output} after {result.iterations} iterations in {result.seconds:.0f} s; "
                   f"held-out loss {val:.4g}", result, summary)


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
    val = result.validation[-1]["total"] if result.validation else float("nan")
    state = "saved" if result.complete else "cancelled; saved the network as trained so far to"
    return Outcome([output, job.job_file], result.complete,
                   f"{state} {output} ({len(result.model.names)} styles) after {result.iterations} iterations in "
                   f"{result.seconds:.0f} s; held-out loss {val:.4g}", result, summary)


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
