"""Which style a fast network paints, parsed once from what a front end was given.

``impasto apply``, ``impasto export``, the video path, the studio and job files all name a fast
style with the same fields: ``--style`` (a shipped style's name, a mix of the styles of one
shipped multi-style model such as "starry_night:0.7,the_scream:0.3", or a model file), ``--model``
(a model file, whose styles ``--style`` then picks or mixes), ``--style-image`` (paintings for an
any-painting model) with their weights, and ``--strength``. :func:`parse_style` turns them into
one of three typed specs — :class:`Shipped`, :class:`ModelFile`, :class:`AnyPainting` — that
``impasto.fast.styles.load_style`` loads, reading each model file once.

One rule tells a file from a style's name (:func:`is_path`), and one place says where the shipped
styles live (:func:`models_folder`). Plain data: no torch here.
"""

from __future__ import annotations

import importlib.resources
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from impasto.errors import InputError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

MODEL_SUFFIX = ".pt"
# A multi-style model's styles graph (``impasto export --all-styles``; ``fast.graph``).
GRAPH_SUFFIX = ".onnx"


def models_folder() -> Traversable:
    """The package's folder of shipped models (``impasto/models``): ``fast.styles`` reads the
    networks there, ``fast.graph`` the styles graphs beside them."""
    return importlib.resources.files("impasto") / "models"
# The ``--style`` (``ApplyConfig.style``) of the any-painting model installed with impasto.
SHIPPED_ARBITRARY = "arbitrary"

Mix = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Shipped:
    """A shipped style, or a mix of the styles of one shipped multi-style model (weights sum to 1)."""

    mix: Mix
    strength: float = 1.0


@dataclass(frozen=True)
class ModelFile:
    """A model file of any kind, read once and taken as its recorded format says; ``mix`` picks
    the styles of a multi-style file (None: its only style)."""

    path: Path
    mix: Mix | None = None
    strength: float = 1.0


@dataclass(frozen=True)
class AnyPainting:
    """Paintings through an any-painting model (``model`` None: the installed one), their style
    codes mixed by ``weights`` (None: equal), each read at long side ``style_size`` (None:
    ``config.PAINTING_SIDE``)."""

    model: Path | None
    paintings: tuple[Path, ...]
    weights: tuple[float, ...] | None = None
    strength: float = 1.0
    style_size: int | None = None


StyleSpec = Shipped | ModelFile | AnyPainting


def is_path(spec: str | os.PathLike[str]) -> bool:
    """Whether a ``--style`` names a file rather than styles: a path object, a path separator,
    a model's or a graph's suffix, or a file that is there. Style names and mixes
    ("a:0.7,b:0.3") have none."""
    if not isinstance(spec, str):
        return True
    return "/" in spec or os.sep in spec or spec.endswith((MODEL_SUFFIX, GRAPH_SUFFIX)) or Path(spec).is_file()


def parse_style(
    style: str | os.PathLike[str],
    mix: str | None = None,
    paintings: Sequence[str | os.PathLike[str]] = (),
    weights: Sequence[float] | None = None,
    strength: float = 1.0,
    style_size: int | None = None,
) -> StyleSpec:
    """The spec of ``ApplyConfig``'s style fields: ``style`` a shipped name, a mix, a model file or
    ``SHIPPED_ARBITRARY``; ``mix`` the styles inside a model file; ``paintings``, ``weights`` and
    ``style_size`` for an any-painting model. Every inconsistency is one InputError line naming
    the option."""
    if not (isinstance(strength, int | float) and 0 <= strength <= 1):
        raise _refused("strength", "strength", f"must lie in [0, 1], got {strength}")
    text = os.fspath(style)
    if paintings:
        if text != SHIPPED_ARBITRARY and not is_path(style):
            raise _refused("style-image", "style_images", "needs an any-painting model (--model ARBITRARY.pt, or "
                           f"none for the installed one), not the style {text!r}")
        model = None if text == SHIPPED_ARBITRARY else Path(text)
        return AnyPainting(model, tuple(map(Path, paintings)), tuple(weights) if weights is not None else None,
                           strength, style_size)
    if style_size is not None:
        raise style_size_without_paintings()
    if weights is not None:
        raise _refused("style-blend", "style_weights", "weights need paintings (--style-image)")
    if is_path(style):
        return ModelFile(Path(text), parse_mix(mix) if mix is not None else None, strength)
    if mix is not None:
        raise _refused("style", "mix", f"{text!r} is not a model file; a shipped model's styles mix in --style itself")
    if text == SHIPPED_ARBITRARY:
        raise _refused("style-image", "style_images", "the any-painting model needs a painting")
    return Shipped(parse_mix(text), strength)


def style_size_without_paintings() -> InputError:
    """The refusal of a painting read size where no painting is read, for every path that plans
    styles (``parse_style``, ``impasto batch --styles``)."""
    return _refused("style-size", "style_size", "sets the size paintings are read at; give --style-image")


def _refused(option: str, field: str, problem: str) -> InputError:
    """One line naming the option, with the config field (the studio's form field) it is about."""
    return InputError(f"--{option}: {problem}", field=field, problem=problem)


def parse_mix(spec: str, option: str = "--style") -> Mix:
    """``"a"`` or ``"a:0.7,b:0.3"`` (weights for every style or for none: equal) as (name, weight)
    pairs, the weights normalised to sum to one; a bad spec is one InputError line."""
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise InputError(f"{option}: {spec!r}: give NAME or NAME:WEIGHT,NAME:WEIGHT (e.g. starry_night:0.7,"
                         "the_scream:0.3)")
    named = [p.partition(":") for p in parts]
    weighted = [sep == ":" for _, sep, _ in named]
    if any(weighted) and not all(weighted):
        raise InputError(f"{option}: {spec!r}: give a weight for every style or for none")
    pairs = []
    for name, _, text in named:
        name = name.strip()
        try:
            weight = float(text) if text.strip() else (math.nan if weighted[0] else 1.0)
        except ValueError:
            weight = math.nan
        if not name or not math.isfinite(weight) or weight < 0:
            raise InputError(f"{option}: {spec!r}: {name or '(no name)'}'s weight must be a non-negative number, "
                             f"got {text!r}")
        pairs.append((name, weight))
    names = [n for n, _ in pairs]
    duplicate = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate is not None:
        raise InputError(f"{option}: {spec!r}: {duplicate} is named twice")
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise InputError(f"{option}: {spec!r}: the weights must not all be zero")
    return tuple((n, w / total) for n, w in pairs)
