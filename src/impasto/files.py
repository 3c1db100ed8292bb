"""Reading torch files (weights, models, checkpoints) as data, never as code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from impasto.errors import WeightsError


def reason(exc: BaseException) -> str:
    """An exception's message as a short single line, for messages that must stay on one line."""
    text = str(exc)
    if "Weights only load failed" in text:
        # torch's message is many lines with terminal escapes; what it means fits in a few words.
        return "it holds objects other than tensors and plain data, which are never unpickled"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]


def load_torch(path: Path, label: str, what: str) -> Any:
    """``torch.load(weights_only=True)`` on the CPU; any failure becomes one WeightsError line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch.load raises a zoo of exception types for damaged or foreign files; all mean the same.
        raise WeightsError(f"{label}: cannot read {what} ({reason(exc)})") from None
