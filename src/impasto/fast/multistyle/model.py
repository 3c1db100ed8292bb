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

Shipped multi-style models live in the package as ``impasto/models/multistyle/<name>.pt``
(``fast.styles`` finds them; their styles are applied by name alone).
"""

from __future__ import annotations

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
from impasto.fast.conditional import BoundNet, ConditionalNet
from impasto.fast.model import FastModel, check_version
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
    return multistyle_from_record(load_torch(path, label, "model file"), label)


def multistyle_from_record(record: Any, label: str) -> MultiStyleModel:
    """The model a multi-style file's record holds; a problem is one WeightsError line naming ``label``."""
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


# --- mixing styles ----------------------------------------------------------------------------


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
             "iterations": model.training.get("iterations"), "objective": objective, "training": model.training,
             "licence": licence}
    if why is not None:
        entry["objective_reason"] = why
    return entry
