"""The worker's event consumer: turns a job's :mod:`impasto.events` into what the page shows.

Every event's row (``Event.record()``) is kept; at most every ``every`` seconds (and at the
last step) the rows since the previous flush, the latest progress and a preview image of the
current iterate go to the store. Rendering and writing a preview costs a few milliseconds at
512 px, so throttling keeps the page live without slowing a run that makes tens of iterations
per second at small sizes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from impasto import images
from impasto.events import Event
from impasto.web.store import PREVIEW, Store


def time_left(rows: Sequence[dict[str, Any]], remaining_pixels: float) -> float | None:
    """Seconds left, from the time the iterations so far took per pixel (an iteration's cost
    grows with its pixel count, so coarse scales, done first, would understate the rest).

    ``rows`` are iteration rows (``seconds``, ``height``, ``width``); the first is left out of
    the rate because its seconds include loading the network and the targets. None until two
    iterations are known."""
    if len(rows) < 2 or remaining_pixels <= 0:
        return 0.0 if remaining_pixels <= 0 and rows else None
    pixels = sum(_pixels(r) for r in rows[1:])
    spent = rows[-1]["seconds"] - rows[0]["seconds"]
    if pixels <= 0 or spent <= 0:
        return None
    return spent / pixels * remaining_pixels


def _pixels(row: dict[str, Any]) -> float:
    return float(row.get("height", 1) * row.get("width", 1))


def remaining_pixels(schedule: Sequence[tuple[int, int]], aspect: float, step: int) -> float:
    """Pixels still to be optimised after ``step`` iterations of ``schedule``, a list of
    (long side, iterations) per scale for an image of ``aspect`` = short side / long side."""
    left, done = 0.0, step
    for size, iterations in schedule:
        todo = iterations - min(done, iterations)
        done -= iterations - todo
        left += todo * size * max(1.0, round(size * aspect))
    return left


class LiveRecorder:
    """Consumes a job's events; writes the preview and progress of job ``job_id`` to ``store``
    at most every ``every`` seconds. ``remaining`` maps a step to the pixels still to do (for
    the time left); without it the time left is scaled from the steps alone."""

    def __init__(self, store: Store, job_id: str, every: float,
                 remaining: Callable[[int], float] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.job_id = job_id
        self.every = every
        self.remaining = remaining
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.flushed = 0
        self.last_flush = -math.inf
        self.latest: Event | None = None

    def __call__(self, event: Event) -> None:
        # The event's own row, keyed by its step (an Iteration's row names it "iteration").
        self.rows.append({"step": event.step, **event.record()})
        self.latest = event
        if event.step == event.total or self.clock() - self.last_flush >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write what is new: rows, progress, the current iterate as the preview."""
        event = self.latest
        if event is None or self.flushed == len(self.rows):
            return
        render = getattr(event, "image", None)
        if render is not None:
            images.save_image(render(), self.folder / PREVIEW)
        self.store.record_progress(self.job_id, self.rows[self.flushed:], self.progress(event),
                                   preview=render is not None)
        self.flushed = len(self.rows)
        self.last_flush = self.clock()

    @property
    def folder(self) -> Path:
        return self.store.folder(self.job_id)

    def progress(self, event: Event) -> dict[str, Any]:
        if self.remaining is not None:
            eta = time_left(self.rows, self.remaining(event.step))
        else:
            eta = time_left([{**r, "height": 1, "width": 1} for r in self.rows], event.total - event.step)
        return {"step": event.step, "total": event.total, "seconds": event.seconds, "losses": event.losses,
                "eta": eta}
