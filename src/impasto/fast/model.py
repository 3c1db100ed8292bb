"""Model files of one-style networks (Johnson et al. 2016).

A model file is data, never code: a ``torch.save`` of a plain dict read back with
``torch.load(weights_only=True)``::

    {"format": "impasto-fast", "version": 1,
     "architecture": {"variant": "johnson", "width": 32, "blocks": 5},
     "style": "starry_night",
     "training": {"settings": {...}, "iterations": ..., "seconds": ..., "final_losses": {...}},
     "state_dict": {name: float16 tensor}}

float16 storage halves the file (the "johnson" network is 3.4 MB); weights are widened to
float32 on load. Which file a style comes from, shipped or given, is ``fast.styles``' question.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import storage
from impasto.errors import InputError, WeightsError
from impasto.fast.network import VARIANTS, Architecture, TransformNet
from impasto.storage import load_torch, reason

FORMAT = "impasto-fast"
VERSION = 1
# fp16's largest finite value: weights beyond it cannot be stored.
_FP16_MAX = 65504.0


@dataclass
class FastModel:
    """A trained network and what is known about it."""

    network: TransformNet
    style: str
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def architecture(self) -> Architecture:
        return self.network.arch


def variant_name(arch: Architecture) -> str | None:
    """The named variant an architecture is, if any."""
    return next((name for name, a in VARIANTS.items() if a == arch), None)


def save_model(network: TransformNet, path: str | os.PathLike[str], style: str, training: Mapping[str, Any]) -> None:
    """Write a model file atomically (no partial file is ever left at ``path``)."""
    state = {}
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point() and not (torch.isfinite(tensor).all() and tensor.abs().max() <= _FP16_MAX):
            raise InputError(f"{os.fsdecode(path)}: not written: {name} is not finite in float16 (the network "
                             "has diverged; resume from an earlier checkpoint with a lower --learning-rate)")
        state[name] = tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": {"variant": variant_name(network.arch), **network.arch.as_dict()},
        "style": style,
        "training": dict(training),
        "state_dict": state,
    }
    storage.save_torch(record, path)


def read_model(path: str | os.PathLike[str], label: str | None = None) -> FastModel:
    """Load a one-style model file; every problem is one WeightsError line naming the file."""
    path = Path(path)
    label = label or os.fsdecode(path)
    if not path.exists():
        raise WeightsError(f"{label}: model file not found")
    if not path.is_file():
        raise WeightsError(f"{label}: not a file")
    return model_from_record(load_torch(path, label, "model file"), label, path.stem)


def model_from_record(record: Any, label: str, name: str) -> FastModel:
    """The one-style model a model file's record holds (``name``: its style when it records
    none); anything else is one WeightsError line naming ``label``."""
    _check_record(record, label)
    arch = _architecture(record, label)
    network = TransformNet(arch)
    network.load_state_dict(_state_dict(record, network, label))
    network.eval().requires_grad_(False)
    training = record.get("training")
    style = record.get("style")
    return FastModel(network, style if isinstance(style, str) else name,
                     training if isinstance(training, dict) else {}, label)


def _check_record(record: Any, label: str) -> None:
    if not isinstance(record, Mapping) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, Mapping) else None
        what = f"format {found!r}" if isinstance(found, str) else "no format field; a plain state dict?"
        raise WeightsError(f"{label}: not an impasto fast-style model ({what})")
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise WeightsError(f"{label}: invalid model format version {version!r}")
    if version > VERSION:
        raise WeightsError(
            f"{label}: model format version {version} is newer than this impasto reads ({VERSION}); upgrade impasto"
        )


def _architecture(record: Mapping[str, Any], label: str) -> Architecture:
    spec = record.get("architecture")
    if not isinstance(spec, Mapping):
        raise WeightsError(f"{label}: the model has no architecture description")
    try:
        # kernel and stages default to Johnson et al.'s: files of format version 1 predate them.
        defaults = Architecture()
        return Architecture(
            int(spec["width"]),
            int(spec["blocks"]),
            int(spec.get("kernel", defaults.kernel)),
            int(spec.get("stages", defaults.stages)),
            spec.get("upsample", defaults.upsample),
        )
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise WeightsError(f"{label}: invalid architecture {dict(spec)!r} ({reason(exc)})") from None


def _state_dict(record: Mapping[str, Any], network: TransformNet, label: str) -> dict[str, Tensor]:
    """The stored tensors widened to float32, checked name by name against the network's."""
    stored = record.get("state_dict")
    if not isinstance(stored, Mapping):
        raise WeightsError(f"{label}: the model holds no state dict")
    arch = network.arch
    expected = network.state_dict()
    for name, reference in expected.items():
        tensor = stored.get(name)
        if not isinstance(tensor, Tensor):
            raise WeightsError(f"{label}: {name} missing for a {arch} network")
        if tensor.shape != reference.shape:
            raise WeightsError(
                f"{label}: {name} has shape {tuple(tensor.shape)}, expected {tuple(reference.shape)} for a "
                f"{arch} network"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"{label}: {name} holds NaN or infinite values")
    extra = sorted(set(stored) - set(expected))
    if extra:
        raise WeightsError(f"{label}: unexpected tensor {extra[0]} for a {arch} network")
    return {name: stored[name].to(reference.dtype) for name, reference in expected.items()}


def network_of(model: FastModel | TransformNet) -> TransformNet:
    """The network itself, whether given bare or with its model file's metadata."""
    return model.network if isinstance(model, FastModel) else model


def check_version(record: Mapping[str, Any], label: str, latest: int) -> None:
    """Refuse, in one line, a model record whose format version is not 1 … ``latest``."""
    version = record.get("version")
    if not isinstance(version, int) or not 1 <= version <= latest:
        raise WeightsError(f"{label}: model format version {version!r} is not one this impasto reads ({latest})")
