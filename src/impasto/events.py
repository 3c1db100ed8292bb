"""One event protocol for every long job, and a cancel token. No I/O here.

A transfer emits an :class:`Iteration` after each optimiser iteration, a training a
:class:`TrainStep` after each batch, a video a :class:`Frames` after each batch of frames, a
fast network's run over photos a :class:`Photos` after each batch of photos written. All
are :class:`Event`s: a ``step`` out of ``total`` (both counted from 1), the wall ``seconds`` since
the job began, the weighted ``losses`` where there are any, and ``record()``, the JSON-ready row.
A caller passes one callback (:func:`broadcast` joins several); the CLI's progress bar, the
history, snapshots and the web studio's live stream all consume the same events.

A :class:`CancelToken` asks a job to stop: every loop checks it after each step and returns the
best result so far, marked as cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Event:
    """What every long job reports after each step."""

    kind: ClassVar[str] = "event"
    # A report from within a step (not a step done): histories skip it, bars do not advance.
    partial: ClassVar[bool] = False

    step: int
    total: int
    seconds: float
    losses: dict[str, float]

    def record(self) -> dict[str, Any]:
        """The JSON-ready row (no images)."""
        return {"step": self.step, "total": self.total, "seconds": round(self.seconds, 4), **self.losses}

    def describe(self) -> str:
        """A few words for a progress bar: where the job stands besides its step."""
        return ""


@dataclass(frozen=True)
class Iteration(Event):
    """One iteration of the optimisation (Gatys et al.).

    ``losses`` holds the weighted terms (content, style, tv, any extra named terms) and total of
    the image the optimiser evaluated last; ``image()`` renders that image as an RGB tensor in
    [0, 1] at the current scale, on demand, so callers that do not look at it pay nothing.
    ``evaluations`` counts objective evaluations (forward and backward passes) so far in this
    scale: a line search makes more than one per iteration.
    """

    kind: ClassVar[str] = "iteration"

    scale: int
    scales: int
    height: int
    width: int
    evaluations: int
    image: Callable[[], Tensor] = field(repr=False, compare=False)

    @property
    def iteration(self) -> int:
        return self.step

    def record(self) -> dict[str, Any]:
        return {
            "iteration": self.step,
            "scale": self.scale,
            "height": self.height,
            "width": self.width,
            "seconds": round(self.seconds, 4),
            "evaluations": self.evaluations,
            **self.losses,
        }

    def describe(self) -> str:
        return f"scale {self.scale + 1}/{self.scales} {self.width}x{self.height}"


@dataclass(frozen=True)
class TileDone(Event):
    """A tile of the transfer's iteration ``step`` evaluated, at scales too large for one pass
    (``gatys.tiles``): one iteration there takes minutes, and the bar shows it moving. Partial:
    no history row, no image."""

    kind: ClassVar[str] = "tile"
    partial: ClassVar[bool] = True

    scale: int = 0
    scales: int = 1
    tile: int = 0
    tiles: int = 0

    def describe(self) -> str:
        return f"scale {self.scale + 1}/{self.scales} tile {self.tile}/{self.tiles}"


@dataclass(frozen=True)
class TrainStep(Event):
    """One training iteration: the batch's weighted losses; at preview iterations also the
    held-out photos' losses, and the preview and checkpoint files written (if any)."""

    kind: ClassVar[str] = "train_step"

    validation: dict[str, float] | None = None
    preview: Path | None = None
    checkpoint: Path | None = None

    def record(self) -> dict[str, Any]:
        row = {"iteration": self.step, "seconds": round(self.seconds, 4), **self.losses}
        if self.validation is not None:
            row["validation"] = self.validation
        return row

    def describe(self) -> str:
        return f"val {self.validation['total']:.3g}" if self.validation else ""


@dataclass(frozen=True)
class Frames(Event):
    """Frames of a video done so far (``total`` 0 when the container does not say)."""

    kind: ClassVar[str] = "frames"

    name: str = ""

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Photos(Event):
    """Photos stylised and written so far by a fast network (``name``: the last one's file)."""

    kind: ClassVar[str] = "photos"

    name: str = ""

    def describe(self) -> str:
        return self.name


Callback = Callable[[Any], None]


def broadcast(*callbacks: Callback | None) -> Callback:
    """One callback calling each of the given ones in order."""
    active = [c for c in callbacks if c is not None]

    def call(event: Event) -> None:
        for callback in active:
            callback(event)

    return call


class History:
    """Collects the JSON rows of the events it is given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if not event.partial:
            self.rows.append(event.record())


class _Flag(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class CancelToken:
    """Asks a job to stop after its current step. Thread-safe; pass a ``multiprocessing.Event``
    as ``flag`` to cancel a job running in another process."""

    def __init__(self, flag: _Flag | None = None) -> None:
        if flag is None:
            import threading

            flag = threading.Event()
        self._flag = flag

    def cancel(self) -> None:
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()


def is_cancelled(token: CancelToken | None) -> bool:
    return token is not None and token.cancelled
