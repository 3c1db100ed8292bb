"""The one progress renderer of the CLI: a tqdm bar on stderr for any job's events."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from impasto.events import Event

SHOWN_LOSSES = ("total", "content", "style", "tv", "grid", "droplet")


class ProgressBar:
    """Consumes :class:`~impasto.events.Event`s: steps, the time left, the losses there are and
    what the event describes (scale, validation loss, file). A step that goes backwards starts
    a new bar (the next run of an experiment, the next video)."""

    def __init__(self, unit: str = "it", stream: TextIO | None = None) -> None:
        self.unit = unit
        self.stream = stream or sys.stderr
        self.bar: Any = None

    def __call__(self, event: Event) -> None:
        if event.partial:
            # Progress within a step (a tile of a large iteration): said, not counted.
            self._open(event).set_description(event.describe())
            return
        if self.bar is not None and event.step <= self.bar.n:
            self.close()
        bar = self._open(event)
        description = event.describe()
        if description:
            bar.set_description(description, refresh=False)
        losses = {k: f"{event.losses[k]:.3g}" for k in SHOWN_LOSSES if k in event.losses}
        if losses:
            bar.set_postfix(losses, refresh=False)
        bar.update(event.step - bar.n)

    def _open(self, event: Event) -> Any:
        if self.bar is None:
            # Opened at the first event: an input refused before then prints only its error.
            from tqdm import tqdm

            self.bar = tqdm(total=event.total or None, initial=event.step - 1, file=self.stream, unit=self.unit,
                            dynamic_ncols=True)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
