"""Arbitrary-style models: the conditional transformer and the style predictor in one file, the
held-out split of the paintings, and binding a model to paintings for ``impasto apply``.

A model file is data, never code: a ``torch.save`` of a plain dict read back with
``torch.load(weights_only=True)``::

    {"format": "impasto-arbitrary", "version": 2,
     "architecture": {"width": 16, "blocks": 5, "kernel": 9, "stages": 2},
     "style_size": 256, "code_size": 100,
     "training": {"settings": {...}, "iterations": ..., "seconds": ..., "validation": [...]},
     "state_dict": {name: float32 tensor}}

Binding (``bind``) computes the paintings' style code once, mixes codes by weight (Ghiasi et
al. 2017, §4.3: interpolating codes interpolates styles), scales the γ/β toward the identity by
the strength, and returns a one-style network that every per-style path runs unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from impasto import images, storage
from impasto.config import PAINTING_HOLDOUT_PERCENT, PAINTING_SIDE
from impasto.errors import InputError, WeightsError
from impasto.fast.arbitrary.objective import recorded_objective
from impasto.fast.arbitrary.style_code import STATISTIC_LAYERS, StylePredictor, feature_statistics
from impasto.fast.conditional import BoundNet, ConditionalNet
from impasto.fast.model import FastModel, check_version
from impasto.fast.network import Architecture
from impasto.fast.training.data import PHOTO_SUFFIXES, held_out
from impasto.storage import load_torch, reason
from impasto.vgg import VGG19, VGGWeights, deepest, load_weights

FORMAT = "impasto-arbitrary"
# 2: the style predictor's units are leaky (version 1's could die whole, one code for all).
VERSION = 2
# Paintings and photos are split by the same hash; a prefix keeps the two splits independent.
_PAINTING_SALT = "painting:"


class ArbitraryNet(nn.Module):
    """The conditional transformer (``transformer``) and the style predictor (``predictor``).
    ``style_size``: the shorter side its training held the paintings at (``bind`` reads them at
    a long side of its own)."""

    def __init__(self, arch: Architecture, style_size: int = 256) -> None:
        super().__init__()
        self.arch = arch
        self.style_size = style_size
        self.transformer = ConditionalNet(arch)
        self.predictor = StylePredictor(self.transformer.identity())

    def forward(self, photos: Tensor, statistics: Tensor, strength: float = 1.0) -> Tensor:
        """Photos stylised each with the painting whose ``feature_statistics`` are given."""
        return self.transformer(photos, self.predictor.gammabeta(self.predictor.code(statistics), strength))


@dataclass
class ArbitraryModel:
    network: ArbitraryNet
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    # The installed model's terms of use (``fast.model.SHIPPED_LICENCES``); None for other files.
    licence: str | None = None


def held_out_painting(name: str, percent: float = PAINTING_HOLDOUT_PERCENT) -> bool:
    """Whether a painting is held out (never trained on): a stable hash of its file name."""
    return held_out(_PAINTING_SALT + name, percent)


class Paintings:
    """The paintings of a folder, split by a hash of their names into training and held-out."""

    def __init__(self, folder: str | os.PathLike[str], holdout_percent: float = PAINTING_HOLDOUT_PERCENT) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: painting folder not found" if not self.folder.exists()
                             else f"{self.folder}: not a folder")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        self.held_out = [p for p in files if held_out_painting(p.name, holdout_percent)]
        self.training = [p for p in files if not held_out_painting(p.name, holdout_percent)]
        if not self.training:
            raise InputError(f"{self.folder}: no training paintings (.jpg, .png, .webp) in this folder")


def resize_short_side(image: Tensor, side: int) -> Tensor:
    """Resize so that the shorter side is ``side`` px (up or down)."""
    height, width = image.shape[-2:]
    scale = side / min(height, width)
    return images.resize_to(image, max(side, round(height * scale)), max(side, round(width * scale)))


def statistics_vgg(weights: VGGWeights | None = None) -> VGG19:
    """VGG-19 up to the deepest layer the style code reads."""
    return VGG19(weights or load_weights(), deepest(STATISTIC_LAYERS))


def painting_statistics(vgg: VGG19, painting: Tensor) -> Tensor:
    """``feature_statistics`` of a (B, 3, H, W) float32 batch, through VGG as it is placed."""
    device = next(vgg.parameters()).device
    with torch.no_grad():
        features = vgg(painting.to(device, torch.float32), STATISTIC_LAYERS)
    return feature_statistics(features)


# --- model files -----------------------------------------------------------------------------


def save_arbitrary(network: ArbitraryNet, path: str | os.PathLike[str], training: Mapping[str, Any]) -> None:
    """Write a model file atomically; a diverged network (NaN weights) is refused."""
    state = {}
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{os.fsdecode(path)}: not written: {name} is not finite (the training has diverged)")
        state[name] = tensor.detach().to("cpu", torch.float32)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": network.arch.as_dict(),
        "style_size": network.style_size,
        "code_size": network.predictor.code_size,
        "training": dict(training),
        "state_dict": state,
    }
    storage.save_torch(record, path)


def read_arbitrary(path: str | os.PathLike[str]) -> ArbitraryModel:
    """Load a model file; every problem is one WeightsError line naming the file."""
    path = Path(path)
    label = os.fsdecode(path)
    if not path.is_file():
        raise WeightsError(f"{label}: model file not found" if not path.exists() else f"{label}: not a file")
    return arbitrary_from_record(load_torch(path, label, "model file"), label)


def arbitrary_from_record(record: Any, label: str) -> ArbitraryModel:
    """The model an any-painting file's record holds; a problem is one WeightsError line naming ``label``."""
    found = record.get("format") if isinstance(record, Mapping) else None
    if found != FORMAT:
        if found == "impasto-fast":
            raise WeightsError(f"{label}: a one-style network, not an arbitrary-style model; apply it without "
                               "--style-image")
        raise WeightsError(f"{label}: not an impasto arbitrary-style model (format {found!r})")
    check_version(record, label, VERSION)
    if record["version"] < VERSION:
        raise WeightsError(f"{label}: an arbitrary-style model of format {record['version']}, whose style predictor "
                           f"this impasto no longer has (format {VERSION}): train it again")
    try:
        spec = record["architecture"]
        arch = Architecture.from_dict(spec)
        network = ArbitraryNet(arch, int(record["style_size"]))
        network.load_state_dict(dict(record["state_dict"]))
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
        raise WeightsError(f"{label}: invalid arbitrary-style model ({reason(exc).splitlines()[0]})") from None
    if not all(torch.isfinite(t).all() for t in network.state_dict().values() if t.is_floating_point()):
        raise WeightsError(f"{label}: the model holds NaN or infinite values")
    network.eval().requires_grad_(False)
    training = record.get("training")
    return ArbitraryModel(network, training if isinstance(training, dict) else {}, label)


def is_arbitrary_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file is an arbitrary-style model (weights-only read; False for anything else)."""
    try:
        record = load_torch(Path(path), os.fsdecode(path), "model file")
    except (WeightsError, InputError, OSError):
        return False
    return isinstance(record, Mapping) and record.get("format") == FORMAT


# --- binding to paintings --------------------------------------------------------------------


def style_code(model: ArbitraryModel, paintings: Sequence[Tensor], weights: Sequence[float] | None = None,
               vgg: VGG19 | None = None, style_size: int = PAINTING_SIDE) -> Tensor:
    """The weighted mean of the paintings' style codes, (1, code_size), each painting read at long
    side ``style_size``: VGG-19 runs once per painting. ``weights`` default to equal; they are
    normalised to sum to one."""
    if not paintings:
        raise InputError("--style-image: at least one painting is needed")
    weights = list(weights) if weights is not None else [1.0] * len(paintings)
    if len(weights) != len(paintings):
        raise InputError(f"--style-blend: {len(weights)} weights given for {len(paintings)} style images")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError(f"--style-blend: must be non-negative with a positive sum, got {weights}")
    vgg = vgg or statistics_vgg()
    predictor = model.network.predictor
    total = sum(weights)
    with torch.no_grad():
        codes = [predictor.code(painting_statistics(vgg, images.resize_long_side(p, style_size)))
                 for p in paintings]
        return sum((w / total * c for w, c in zip(weights, codes, strict=True)), torch.zeros_like(codes[0]))


def bind(model: ArbitraryModel, paintings: Sequence[Tensor], weights: Sequence[float] | None = None,
         strength: float = 1.0, name: str = "arbitrary", style_size: int | None = None) -> FastModel:
    """A one-style network for the paintings (mixed by ``weights``, read at long side
    ``style_size``, default ``PAINTING_SIDE``: larger paints larger strokes) at ``strength`` in
    [0, 1], ready for ``fast.stylize``, the back-ends, the video path and ONNX export."""
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"--strength: must lie in [0, 1], got {strength}")
    code = style_code(model, paintings, weights, style_size=style_size or PAINTING_SIDE)
    with torch.no_grad():
        gammabeta = model.network.predictor.gammabeta(code, strength)
    bound = BoundNet(model.network.transformer, gammabeta).eval()
    return FastModel(bound, name, model.training, model.source)  # type: ignore[arg-type]


def describe_arbitrary(model: ArbitraryModel) -> dict[str, Any]:
    """An arbitrary-style model as ``fast.multistyle.model.describe`` lists styles; it has no style name, any
    painting being its style (``impasto styles --json``)."""
    objective = recorded_objective(model.training.get("settings") or {})
    return {"name": None, "kind": "arbitrary", "model": Path(model.source).name,
            "architecture": str(model.network.arch), "iterations": model.training.get("iterations"),
            "objective": objective.as_dict(), "licence": model.licence}
