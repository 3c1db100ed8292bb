"""A job request's form fields as typed settings: the web's counterpart of the CLI's parser.

Fields are named like the CLI's long options with underscores (``style_weight`` for
``--style-weight``) and become a :class:`~impasto.config.TransferConfig` (mode ``optimise``) or
an :class:`~impasto.config.ApplyConfig` (mode ``fast``), whose validation stays the one source
of truth; every problem is a :class:`FieldError` naming the field. Empty fields (what an HTML
form sends for a blank input) take the config's default. Regions (spatial control, the CLI's
``--region MASK=PAINTING``) are numbered file fields ``region_1_mask`` with ``region_1_style``
or a text field ``region_1_style_name`` (an example painting, or ``keep``); with regions, the
main painting is optional: without it, what no region covers stays the photo.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from impasto.config import KEEP, ApplyConfig, TransferConfig
from impasto.errors import InputError
from impasto.style_spec import SHIPPED_ARBITRARY

Mode = Literal["optimise", "fast"]
MODES: tuple[str, ...] = ("optimise", "fast")
FILE_FIELDS = ("content", "style")
# Spatial control (optimise mode): region K's mask is the file region_K_mask; its painting the
# file region_K_style, or region_K_style_name naming an example painting or "keep".
MAX_REGIONS = 4
_REGION_FILE = re.compile(r"^region_([1-9][0-9]*)_(mask|style)$")
_REGION_NAME = re.compile(r"^region_([1-9][0-9]*)_style_name$")

# The settings a web job may change, with their types; the rest (device, precision, weights,
# pixel limits) are the server's.
OPTIMISE_FIELDS: dict[str, type] = {
    "size": int, "iterations": int, "coarse_iterations": int, "scales": int, "optimizer": str,
    "learning_rate": float, "init": str, "content_weight": float, "style_weight": float, "tv_weight": float,
    "style_scale": float, "preserve_color": str, "pooling": str, "seed": int, "region_guides": str,
    "output_profile": str, "bit_depth": int, "quality": int,
}
FAST_FIELDS: dict[str, type] = {"size": int, "preserve_color": str, "strength": float, "output_profile": str,
                                "bit_depth": int, "quality": int}
FAST_COLOUR = ("none", "luminance")
# How the result is written: the photo's colour profile or sRGB (never a file on the server).
WEB_PROFILES = ("source", "srgb")
OUTPUT_FIELDS = ("output_profile", "bit_depth", "quality")
MAX_SEED = 2**63 - 1


class FieldError(InputError):
    """A request field that cannot be used: ``field`` names it; the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field, problem=problem)

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), (self.field, self.problem)


@dataclass(frozen=True)
class JobRequest:
    """What a valid request asks for: the mode, its config, and the painting by name (a shipped
    network in fast mode, an example painting in optimise mode) when none is uploaded."""

    mode: str
    config: TransferConfig | ApplyConfig
    style_name: str | None
    regions: tuple[RegionRequest, ...] = ()


@dataclass(frozen=True)
class RegionRequest:
    """Region ``number``: its mask is the file ``region_N_mask``; its painting the file
    ``region_N_style`` (``style_name`` None, ``keep`` false), an example painting by name, or the
    photo itself (``keep``)."""

    number: int
    style_name: str | None = None
    keep: bool = False

    @property
    def mask_field(self) -> str:
        return f"region_{self.number}_mask"

    @property
    def style_field(self) -> str:
        return f"region_{self.number}_style"


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
        if _REGION_NAME.match(name) and mode != "optimise":
            raise FieldError(name, "regions are a setting of mode optimise")
        if name in ("mode", "style_name") or name in known or _REGION_NAME.match(name):
            continue
        if name in OPTIMISE_FIELDS:
            raise FieldError(name, f"not a setting of mode {mode} (only {', '.join(known)})")
        if name in FILE_FIELDS:
            raise FieldError(name, "must be a file upload")
        raise FieldError(name, "unknown field")
    regions = _regions(fields, files, mode)
    _check_files([f for f in files if not _REGION_FILE.match(f)], style_name, mode, any_painting, bool(regions))
    if regions and "style" not in files and style_name is None and all(r.keep for r in regions):
        raise FieldError("style", "a painting is needed: no region has one and there is none for the rest")
    values = {name: _value(name, kind, fields[name]) for name, kind in known.items() if fields.get(name, "") != ""}
    if values.get("output_profile", "source") not in WEB_PROFILES:
        raise FieldError("output_profile", f"{values['output_profile']!r} is not one of {', '.join(WEB_PROFILES)}")
    size = values.get("size")
    if size is not None and size > max_size:
        raise FieldError("size", f"at most {max_size} px on this server, got {size}")
    if mode == "fast":
        return JobRequest(mode, _fast_config(values, style_name), style_name)
    seed = values.get("seed")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise FieldError("seed", f"must lie in [0, 2^63 - 1], got {seed}")
    return JobRequest(mode, _config(TransferConfig, values), style_name, regions)


def _regions(fields: Mapping[str, str], files: Sequence[str], mode: str) -> tuple[RegionRequest, ...]:
    """The regions a request asks for, numbered 1, 2, … without gaps; each a mask and a painting."""
    numbers: dict[int, str] = {}
    for name in [*files, *(f for f in fields if _REGION_NAME.match(f))]:
        found = _REGION_FILE.match(name) or _REGION_NAME.match(name)
        if found is None:
            continue
        if mode != "optimise":
            raise FieldError(name, "regions are a setting of mode optimise")
        numbers.setdefault(int(found.group(1)), name)
    if not numbers:
        return ()
    if max(numbers) > MAX_REGIONS or sorted(numbers) != list(range(1, len(numbers) + 1)):
        wrong = next(n for n in sorted(numbers) if n > MAX_REGIONS or n > len(numbers))
        raise FieldError(numbers[wrong], f"regions are numbered 1 to at most {MAX_REGIONS}, without gaps")
    out = []
    for number in sorted(numbers):
        region = RegionRequest(number)
        if region.mask_field not in files:
            raise FieldError(region.mask_field, "a mask is needed (an image, white = the region)")
        named = (fields.get(f"{region.style_field}_name") or "").strip() or None
        if (region.style_field in files) == (named is not None):
            raise FieldError(region.style_field, f"give a painting as {region.style_field} or a name (an example "
                             f"painting or {KEEP}) as {region.style_field}_name, one of them")
        out.append(RegionRequest(number, None if named == KEEP else named, named == KEEP))
    return tuple(out)


def _check_files(files: Sequence[str], style_name: str | None, mode: str, any_painting: bool,
                 regions: bool = False) -> None:
    for name in files:
        if name not in FILE_FIELDS:
            raise FieldError(name, "unknown file field (send content, and style or style_name, or regions' "
                             "region_N_mask and region_N_style)")
    if "content" not in files:
        raise FieldError("content", "a photo is needed (a file field named content)")
    if "style" in files and style_name is not None:
        raise FieldError("style", "give either a style file or a style_name, not both")
    if mode == "fast" and "style" in files and not any_painting:
        raise FieldError("style", "fast mode repaints with a shipped network and this server has none for any "
                         "painting: give style_name, not a painting")
    if "style" not in files and style_name is None and not regions:
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
                                 "strength": values.get("strength", 1.0),
                                 **{k: values[k] for k in OUTPUT_FIELDS if k in values}})


def _config(kind: type, values: dict[str, Any]) -> Any:
    """The config; its validation's errors as the form field they are about (``InputError.field``)."""
    try:
        return kind(**values)
    except InputError as exc:
        raise FieldError(exc.field or "settings", exc.problem) from None
