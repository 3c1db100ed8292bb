"""Multi-style networks: one set of convolutions, one learned style vector per named painting
(Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic Style").

The network is ``fast.conditional.ConditionalNet`` (Johnson et al.'s layout: reflection padding,
two stride-2 stages so that the residual blocks run at 1/4 resolution, nearest upsampling then a
convolution) with a table of style vectors ``[γ…, β…, g]``, one row per style: Dumoulin et al.'s
conditional instance normalisation, every convolution shared. Their §4 mixes styles by mixing
γ/β; ``bind`` does that, and moves the mixed vector from the identity (the vector for which the
network returns the photo exactly) by a strength in [0, 1].

Departures from the paper:

* the gated output of ``fast.conditional`` (g, 3 numbers per style, stored as logits so that the
  gain trains in (0, 1) without sticking at a clamp), which makes strength 0 the photo itself;
* a new style (``--add-style``) starts from the mean of the existing styles' vectors, not from
  the identity (a gain of 0 would pass no gradient);
* each style's objective is the paper's own (Gatys et al. 2016, eq. 7, as ``impasto transfer``
  computes it), recorded in the file (``Objective``), so that the network can be judged against
  the optimisation on the same objective (Johnson et al. 2016, Fig. 5).

A model file is data, never code: a ``torch.save`` of a plain dict read back with
``torch.load(weights_only=True)``::

    {"format": "impasto-multistyle", "version": 1,
     "architecture": {"width": 16, "blocks": 5, "kernel": 9, "stages": 2},
     "styles": [{"name": "starry_night", "objective": {...}, "training": {...}}, ...],
     "training": {"settings": {...}, "iterations": ..., "seconds": ...},
     "state_dict": {"transformer.…": float32 tensor, "styles.0": float32 tensor, ...}}

Shipped multi-style models live in the package as ``impasto/models/multistyle/<name>.pt``; their
styles are applied by name alone (``impasto apply --style starry_night``) and take precedence
over one-style files of the same name.
"""

from __future__ import annotations

import importlib.resources
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from impasto import storage
from impasto.config import TrainConfig, TransferConfig
from impasto.errors import InputError, WeightsError
from impasto.fast import model as fast_model
from impasto.fast.conditional import BoundNet, ConditionalNet
from impasto.fast.model import MODEL_SUFFIX, FastModel, check_version
from impasto.fast.network import Architecture
from impasto.layers import check_layers
from impasto.storage import load_torch, reason

FORMAT = "impasto-multistyle"
VERSION = 1
#: The gains start at sigmoid(2) = 0.88, as the arbitrary-style predictor's (conditional.py).
GAIN_LOGIT = 2.0
#: Channels the residual blocks need at 1/4 resolution (issue 12: Johnson's and Magenta's layout).
MIN_BLOCK_CHANNELS = 32


def check_layout(arch: Architecture) -> None:
    """Refuse layouts other than Johnson's: residual blocks at 1/4 resolution, ≥ 32 channels there."""
    if arch.stages != 2:
        raise InputError(f"--variant: a multi-style network keeps its residual blocks at 1/4 resolution (2 stages), "
                         f"not {arch.stages}; use --variant johnson or fast with --width/--blocks/--kernel")
    if arch.width * 4 < MIN_BLOCK_CHANNELS:
        raise InputError(f"--width: at least {MIN_BLOCK_CHANNELS // 4} (the residual blocks need "
                         f"{MIN_BLOCK_CHANNELS} channels), got {arch.width}")


class MultiStyleNet(nn.Module):
    """The conditional transformer and a table of ``count`` style vectors. Row ``i`` is held as
    ``[γ…, β…, logit(g)]``; ``table()`` returns the transformer's vectors ``[γ…, β…, g]``."""

    def __init__(self, arch: Architecture, count: int) -> None:
        super().__init__()
        self.arch = arch
        self.transformer = ConditionalNet(arch)
        start = self.transformer.identity().reshape(-1).clone()
        start[-3:] = GAIN_LOGIT
        self.styles = nn.ParameterList([nn.Parameter(start.clone()) for _ in range(count)])

    @property
    def count(self) -> int:
        return len(self.styles)

    def table(self) -> Tensor:
        """The style vectors, (count, code_size), gains in (0, 1)."""
        raw = torch.stack(list(self.styles))
        return torch.cat([raw[:, :-3], torch.sigmoid(raw[:, -3:])], dim=1)

    def forward(self, photos: Tensor, indices: Tensor) -> Tensor:
        """Photos (B, 3, H, W), each stylised with the style of its index in ``indices`` (B,)."""
        return self.transformer(photos, self.table()[indices.to(photos.device)])

    def add_style(self) -> int:
        """Append a style vector, the mean of the others (or the start vector); its index."""
        with torch.no_grad():
            start = torch.stack(list(self.styles)).mean(dim=0) if self.count else self._start()
        self.styles.append(nn.Parameter(start.clone()))
        return self.count - 1

    def _start(self) -> Tensor:
        start = self.transformer.identity().reshape(-1).clone()
        start[-3:] = GAIN_LOGIT
        return start


# --- objectives ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """A style's training objective as the paper's terms (Gatys et al. 2016, eq. 7, plus the TV
    term ``impasto transfer --tv-weight`` adds): α Σ w_l L_content + β Σ w_l E_l + λ TV, content
    on ``content_layers``, style on ``style_layers`` (layer: w_l), the painting's long side
    ``style_size`` px whatever the image's size (``impasto transfer --style-size``).

    Why a fixed painting size rather than one relative to the image: the Gram targets a network
    learns from are the painting's at its training ``style_size``, so the strokes it paints have
    that size in pixels at any photo size; the objective it minimises on a 512 px photo holds
    the painting at that size too, not enlarged with the photo."""

    content_weight: float
    style_weight: float
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    tv_weight: float = 0.0
    style_size: int = 256

    def as_dict(self) -> dict[str, Any]:
        return {"content_weight": self.content_weight, "style_weight": self.style_weight,
                "content_layers": dict(self.content_layers), "style_layers": dict(self.style_layers),
                "tv_weight": self.tv_weight, "style_size": self.style_size}

    @classmethod
    def from_dict(cls, data: Any, label: str) -> Objective:
        try:
            objective = cls(float(data["content_weight"]), float(data["style_weight"]),
                            {str(k): float(v) for k, v in dict(data["content_layers"]).items()},
                            {str(k): float(v) for k, v in dict(data["style_layers"]).items()},
                            float(data.get("tv_weight", 0.0)), int(data["style_size"]))
            check_layers((*objective.content_layers, *objective.style_layers))
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise WeightsError(f"{label}: invalid objective ({reason(exc)})") from None
        return objective

    def transfer_config(self, size: int, **settings: Any) -> TransferConfig:
        """The single-scale transfer (``impasto transfer --scales 1``) that minimises this
        objective at ``size`` px; ``impasto.evaluate`` with it scores an image on it."""
        return TransferConfig(size=size, scales=1, content_weight=self.content_weight,
                              style_weight=self.style_weight, tv_weight=self.tv_weight,
                              content_layers=tuple(self.content_layers),
                              content_layer_weights=tuple(self.content_layers.values()),
                              style_layers=tuple(self.style_layers),
                              style_layer_weights=tuple(self.style_layers.values()),
                              style_size=self.style_size, **settings)


def objective_of(config: TrainConfig) -> Objective:
    """The objective a training run of ``config`` minimises (its "gatys" objective, the painting
    at ``style_size`` px); "relative" has no such form (``objective_or_reason``)."""
    if config.objective != "gatys":
        raise InputError(f"--objective: a multi-style model records each style's objective as the paper's "
                         f"terms; use gatys, not {config.objective}")
    style = config.style_layer_weights or (1.0 / len(config.style_layers),) * len(config.style_layers)
    return Objective(config.content_weight, config.style_weight,
                     dict.fromkeys(config.content_layers, 1.0 / len(config.content_layers)),
                     dict(zip(config.style_layers, style, strict=True)), config.tv_weight, config.style_size)


def objective_or_reason(training: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """A one-style model file's objective from its recorded settings, or None and why not."""
    settings = training.get("settings")
    if not isinstance(settings, Mapping):
        return None, "the model records no training settings"
    kind = settings.get("objective", "relative")
    if kind != "gatys":
        return None, (f"trained on the {kind!r} objective: each content term is divided by the photo's own "
                      "feature energy, which no fixed weight α expresses")
    try:
        config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()
                                if k in TrainConfig.__dataclass_fields__})
    except (InputError, TypeError) as exc:
        return None, f"its recorded settings are not readable ({reason(exc)})"
    note = ("approximate: this older trainer normalised the painting's Gram matrices by the painting's own size, "
            "where impasto transfer divides by the image's")
    return {**objective_of(config).as_dict(), "note": note}, None


# --- model files -----------------------------------------------------------------------------


@dataclass
class StyleEntry:
    """A style of a multi-style model: its name, objective (``Objective.as_dict``) and training."""

    name: str
    objective: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class MultiStyleModel:
    network: MultiStyleNet
    styles: list[StyleEntry]
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    # A shipped model's terms of use (``fast.model.SHIPPED_LICENCES``); None for other files.
    licence: str | None = None

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.styles]

    def index(self, name: str, option: str = "--style") -> int:
        names = self.names
        if name not in names:
            where = f" in {self.source}" if self.source else ""
            raise InputError(f"{option}: no style {name!r}{where} (it holds {', '.join(names)})")
        return names.index(name)


def save_multistyle(model: MultiStyleModel, path: str | os.PathLike[str]) -> None:
    """Write a model file atomically; a diverged network (NaN weights) is refused."""
    if len(model.styles) != model.network.count or len(set(model.names)) != len(model.names):
        raise InputError(f"{os.fsdecode(path)}: not written: {model.network.count} style vectors for styles "
                         f"{model.names}")
    state = {}
    for name, tensor in model.network.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{os.fsdecode(path)}: not written: {name} is not finite (the training has diverged; "
                             "resume from an earlier checkpoint with a lower --learning-rate)")
        state[name] = tensor.detach().to("cpu", torch.float32).clone()
    storage.save_torch({
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.network.arch.as_dict(),
        "styles": [{"name": s.name, "objective": dict(s.objective), "training": dict(s.training)}
                   for s in model.styles],
        "training": dict(model.training),
        "state_dict": state,
    }, path)


def read_multistyle(path: str | os.PathLike[str], label: str | None = None) -> MultiStyleModel:
    """Load a model file (weights only); every problem is one WeightsError line naming the file."""
    path = Path(path)
    label = label or os.fsdecode(path)
    if not path.is_file():
        raise WeightsError(f"{label}: model file not found" if not path.exists() else f"{label}: not a file")
    return _from_record(load_torch(path, label, "model file"), label)


def _from_record(record: Any, label: str) -> MultiStyleModel:
    found = record.get("format") if isinstance(record, Mapping) else None
    if found != FORMAT:
        raise WeightsError(f"{label}: not an impasto multi-style model (format {found!r})")
    check_version(record, label, VERSION)
    try:
        spec = record["architecture"]
        arch = Architecture.from_dict(spec)
        styles = [StyleEntry(str(s["name"]), dict(s["objective"]), dict(s.get("training") or {}))
                  for s in record["styles"]]
        network = MultiStyleNet(arch, len(styles))
        network.load_state_dict(dict(record["state_dict"]))
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
        raise WeightsError(f"{label}: invalid multi-style model ({reason(exc).splitlines()[0]})") from None
    if not styles or len({s.name for s in styles}) != len(styles):
        raise WeightsError(f"{label}: the model must hold styles of distinct names, got {[s.name for s in styles]}")
    for style in styles:
        Objective.from_dict(style.objective, f"{label}: style {style.name!r}")
    if not all(torch.isfinite(t).all() for t in network.state_dict().values() if t.is_floating_point()):
        raise WeightsError(f"{label}: the model holds NaN or infinite values")
    network.eval().requires_grad_(False)
    training = record.get("training")
    return MultiStyleModel(network, styles, training if isinstance(training, dict) else {}, label)


def _multistyle_folder() -> Any:
    return fast_model._models_folder() / "multistyle"


def shipped_multistyle() -> list[MultiStyleModel]:
    """The shipped multi-style models, sorted by file name; empty when none are installed."""
    folder = _multistyle_folder()
    if not folder.is_dir():
        return []
    models = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(fast_model.MODEL_SUFFIX):
            with importlib.resources.as_file(entry) as path:
                model = read_multistyle(path, label=f"shipped model {entry.name!r}")
            model.licence = fast_model.shipped_licence(f"multistyle/{entry.name}")
            models.append(model)
    return models


# --- choosing and mixing styles --------------------------------------------------------------


def parse_mix(spec: str, option: str = "--style") -> tuple[tuple[str, float], ...]:
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


def style_vector(model: MultiStyleModel, mix: Sequence[tuple[str, float]], strength: float = 1.0) -> Tensor:
    """The weighted mean of the named styles' vectors (Dumoulin et al. 2017, §4: a convex
    combination of γ/β), moved from the identity by ``strength``; shape (1, code_size)."""
    if not (isinstance(strength, (int, float)) and 0 <= strength <= 1):
        raise InputError(f"--strength: must lie in [0, 1], got {strength}")
    with torch.no_grad():
        table = model.network.table()
        vector = sum((w * table[model.index(n)] for n, w in mix), torch.zeros_like(table[0]))
        return model.network.transformer.toward_identity(vector.reshape(1, -1), strength)


def bind(model: MultiStyleModel, mix: Sequence[tuple[str, float]], strength: float = 1.0) -> FastModel:
    """A one-style network for a style or a mix of styles at ``strength``, which ``fast.stylize``,
    every back-end, the video path and ONNX export run as a per-style network."""
    bound = BoundNet(model.network.transformer, style_vector(model, mix, strength)).eval()
    name = "+".join(n for n, _ in mix)
    return FastModel(bound, name, model.training, model.source)  # type: ignore[arg-type]


def _default_mix(model: MultiStyleModel, mix: str | None) -> tuple[tuple[str, float], ...]:
    if mix is not None:
        return parse_mix(mix)
    if len(model.styles) == 1:
        return ((model.names[0], 1.0),)
    raise InputError(f"{model.source}: holds {len(model.styles)} styles ({', '.join(model.names)}); choose one with "
                     "--style NAME or mix them with --style NAME:WEIGHT,NAME:WEIGHT")


def resolve(style: str, mix: str | None = None, strength: float = 1.0) -> FastModel:
    """The network ``impasto apply`` runs: ``style`` a model file (with ``mix`` naming styles of a
    multi-style one), a shipped style's name, or a mix of the styles of one shipped multi-style model."""
    if not _is_mix(style) and fast_model._is_path(style):
        path = Path(style)
        record = load_torch(path, os.fsdecode(path), "model file") if path.is_file() else None
        if isinstance(record, Mapping) and record.get("format") == FORMAT:
            model = _from_record(record, os.fsdecode(path))
            return bind(model, _default_mix(model, mix), strength)
        if mix is not None:
            raise InputError(f"--style: {os.fsdecode(path)} is a one-style network; --style with --model names "
                             "styles of a multi-style model")
        return _one_style(fast_model.read_model(path), strength)
    pairs = parse_mix(style)
    wanted = {n for n, _ in pairs}
    for model in shipped_multistyle():
        if wanted <= set(model.names):
            return bind(model, pairs, strength)
    if len(pairs) == 1 and style in fast_model.available_styles():
        return _one_style(fast_model.load_model(style), strength)
    installed = installed_styles()
    what = f"installed: {', '.join(installed)}" if installed else "no styles are installed"
    unknown = sorted(wanted - set(installed))
    if not unknown:
        raise InputError(f"--style: {', '.join(sorted(wanted))} are not in one multi-style model; only the styles of "
                         "one model mix")
    raise InputError(f"unknown style {unknown[0]!r} ({what}); give a model file with --model")


def installed_styles() -> list[str]:
    """Every name ``resolve`` answers to alone: the shipped multi-style models' styles and the
    shipped one-style files, sorted."""
    return sorted({*fast_model.available_styles(), *(n for m in shipped_multistyle() for n in m.names)})


def _is_mix(spec: str) -> bool:
    """Whether a --style names styles ("a:0.7,b:0.3") rather than a file (which may hold those characters)."""
    return (":" in spec or "," in spec) and "/" not in spec and os.sep not in spec and not Path(spec).exists()


def _one_style(model: FastModel, strength: float) -> FastModel:
    if strength != 1:
        raise InputError(f"--strength: {model.source or model.style} is a one-style network, which has no "
                         "strength; use a multi-style or arbitrary-style model")
    return model


# --- listings --------------------------------------------------------------------------------


def describe(model: MultiStyleModel) -> list[dict[str, Any]]:
    """One object per style (``impasto styles --json``)."""
    arch = model.network.arch
    return [{"name": s.name, "kind": "multi-style", "model": model.source, "architecture": str(arch),
             "iterations": s.training.get("iterations"), "objective": s.objective, "training": s.training,
             "licence": model.licence} for s in model.styles]


def describe_one_style(model: FastModel, licence: str | None = None) -> dict[str, Any]:
    """A one-style model as ``describe`` lists styles, with its objective where it has one."""
    objective, why = objective_or_reason(model.training)
    entry = {"name": model.style, "kind": "one-style", "model": model.source, "architecture": str(model.architecture),
             "iterations": model.training.get("iterations"), "objective": objective, "licence": licence}
    if why is not None:
        entry["objective_reason"] = why
    return entry


def describe_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The styles of a model file, multi-style or one-style, as ``describe`` lists them."""
    path = Path(path)
    record = load_torch(path, os.fsdecode(path), "model file") if path.is_file() else None
    if isinstance(record, Mapping) and record.get("format") == FORMAT:
        return describe(_from_record(record, os.fsdecode(path)))
    return [describe_one_style(fast_model.read_model(path))]


def shipped_styles() -> list[dict[str, Any]]:
    """Every shipped style: multi-style models' first, then one-style files."""
    entries = [entry for model in shipped_multistyle() for entry in describe(model)]
    return entries + [describe_one_style(fast_model.load_model(n), fast_model.shipped_licence(n + MODEL_SUFFIX))
                      for n in fast_model.available_styles()]
