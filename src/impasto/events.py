"""What a transfer reports after each iteration, and the consumers of those reports.

The library emits one :class:`Iteration` per objective evaluation; the CLI (and any other
caller) passes callbacks such as :class:`History`, :class:`Snapshots` and :class:`Progress`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from torch import Tensor


@dataclass(frozen=True)
class Iteration:
    """One iteration of the optimisation.

    ``losses`` holds the weighted terms content, style, tv and total of the image the optimiser
    evaluated last; ``image()`` renders that image as an RGB tensor in [0, 1] on demand, so
    callers that do not look at it pay nothing. ``evaluations`` counts objective evaluations
    (forward and backward passes) so far in this scale: a line search makes more than one per
    iteration.
    """

    iteration: int
    total_iterations: int
    scale: int
    scales: int
    height: int
    width: int
    seconds: float
    evaluations: int
    losses: dict[str, float]
    image: Callable[[], Tensor] = field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The JSON-ready history row."""
        return {
            "iteration": self.iteration,
            "scale": self.scale,
            "height": self.height,
            "width": self.width,
            "seconds": round(self.seconds, 4),
            "evaluations": self.evaluations,
            **self.losses,
        }


Callback = Callable[[Iteration], None]


def broadcast(*callbacks: Callback | None) -> Callback:
    """One callback calling each of the given ones in order."""
    active = [c for c in callbacks if c is not None]

    def call(event: Iteration) -> None:
        for callback in active:
            callback(event)

    return call


class History:
    """Collects the per-iteration rows; ``write`` stores them as JSON atomically."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, event: Iteration) -> None:
        self.rows.append(event.record())

    def write(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        write_json(Path(path), {**(meta or {}), "history": self.rows})


class Snapshots:
    """Saves the image every ``every`` iterations (and the first) into ``folder`` as PNG."""

    def __init__(self, folder: str | os.PathLike[str], every: int, save: Callable[[Tensor, Path], None]) -> None:
        self.folder = Path(folder)
        self.every = every
        self.save = save

    def __call__(self, event: Iteration) -> None:
        if event.iteration == 1 or event.iteration % self.every == 0 or event.iteration == event.total_iterations:
            # Created on the first snapshot, so that a run refused at the start leaves no folder.
            self.folder.mkdir(parents=True, exist_ok=True)
            self.save(event.image(), self.folder / f"iter_{event.iteration:05d}.png")


class Progress:
    """A tqdm progress bar on stderr showing the losses and the time left."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar: Any = None

    def __call__(self, event: Iteration) -> None:
        if self.bar is None:
            # Opened at the first iteration: an input refused before then prints only its error.
            from tqdm import tqdm

            self.bar = tqdm(total=event.total_iterations, file=self.stream, unit="it", dynamic_ncols=True)
        self.bar.set_description(f"scale {event.scale + 1}/{event.scales} {event.width}x{event.height}", refresh=False)
        self.bar.set_postfix(
            {k: f"{event.losses[k]:.3g}" for k in ("total", "content", "style")}, refresh=False
        )
        self.bar.update(event.iteration - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(data, handle, indent=1, default=str)
    # NamedTemporaryFile creates files readable by the owner only; a result file is for sharing.
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)
