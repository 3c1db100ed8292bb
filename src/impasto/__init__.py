"""impasto: neural style transfer (Gatys, Ecker & Bethge 2016) with the original VGG-19.

>>> import impasto
>>> result = impasto.transfer("photo.jpg", "starry_night.jpg", impasto.TransferConfig(size=256))
>>> result.image.save("out.png")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from impasto.config import ApplyConfig, ArbitraryConfig, TrainConfig, TransferConfig
from impasto.errors import ImpastoError, InputError, WeightsError
from impasto.events import CancelToken, Event, Frames, Iteration, TrainStep

if TYPE_CHECKING:
    from impasto.gatys.api import Result, TransferInterrupted, evaluate, transfer
    from impasto.gatys.regions import Region

__version__ = "0.1.0"

# Names whose modules import torch, imported when first used: ``import impasto.config`` (and
# ``--help``) need no torch, which takes seconds to import.
_LAZY = {
    "Result": "impasto.gatys.api",
    "TransferInterrupted": "impasto.gatys.api",
    "evaluate": "impasto.gatys.api",
    "transfer": "impasto.gatys.api",
    "Region": "impasto.gatys.regions",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")

__all__ = [
    "ApplyConfig",
    "ArbitraryConfig",
    "CancelToken",
    "Event",
    "Frames",
    "ImpastoError",
    "InputError",
    "Iteration",
    "Region",
    "Result",
    "TrainConfig",
    "TrainStep",
    "TransferConfig",
    "TransferInterrupted",
    "WeightsError",
    "__version__",
    "evaluate",
    "transfer",
]
