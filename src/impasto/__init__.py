"""impasto: neural style transfer (Gatys, Ecker & Bethge 2016) with the original VGG-19.

>>> import impasto
>>> result = impasto.transfer("photo.jpg", "starry_night.jpg", impasto.TransferConfig(size=256))
>>> result.image.save("out.png")
"""

from impasto.config import ApplyConfig, ArbitraryConfig, TrainConfig, TransferConfig
from impasto.errors import ImpastoError, InputError, WeightsError
from impasto.events import CancelToken, Event, Frames, Iteration, TrainStep
from impasto.gatys.api import Result, TransferInterrupted, evaluate, transfer
from impasto.gatys.regions import Region

__version__ = "0.1.0"

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
