"""A job request's form fields as typed settings: the web's counterpart of the CLI's parser.

Fields are named like the CLI's long options with underscores (``style_weight`` for
``--style-weight``) and become a :class:`~impasto.config.TransferConfig` (mode ``optimise``) or
an :class:`~impasto.config.ApplyConfig` (mode ``fast``), whose validation stays the one source
of truth; every problem is a :class:`FieldError` naming the field. Empty fields (what an HTML
form sends for a blank input) take the config's default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from impasto.config import SHIPPED_ARBITRARY, ApplyConfig, TransferConfig
from impasto.errors import InputError

Mode = Literal["optimise", "fast"]
MODES: tuple[str, ...] = ("optimise", "fast")
FILE_FIELDS = ("content", "style")

# The settings a web job may change, with their types; the rest (device, precision, weights,
# pixel limits) are the server's.
OPTIMISE_FIELDS: dict[str, type] = {
    "size": int, "iterations": int, "coarse_iterations": int, "scales": int, "optimizer": str,
    "learning_rate": float, "init": str, "content_weight": float, "style_weight": float, "tv_weight": float,
    "style_scale": float, "preserve_color": str, "pooling": str, "seed": int,
}
FAST_FIELDS: dict[str, type] = {"size": int, "preserve_color": str, "strength": float}
FAST_COLOUR = ("none", "luminance")
MAX_SEED = 2**63 - 1
_OPTION = re.compile(r"^--([a-z][a-z-]*)(?: and --[a-z-]+)?:? ")


class FieldError(InputError):
    """A request field that cannot be used: ``field`` names it; the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class JobRequest:
    """What a valid request asks for: the mode, its config, and the painting by name (a shipped
    network in fast mode, an example painting in optimise mode) when none is uploaded."""

    mode: str
    config: TransferConfig | ApplyConfig
    style_name: str | None


def parse(fields: Mapping[str, str], files: Sequence[str], *, max_size: int, any_painting: bool = False) -> JobRequest:
    """Read the text ``fields`` of a request whose file fields are ``files``; ``max_size`` is the
    largest output long side this server makes; ``any_painting``: whether fast mode takes an
    uploaded painting (an arbitrary-style network is installed)."""
    mode = fields.get("mode", "optimise") or "optimise"
    if mode not in MODES:
        raise FieldError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    known = OPTIMISE_FIELDS if mode == "optimise" else FAST_FIELDS
    style_name = fields.get("style_name") or None
    for name in fields:
        if name in ("mode", "style_name") or name in known:
            continue
        if name in OPTIMISE_FIELDS:
            raise FieldError(name, f"not a setting of mode {mode} (only {', '.join(known)})")
        if name in FILE_FIELDS:
            raise FieldError(name, "must be a file upload")
        raise FieldError(name, "unknown field")
    _check_files(files, style_name, mode, any_painting)
    values = {name: _value(name, kind, fields[name]) for name, kind in known.items() if fields.get(name, "") != ""}
    size = values.get("size")
    if size is not None and size > max_size:
        raise FieldError("size", f"at most {max_size} px on this server, got {size}")
    if mode == "fast":
        return JobRequest(mode, _fast_config(values, style_name), style_name)
    seed = values.get("seed")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise FieldError("seed", f"must lie in [0, 2^63 - 1], got {seed}")
    return JobRequest(mode, _config(TransferConfig, values), style_name)


def _check_files(files: Sequence[str], style_name: str | None, mode: str, any_painting: bool) -> None:
    for name in files:
        if name not in FILE_FIELDS:
            raise FieldError(name, "unknown file field (send content, and style or style_name)")
    if "content" not in files:
        raise FieldError("content", "a photo is needed (a file field named content)")
    if "style" in files and style_name is not None:
        raise FieldError("style", "give either a style file or a style_name, not both")
    if mode == "fast" and "style" in files and not any_painting:
        raise FieldError("style", "fast mode repaints with a shipped network and this server has none for any "
                         "painting: give style_name, not a painting")
    if "style" not in files and style_name is None:
        raise FieldError("style", "a painting is needed: upload one as style, or give style_name")


def _value(name: str, kind: type, text: str) -> Any:
    text = text.strip()
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise FieldError(name, f"expected an integer, got {text!r}") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FieldError(name, f"expected a number, got {text!r}")
        return value
    return text


def _fast_config(values: dict[str, Any], style_name: str | None) -> ApplyConfig:
    """A shipped style by name, or (an uploaded painting) the installed arbitrary-style network,
    which the worker binds to the stored painting."""
    colour = values.get("preserve_color", "none")
    if colour not in FAST_COLOUR:
        raise FieldError("preserve_color", f"{colour!r} is not one of {', '.join(FAST_COLOUR)} in fast mode")
    return _config(ApplyConfig, {"style": style_name or SHIPPED_ARBITRARY, "size": values.get("size"),
                                 "preserve_color": colour != "none",
                                 "strength": values.get("strength", 1.0)})


def _config(kind: type, values: dict[str, Any]) -> Any:
    """The config, its validation's messages (which name CLI options) naming the form field."""
    try:
        return kind(**values)
    except InputError as exc:
        message = str(exc)
        found = _OPTION.match(message)
        if found is None:
            raise FieldError("settings", message) from None
        raise FieldError(found.group(1).replace("-", "_"), message[found.end():]) from None
