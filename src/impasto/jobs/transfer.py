"""The ``transfer`` job: Gatys et al.'s optimisation for one photo (``impasto transfer``), its
output in the photo's colour space and format, its history, snapshots and report."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from impasto import images, storage
from impasto.config import RegionSpec, TransferConfig, to_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken, History, broadcast
from impasto.jobs.base import JobInterrupted, Outcome
from impasto.jobs.records import to_record

if TYPE_CHECKING:
    from torch import Tensor

    from impasto.gatys.api import Result


@dataclass(frozen=True)
class TransferJob:
    """``impasto transfer``: the output (or ``run_dir/output.png``), and optionally the history
    JSON, snapshots every ``snapshot_every`` iterations and a run folder with an HTML report."""

    kind: ClassVar[str] = "transfer"
    config_type: ClassVar[type] = TransferConfig
    unit: ClassVar[str] = "it"

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

    def run(self, on_event: Callback | None = None, cancel: CancelToken | None = None) -> Outcome:
        return _run_transfer(self, on_event, cancel)

    def with_output(self, output: Path) -> TransferJob:
        return dataclasses.replace(self, output=output, run_dir=None, history=None, snapshot_dir=None,
                                   snapshot_every=0)


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
