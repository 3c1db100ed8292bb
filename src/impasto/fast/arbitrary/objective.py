"""The objective the any-painting network is trained on, and its fixed form for one photo and one
painting, which ``impasto.evaluate`` scores and ``impasto transfer`` minimises.

The "relative" objective divides each term by its target's energy (``losses.perceptual``):
content Σ(F − P)² / ΣP² on the photo's features, style Σ(G − A)² / ΣA² on the painting's Gram
matrices per position (``gram_batch``), TV as a mean over pixel pairs. No fixed α and β of the
paper's objective express it for every pair, but for one photo at one size and one painting the
energies are numbers, and each term is the paper's term times a constant:

* content: Σ(F − P)² / ΣP² = (2 / ΣP²) · ½Σ(F − P)², eq. 1 of Gatys et al.;
* style: with G and A per position (divided by N M), Σ(G − A)² / ΣA² = (4 / ΣA²) · E_l, eq. 4
  with the painting's Gram matrix brought to the image's positions, as ``gatys.targets`` does;
* TV: the mean of the squared differences is their sum divided by about 3 H W (exactly so for
  one axis less a row or a column, a difference under 1/W of a term that is itself under 1 % of
  the total for the shipped network).

The training holds the painting at its shorter side ``style_crop_size`` (and crops a square of that
side); the network is applied with the painting at its long side ``PAINTING_SIDE`` unless the user
gives another (``model.bind``). The predictor reads the painting's statistics at that scale and the
transformer paints its strokes at it: the objective a network is listed and measured with is its
training's, the painting held as it is applied (``recorded_objective``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor

from impasto import images
from impasto.config import FAST_STYLE_LAYERS, JOHNSON_CONTENT_LAYERS, PAINTING_SIDE, ArbitraryConfig
from impasto.fast.multistyle.model import Objective
from impasto.losses import Weights, gram_batch
from impasto.losses.paper import widen
from impasto.vgg import VGG19, deepest, load_weights


@dataclass(frozen=True)
class RelativeObjective:
    """α Σ w_l content_l / ΣP_l² + β Σ w_l style_l / ΣA_l² + λ mean TV (the module docstring), the
    painting's ``style_side`` ("shorter" as trained, "longer" as applied) at ``style_size``."""

    content_weight: float
    style_weight: float
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    tv_weight: float
    style_size: int
    style_side: Literal["shorter", "longer"] = "shorter"

    def as_dict(self) -> dict[str, Any]:
        return {"normalisation": "relative", "content_weight": self.content_weight,
                "style_weight": self.style_weight, "content_layers": dict(self.content_layers),
                "style_layers": dict(self.style_layers), "tv_weight": self.tv_weight,
                "style_size": self.style_size, "style_side": self.style_side}

    def training_weights(self, grid: float = 0.0, droplet: float = 0.0) -> Weights:
        """The weights ``perceptual_objective(..., "relative")`` trains on, with a lattice term of
        weight ``grid`` and a droplet term of weight ``droplet`` (training aids, not part of the
        objective)."""
        return Weights(self.content_weight, self.style_weight, self.tv_weight, dict(self.content_layers),
                       dict(self.style_layers), grid, droplet)

    def style_long_side(self, painting: Tensor) -> int:
        """The painting's longer side as this objective holds it."""
        if self.style_side == "longer":
            return self.style_size
        height, width = painting.shape[-2:]
        return round(self.style_size * max(height, width) / min(height, width))

    def vgg(self) -> VGG19:
        """VGG-19 as deep as this objective reads, for ``for_pair`` to share across pairs."""
        return VGG19(load_weights(), deepest((*self.content_layers, *self.style_layers))).eval()

    def for_pair(self, photo: Tensor, painting: Tensor, vgg: VGG19 | None = None) -> Objective:
        """The paper's objective with fixed weights equal to this one for ``photo`` (RGB in [0, 1],
        at the size it is scored at) and ``painting``: ``for_pair(...).transfer_config(size)``.
        ``vgg``: ``self.vgg()`` built once for many pairs (default: built here)."""
        style_size = self.style_long_side(painting)
        held = images.resize_long_side(painting, style_size)
        vgg = vgg or self.vgg()
        with torch.no_grad():
            content = vgg(photo.float(), self.content_layers)
            style = vgg(held.float(), self.style_layers)
        content_layers = {n: w * 2.0 / float(widen(content[n]).pow(2).sum()) for n, w in self.content_layers.items()}
        style_layers = {n: w * 4.0 / float(gram_batch(style[n]).pow(2).sum()) for n, w in self.style_layers.items()}
        height, width = photo.shape[-2:]
        return Objective(self.content_weight, self.style_weight, content_layers, style_layers,
                         self.tv_weight / (3 * height * width), style_size)


def objective_of(config: ArbitraryConfig) -> RelativeObjective:
    """The objective a training of ``config`` minimises: Johnson et al.'s content layers and the
    fast networks' style layers, each set weighted equally."""
    return RelativeObjective(
        config.content_weight, config.style_weight,
        dict.fromkeys(JOHNSON_CONTENT_LAYERS, 1.0 / len(JOHNSON_CONTENT_LAYERS)),
        dict.fromkeys(FAST_STYLE_LAYERS, 1.0 / len(FAST_STYLE_LAYERS)),
        config.tv_weight, config.style_crop_size)


def recorded_objective(settings: Mapping[str, Any], style_size: int = PAINTING_SIDE) -> RelativeObjective:
    """The objective a network trained with these recorded settings is applied for (settings it
    does not record take ``ArbitraryConfig``'s defaults): its training's, with the painting at
    long side ``style_size`` as ``model.bind`` reads it."""
    default = ArbitraryConfig()
    names = ("content_weight", "style_weight", "tv_weight", "style_crop_size")
    recorded = {n: type(getattr(default, n))(settings[n]) for n in names if n in settings}
    return replace(objective_of(replace(default, **recorded)), style_size=style_size, style_side="longer")
