"""The network a style spec names (``impasto.style_spec``), and the shipped models.

:func:`load_style` is the one way from a spec to a network every per-style path runs (``fast.
stylize``, the back-ends, video, ONNX export): a model file is read once and taken as its
recorded format says (one-style, multi-style or any-painting); a shipped style's name is looked
up in the shipped multi-style models first, then in the one-style files; paintings go through an
any-painting model. The package's models folder (``style_spec.models_folder``) holds::

    impasto/models/<style>.pt                one-style networks, by their style's name
    impasto/models/multistyle/<name>.pt      multi-style networks, their styles by name
    impasto/models/multistyle/<name>.onnx    their styles graphs (``fast.graph`` reads them)
    impasto/models/arbitrary/<name>.pt       the any-painting network (the first by name)
"""

from __future__ import annotations

import importlib.resources
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from impasto import images, style_spec
from impasto.errors import InputError, WeightsError
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.model import FastModel, model_from_record
from impasto.fast.multistyle import model as multistyle
from impasto.storage import load_torch
from impasto.style_spec import MODEL_SUFFIX, AnyPainting, Mix, ModelFile, Shipped, StyleSpec, parse_style

# The shipped networks were trained on photographs (BSDS500 and ImageNet samples) distributed for
# non-commercial research and education only, and their weights inherit that restriction
# (docs/models.md). Kept here, once, by each file's place in the models folder: a file placed
# there by hand has no licence impasto knows of.
NON_COMMERCIAL = "non-commercial research use only: trained on photographs licensed for non-commercial research"
SHIPPED_LICENCES = {"multistyle/paper_fig3.pt": NON_COMMERCIAL, "arbitrary/any_painting.pt": NON_COMMERCIAL}

AnyModel = FastModel | multistyle.MultiStyleModel | arbitrary.ArbitraryModel


# --- from a spec to a network ----------------------------------------------------------------


# A process that runs job after job (a batch's worker, the studio's worker) mostly runs one style
# again and again: it keeps the networks it built last, so that each is read, and each painting
# encoded, once a process rather than once a job. The key holds the size and modification time of
# every file the spec names (and its inode: a file renamed over it), so that a file replaced on disk
# is read again.
RECENT_NETWORKS = 4
_recent: OrderedDict[tuple[Any, ...], FastModel] = OrderedDict()


def load_style(spec: StyleSpec) -> FastModel:
    """The one-style network ``spec`` names, at its strength; every problem is one InputError line.
    The networks are shared with later calls for the same spec: use them, do not change them."""
    key = (spec, str(style_spec.models_folder()), *map(_file_identity, _files_named(spec)))
    model = _recent.get(key)
    if model is None:
        model = _recent[key] = _build(spec)
        while len(_recent) > RECENT_NETWORKS:
            _recent.popitem(last=False)
    _recent.move_to_end(key)
    return model


def _files_named(spec: StyleSpec) -> tuple[Path, ...]:
    if isinstance(spec, AnyPainting):
        return (*((spec.model,) if spec.model is not None else ()), *spec.paintings)
    return (spec.path,) if isinstance(spec, ModelFile) else ()


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None  # reading it says what is wrong; nothing is kept from a failed build
    return found.st_ino, found.st_size, found.st_mtime_ns


def _build(spec: StyleSpec) -> FastModel:
    if isinstance(spec, AnyPainting):
        model = shipped_arbitrary() if spec.model is None else _any_painting(read_any(spec.model))
        paintings = [images.load_image(p) for p in spec.paintings]
        name = "+".join(p.stem for p in spec.paintings)
        return arbitrary.bind(model, paintings, spec.weights, spec.strength, name, spec.style_size)
    if isinstance(spec, ModelFile):
        return _bind(read_any(spec.path), spec.mix, spec.strength)
    return _shipped_style(spec)


def resolve(style: str | os.PathLike[str], mix: str | None = None, strength: float = 1.0) -> FastModel:
    """``load_style`` of a ``--style`` as given (a shipped name, a mix, a model file), for scripts."""
    return load_style(parse_style(style, mix, strength=strength))


def read_any(path: str | os.PathLike[str], label: str | None = None) -> AnyModel:
    """A model file of any kind, read once and built as its recorded format says."""
    path = Path(path)
    label = label or os.fsdecode(path)
    if not path.is_file():
        raise WeightsError(f"{label}: model file not found" if not path.exists() else f"{label}: not a file")
    record = load_torch(path, label, "model file")
    found = record.get("format") if isinstance(record, Mapping) else None
    if found == multistyle.FORMAT:
        return multistyle.multistyle_from_record(record, label)
    if found == arbitrary.FORMAT:
        return arbitrary.arbitrary_from_record(record, label)
    return model_from_record(record, label, path.stem)


def _bind(model: AnyModel, mix: Mix | None, strength: float) -> FastModel:
    if isinstance(model, arbitrary.ArbitraryModel):
        raise InputError(f"{model.source}: an arbitrary-style model; give the painting with --style-image PAINTING",
                         field="style_images", problem="an arbitrary-style model needs a painting")
    if isinstance(model, multistyle.MultiStyleModel):
        return multistyle.bind(model, mix if mix is not None else _only_style(model), strength)
    if mix is not None:
        raise InputError(f"--style: {model.source} is a one-style network; --style with --model names styles of a "
                         "multi-style model", field="mix", problem="a one-style network has no styles to choose")
    return _one_style(model, strength)


def _only_style(model: multistyle.MultiStyleModel) -> Mix:
    if len(model.styles) == 1:
        return ((model.names[0], 1.0),)
    raise InputError(f"{model.source}: holds {len(model.styles)} styles ({', '.join(model.names)}); choose one with "
                     "--style NAME or mix them with --style NAME:WEIGHT,NAME:WEIGHT", field="style",
                     problem=f"choose one of {', '.join(model.names)}")


def _one_style(model: FastModel, strength: float) -> FastModel:
    if strength != 1:
        raise InputError(f"--strength: {model.source or model.style} is a one-style network, which has no "
                         "strength; use a multi-style or arbitrary-style model", field="strength",
                         problem="a one-style network has no strength")
    return model


def _any_painting(model: AnyModel) -> arbitrary.ArbitraryModel:
    if not isinstance(model, arbitrary.ArbitraryModel):
        kind = "multi-style" if isinstance(model, multistyle.MultiStyleModel) else "one-style"
        raise InputError(f"{model.source}: a {kind} network, not an arbitrary-style model; apply it without "
                         "--style-image", field="style_images", problem="needs an arbitrary-style model")
    return model


def _shipped_style(spec: Shipped) -> FastModel:
    wanted = {n for n, _ in spec.mix}
    for model in shipped_multistyle():
        if wanted <= set(model.names):
            return multistyle.bind(model, spec.mix, spec.strength)
    if len(spec.mix) == 1 and spec.mix[0][0] in one_style_names():
        name = spec.mix[0][0]
        with importlib.resources.as_file(style_spec.models_folder() / f"{name}{MODEL_SUFFIX}") as path:
            found = read_any(path, label=f"style {name!r}")
        return _bind(found, None, spec.strength)
    installed = installed_styles()
    what = f"installed: {', '.join(installed)}" if installed else "no styles are installed"
    unknown = sorted(wanted - set(installed))
    if not unknown:
        raise InputError(f"--style: {', '.join(sorted(wanted))} are not in one multi-style model; only the styles of "
                         "one model mix", field="style", problem="only the styles of one model mix")
    raise InputError(f"unknown style {unknown[0]!r} ({what}); give a model file with --model", field="style",
                     problem=f"unknown style {unknown[0]!r}")


# --- the shipped models ----------------------------------------------------------------------


def shipped_licence(name: str) -> str | None:
    """The licence of the shipped model file ``name`` (its path in the models folder, as
    "arbitrary/any_painting.pt"); None for a file impasto did not ship."""
    return SHIPPED_LICENCES.get(name)


def shipped_models() -> dict[str, str | None]:
    """Every model file in the models folder (one-style files, then the multi-style and
    arbitrary-style ones), by its path there, with its licence; files are listed, not read."""
    folder = style_spec.models_folder()
    found: dict[str, str | None] = {}
    for sub in ("", "multistyle", "arbitrary"):
        place, prefix = (folder / sub, f"{sub}/") if sub else (folder, "")
        if place.is_dir():
            for entry in sorted(place.iterdir(), key=lambda e: e.name):
                if entry.name.endswith(MODEL_SUFFIX):
                    found[prefix + entry.name] = shipped_licence(prefix + entry.name)
    return found


def one_style_names() -> list[str]:
    """Names of the shipped one-style files, sorted; empty when none are installed."""
    folder = style_spec.models_folder()
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(MODEL_SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(MODEL_SUFFIX))


def shipped_multistyle() -> list[multistyle.MultiStyleModel]:
    """The shipped multi-style models, sorted by file name; empty when none are installed."""
    models = []
    for entry in _files("multistyle"):
        with importlib.resources.as_file(entry) as path:
            model = multistyle.read_multistyle(path, label=f"shipped model {entry.name!r}")
        model.licence = shipped_licence(f"multistyle/{entry.name}")
        models.append(model)
    return models


def multistyle_file(spec: StyleSpec) -> Path:
    """The multi-style model file ``spec`` names (``impasto export --all-styles``): its file, or the
    shipped model holding its style."""
    if isinstance(spec, ModelFile):
        path = spec.path
    elif isinstance(spec, Shipped):
        wanted = {n for n, _ in spec.mix}
        for entry in _files("multistyle"):
            with importlib.resources.as_file(entry) as path:
                if wanted <= set(multistyle.read_multistyle(path, label=f"shipped model {entry.name!r}").names):
                    return path
        raise InputError(f"{', '.join(sorted(wanted))}: not a style of a shipped multi-style model", field="model",
                         problem="not a style of a shipped multi-style model")
    else:
        raise InputError("--all-styles: takes a multi-style model, not paintings", field="all_styles",
                         problem="takes a multi-style model, not paintings")
    if not isinstance(read_any(path), multistyle.MultiStyleModel):
        raise InputError(f"{path}: --all-styles takes a multi-style model", field="model",
                         problem="--all-styles takes a multi-style model")
    return path


def installed_styles() -> list[str]:
    """Every name a ``--style`` answers to alone: the shipped multi-style models' styles and the
    shipped one-style files, sorted."""
    return sorted({*one_style_names(), *(n for m in shipped_multistyle() for n in m.names)})


def shipped_arbitrary() -> arbitrary.ArbitraryModel:
    """The arbitrary-style model installed with impasto (the first by file name)."""
    found = _files("arbitrary")
    if not found:
        raise InputError("--style-image: no arbitrary-style model is installed; give --model ARBITRARY.pt (from "
                         "`impasto train-arbitrary`)", field="style_images", problem="no any-painting model installed")
    with importlib.resources.as_file(found[0]) as path:
        model = arbitrary.read_arbitrary(path)
    model.licence = shipped_licence(f"arbitrary/{found[0].name}")
    return model


def arbitrary_installed() -> bool:
    """Whether an arbitrary-style model is installed (the studio's fast mode then takes any painting)."""
    return bool(_files("arbitrary"))


def _files(sub: str) -> list[Any]:
    folder = style_spec.models_folder() / sub
    if not folder.is_dir():
        return []
    return sorted((e for e in folder.iterdir() if e.name.endswith(MODEL_SUFFIX)), key=lambda e: e.name)


# --- listings --------------------------------------------------------------------------------


def describe_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The styles of a model file, as ``impasto styles --json`` lists them."""
    model = read_any(path)
    if isinstance(model, multistyle.MultiStyleModel):
        return multistyle.describe(model)
    if isinstance(model, arbitrary.ArbitraryModel):
        return [arbitrary.describe_arbitrary(model)]
    return [multistyle.describe_one_style(model)]


def shipped_styles() -> list[dict[str, Any]]:
    """Every shipped style: multi-style models' first, then one-style files."""
    entries = [entry for model in shipped_multistyle() for entry in multistyle.describe(model)]
    for name in one_style_names():
        with importlib.resources.as_file(style_spec.models_folder() / f"{name}{MODEL_SUFFIX}") as path:
            model = model_from_record(load_torch(path, f"style {name!r}", "model file"), f"style {name!r}", name)
        entries.append(multistyle.describe_one_style(model, shipped_licence(name + MODEL_SUFFIX)))
    return entries
