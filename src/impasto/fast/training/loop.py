"""What every feed-forward training shares: the one-style (``fast.single.train``), multi-style
(``fast.multistyle.train``) and any-painting (``fast.arbitrary.train``) trainers run the one loop
here, write and read one checkpoint format, draw batches from ``fast.training.data``'s one source, and
return one result type.

A family is a :class:`Trainer`: how batch i is made, one optimisation step, a validation, and
the fields its checkpoint adds (the style it trains, its held-out split). The loop is the same
for all: step; stop with one line on a NaN or infinite loss; validate and checkpoint at their
intervals and at the end; an event per iteration; stop at the last iteration, when the run has
used its ``minutes``, or when cancelled (checkpoint and model written); on Ctrl-C write the
checkpoint only. Batch i depends on (seed, i) alone, so a resumed run repeats an uninterrupted
one batch for batch.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor

from impasto import images, storage
from impasto.config import TrainingSettings
from impasto.errors import ImpastoError, InputError, WeightsError
from impasto.events import Callback, CancelToken, TrainStep, is_cancelled
from impasto.fast.training.data import Photos, batches
from impasto.runtime import Runtime, resolve_runtime
from impasto.storage import load_torch, reason
from impasto.style_spec import MODEL_SUFFIX

CHECKPOINT_VERSION = 1
# The final losses stored in a model: the mean of the last this many batches.
FINAL_WINDOW = 50

Model = TypeVar("Model")


@dataclass
class TrainResult(Generic[Model]):
    """A finished (or cancelled, ``complete`` false) training: the model written to ``path``."""

    model: Model
    path: Path
    iterations: int
    seconds: float
    validation: list[dict[str, float]] = field(default_factory=list)
    complete: bool = True


class TrainingInterrupted(ImpastoError):
    """Raised on KeyboardInterrupt after the checkpoint (if any) has been written."""

    def __init__(self, iteration: int, checkpoint: Path | None) -> None:
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted at iteration {iteration}{where}")
        self.iteration = iteration
        self.checkpoint = checkpoint


class TrainingDiverged(ImpastoError):
    """The loss became NaN or infinite (too high a learning rate); the model is not written."""


class Trainer:
    """The state of one run, and what the loop asks of it. A family sets ``net`` (with an
    ``arch``), ``optimizer``, ``config`` and ``runtime``, and defines ``step`` and ``validate``;
    ``batches`` defaults to photo crops, ``checkpoint_fields``/``check_checkpoint``/
    ``restore_fields`` to a checkpoint with no fields of the family's own."""

    checkpoint_format: ClassVar[str]
    # What the checkpoint is, for the one-line error on reading another file.
    checkpoint_what: ClassVar[str]

    config: TrainingSettings
    runtime: Runtime
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    photos: Photos
    iteration: int = 0
    seconds: float = 0.0

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.validation: list[dict[str, Any]] = []

    @property
    def validate_every(self) -> int:
        """Iterations between validations; 0: never."""
        return 0

    def batches(self) -> Iterator[Any]:
        """The batches from this run's next iteration on."""
        return batches(self.photos, self.config, self.iteration, self.runtime.device.type == "cuda")

    def step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on ``batch``: the iteration counted, the losses recorded."""
        raise NotImplementedError

    def validate(self) -> tuple[dict[str, Any], Path | None]:
        """The held-out losses (recorded in ``validation``) for the event, and a preview written."""
        raise NotImplementedError

    def checkpoint_fields(self) -> dict[str, Any]:
        """What a checkpoint of this family records beyond the shared state."""
        return {}

    def check_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        """One line unless the checkpoint ``state`` continues this run (network, styles, split)."""
        arch = self.net.arch.as_dict()  # type: ignore[operator]
        if state.get("architecture") != arch:
            raise InputError(f"{path}: checkpoint of a network {state.get('architecture')}, not {arch}")

    def restore_fields(self, state: dict[str, Any]) -> None:
        """The family's own fields from a checkpoint it has checked."""

    def checkpoint(self, path: Path) -> None:
        storage.save_torch({
            "format": self.checkpoint_format, "version": CHECKPOINT_VERSION, "iteration": self.iteration,
            "seconds": self.seconds, "architecture": self.net.arch.as_dict(),  # type: ignore[operator]
            **self.checkpoint_fields(),
            "network": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "history": self.history,
            "validation": self.validation,
        }, path)

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``; the run's learning rate replaces its own."""
        state = read_checkpoint(path, self.checkpoint_format, self.checkpoint_what)
        self.check_checkpoint(path, state)
        load_training_state(path, state, self.net, self.optimizer, self.config.learning_rate)
        self.iteration, self.seconds = int(state["iteration"]), float(state["seconds"])
        self.history = list(state.get("history", []))
        self.validation = list(state.get("validation", []))
        self.restore_fields(state)

    def final_losses(self) -> dict[str, float]:
        """The mean losses of the last ``FINAL_WINDOW`` batches."""
        recent = self.history[-FINAL_WINDOW:]
        return {k: sum(row[k] for row in recent) / len(recent) for k in recent[0]} if recent else {}


@dataclass(frozen=True)
class Previews:
    """Held-out photos shown every ``every`` iterations, each validation's outputs written as one
    strip into ``folder`` (when given)."""

    photos: Tensor | None
    folder: Path | None
    every: int

    @classmethod
    def of(cls, photos: Photos, count: int, size: int, every: int,
           folder: str | os.PathLike[str] | None) -> Previews:
        """The first ``count`` held-out photos at ``size``; the folder made."""
        held = photos.previews(count, size) if count else None
        path = Path(folder) if folder is not None else None
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        return cls(held, path, every if held is not None else 0)

    def write(self, iteration: int, outputs: Tensor) -> Path | None:
        if self.folder is None:
            return None
        path = self.folder / storage.snapshot_name(iteration)
        # One strip: the held-out photos side by side.
        images.save_image(torch.cat(list(outputs), dim=-1), path)
        return path


class PreviewTrainer(Trainer):
    """A trainer validated on ``previews``, the held-out photos it writes as preview strips: the
    one-style and multi-style families. ``held_out`` gives their losses and outputs."""

    previews: Previews

    def held_out(self, photos: Tensor) -> tuple[dict[str, float], Tensor]:
        raise NotImplementedError

    @property
    def validate_every(self) -> int:
        return self.previews.every

    def validate(self) -> tuple[dict[str, Any], Path | None]:
        assert self.previews.photos is not None
        losses, outputs = self.held_out(self.previews.photos)
        self.validation.append({"iteration": self.iteration, "seconds": round(self.seconds, 1), **losses})
        return losses, self.previews.write(self.iteration, outputs)


def run(trainer: Trainer, checkpoint: Path, on_event: Callback | None, cancel: CancelToken | None) -> bool:
    """Train to the last iteration or the time limit, or until cancelled; whether the run reached
    its end (the module's docstring says what happens on the way)."""
    config, every = trainer.config, trainer.validate_every
    if trainer.iteration == 0 and every:
        trainer.validate()
    # ``minutes`` counts this run's steps: a run continued from a model file or checkpoint brings
    # the seconds of the runs before it.
    behind = trainer.seconds
    try:
        start = time.perf_counter()
        for batch in trainer.batches():
            losses = trainer.step(batch)
            trainer.seconds += time.perf_counter() - start
            if not math.isfinite(losses["total"]):
                raise TrainingDiverged(f"training diverged at iteration {trainer.iteration} (loss {losses['total']}); "
                                       "resume from the last checkpoint with a lower --learning-rate")
            last = trainer.iteration == config.iterations or out_of_time(config, trainer.seconds - behind)
            validation, preview, saved = None, None, None
            if every and (trainer.iteration % every == 0 or last):
                validation, preview = trainer.validate()
            if config.checkpoint_every and (trainer.iteration % config.checkpoint_every == 0 or last):
                trainer.checkpoint(checkpoint)
                saved = checkpoint
            if on_event is not None:
                on_event(TrainStep(trainer.iteration, config.iterations, trainer.seconds, losses, validation, preview,
                                   saved))
            if last:
                return True
            if is_cancelled(cancel):
                if config.checkpoint_every:
                    trainer.checkpoint(checkpoint)
                return False
            start = time.perf_counter()
    except KeyboardInterrupt:
        saved = checkpoint if config.checkpoint_every else None
        if saved is not None:
            trainer.checkpoint(saved)
        raise TrainingInterrupted(trainer.iteration, saved) from None
    return True


def out_of_time(config: TrainingSettings, seconds: float) -> bool:
    """Whether a run that has trained ``seconds`` has used its ``minutes``."""
    return config.minutes is not None and seconds >= 60 * config.minutes


def read_checkpoint(path: Path, format_name: str, what: str) -> dict[str, Any]:
    """A training checkpoint of format ``format_name`` (``what`` names it in the error)."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    state = load_torch(path, str(path), "checkpoint")
    if not isinstance(state, dict) or state.get("format") != format_name:
        raise WeightsError(f"{path}: not {what}")
    return state


def load_training_state(path: Path, state: dict[str, Any], net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        learning_rate: float) -> None:
    """A checkpoint's network and optimiser state into ``net`` and ``optimizer``; one line if they
    do not fit. The run's ``learning_rate`` replaces the checkpoint's (Adam's moments are kept), so
    that ``--resume --learning-rate`` lowers the rate from there on: a step schedule run by hand, as long
    trainings are continued session after session."""
    try:
        net.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: checkpoint does not fit this network ({reason(exc)})") from None
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def training_runtime(config: TrainingSettings) -> Runtime:
    """The runtime a training runs under."""
    runtime = resolve_runtime(config.device, config.precision)
    # fp16 training would need loss scaling; CUDA devices without bf16 train in float32.
    return Runtime(runtime.device, torch.float32) if runtime.dtype == torch.float16 else runtime


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """Check, before hours of training, that a model file can be written at ``path``."""
    # The suffix also keeps the job file written beside it (OUTPUT.job.json) from replacing it.
    return storage.check_output_path(path, suffixes=(MODEL_SUFFIX,))


def checkpoint_path(output: Path, checkpoint: str | os.PathLike[str] | None, used: bool) -> Path:
    """The checkpoint file (default ``OUTPUT.ckpt``); where it will be ``used`` (written or read),
    its folder is checked before any work."""
    ckpt = Path(checkpoint) if checkpoint is not None else output.with_name(output.name + ".ckpt")
    if used:
        storage.check_folder(ckpt.parent, os.fsdecode(ckpt))
    return ckpt

