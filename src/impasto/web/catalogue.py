"""The paintings the page offers as thumbnails: the shipped fast-style networks and the example
paintings of a folder given at start-up (``impasto serve --examples DIR``).

A painting is chosen by name; the names come from this catalogue, built when the server starts,
so a request's name is looked up, never joined to a path. A shipped network and an example
painting of the same name (``starry_night``) are one entry offered in both modes. Thumbnails
are made once into the data folder: the painting itself, or, for a network whose painting is
not among the examples, the network's rendering of a colour swatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from impasto import images
from impasto.errors import InputError

THUMBNAIL_SIDE = 256
_ROMAN = re.compile(r"(?=[ivx])x{0,3}(ix|iv|v?i{0,3})")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Painting:
    """One entry: ``example`` is the painting's file (optimise mode) if the examples hold it;
    ``network`` whether a shipped network of that name exists (fast mode)."""

    name: str
    example: Path | None
    network: bool

    @property
    def label(self) -> str:
        """The name in words: ``composition_vii`` → "Composition VII"."""
        words = re.split(r"[_\s-]+", self.name.strip("_-. "))
        return " ".join(w.upper() if _ROMAN.fullmatch(w) else w.capitalize() for w in words)

    @property
    def modes(self) -> list[str]:
        return [m for m, ok in (("optimise", self.example is not None), ("fast", self.network)) if ok]

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "modes": self.modes,
                "thumbnail": f"/api/styles/{self.name}/thumbnail"}


class Catalogue:
    """The paintings on offer, by name, and their cached thumbnails under ``cache``."""

    def __init__(self, examples: Path | None, networks: list[str], cache: Path) -> None:
        found = _examples(examples)
        names = sorted(set(found) | set(networks))
        self.paintings = {n: Painting(n, found.get(n), n in networks) for n in names}
        self.cache = cache

    def find(self, name: str, mode: str) -> Painting:
        """The painting ``name`` if it is offered in ``mode``; else an InputError naming the
        field and what is offered."""
        painting = self.paintings.get(name)
        if painting is None or mode not in painting.modes:
            offered = [n for n, p in self.paintings.items() if mode in p.modes]
            what = "a shipped style" if mode == "fast" else "an example painting"
            listed = ", ".join(offered) if offered else "none on this server"
            problem = f"{name!r} is not {what} (offered: {listed})"
            raise InputError(f"style_name: {problem}", field="style_name", problem=problem)
        return painting

    def thumbnail(self, name: str) -> Path | None:
        """The thumbnail file of ``name`` (made on first use), or None if no such painting."""
        painting = self.paintings.get(name)
        if painting is None:
            return None
        path = self.cache / f"{painting.name}.png"
        if not path.is_file():
            self.cache.mkdir(parents=True, exist_ok=True)
            images.save_image(_render(painting), path)
        return path


def _examples(folder: Path | None) -> dict[str, Path]:
    """The images of the examples folder by name (file stem); names that could not travel in a
    URL safely are left out."""
    if folder is None:
        return {}
    if not folder.is_dir():
        raise InputError(f"{folder}: examples folder not found")
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in images.IMAGE_SUFFIXES and _NAME.match(path.stem):
            found.setdefault(path.stem, path)
    return found


def _render(painting: Painting) -> torch.Tensor:
    if painting.example is not None:
        return images.resize_long_side(images.load_image(painting.example), THUMBNAIL_SIDE)
    from impasto.fast.styles import resolve
    from impasto.fast.stylize import stylize

    return stylize(resolve(painting.name), swatch(THUMBNAIL_SIDE)).clamp(0, 1)


def swatch(side: int) -> torch.Tensor:
    """A square of smooth hues with a bright disc: something for a style network to repaint when
    no photo is at hand."""
    y, x = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    disc = (((x - 0.62) ** 2 + (y - 0.4) ** 2) < 0.06).float()
    image = torch.stack([0.3 + 0.6 * x, 0.25 + 0.5 * y, 0.8 - 0.5 * x * y]) * (1 - 0.4 * disc) + 0.4 * disc
    return image.clamp(0, 1).unsqueeze(0)
