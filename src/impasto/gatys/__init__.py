"""The Gatys et al. (2016) optimisation: ``problem`` (what a run holds fixed), ``schedule``
(coarse-to-fine scales), ``targets`` (content features and style Grams per scale), ``loop``
(one scale's optimisation), ``regions`` (spatial control: masks, guides, kept areas) and ``api``
(``transfer``, ``evaluate``)."""

from impasto.gatys.api import Result, TransferInterrupted, evaluate, transfer
from impasto.gatys.regions import Region

__all__ = ["Region", "Result", "TransferInterrupted", "evaluate", "transfer"]
