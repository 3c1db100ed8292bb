"""The objective of Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural
Networks" (CVPR 2016), as pure functions of feature maps.

Notation of the paper (§2): a layer l has N_l feature maps of M_l positions each; F^l is the
generated image's N_l x M_l feature matrix, P^l the content image's, G^l = F^l F^l^T the Gram
matrix and A^l the style image's Gram matrix. Nothing here modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LossTerms:
    """The weighted terms of an objective by name (scalars) and their sum. ``content``, ``style``
    and ``tv`` are always present (zero when unused); extra terms add their own names."""

    terms: Mapping[str, Tensor]

    @property
    def total(self) -> Tensor:
        return sum(self.terms.values(), torch.zeros((), device=self.content.device))

    @property
    def content(self) -> Tensor:
        return self.terms["content"]

    @property
    def style(self) -> Tensor:
        return self.terms["style"]

    @property
    def tv(self) -> Tensor:
        return self.terms["tv"]

    def as_floats(self) -> dict[str, float]:
        values = {name: float(value.detach()) for name, value in self.terms.items()}
        return {**values, "total": float(self.total.detach())}


@dataclass(frozen=True)
class Term:
    """A named extra term of the objective, ``weight × loss(features, image)``: how a temporal
    term (Ruder et al. 2016) or a mask plugs into the optimisation. ``loss`` receives the
    features of ``layers`` and the image at the current scale (it resizes what it compares with)
    and must not modify them."""

    name: str
    weight: float
    loss: Callable[[Mapping[str, Tensor], Tensor], Tensor]
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Targets:
    """What the generated image is pulled toward: content features and style Gram matrices.

    ``grams`` holds one mapping per style image; ``blend`` their weights, summing to one.
    """

    content: Mapping[str, Tensor]
    grams: Sequence[Mapping[str, Tensor]]
    blend: Sequence[float]


@dataclass(frozen=True)
class Weights:
    """α, β, the total-variation weight and the per-layer weights w_l."""

    content: float
    style: float
    tv: float
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]


def widen(x: Tensor) -> Tensor:
    """At least float32: bfloat16 features summed over thousands of positions lose too much."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def gram(features: Tensor) -> Tensor:
    """G = F F^T for features of shape (1, N, H, W) or (N, H, W): a float32 (N, N) matrix.

    Unnormalised, as in the paper; the 1 / (4 N^2 M^2) of eq. 4 is applied in style_layer_loss.
    The product runs in the features' own precision (float32 accumulation; a bfloat16 result is
    widened afterwards), straight on their memory layout: converting channels-last bfloat16
    features to float32 first costs several times the product itself.
    """
    f = features.reshape(features.shape[-3], -1)
    return widen(f @ f.T)


def content_layer_loss(features: Tensor, target: Tensor) -> Tensor:
    """Eq. 1: L = 1/2 Σ (F - P)^2."""
    return 0.5 * (widen(features) - widen(target)).pow(2).sum()


def style_layer_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Eq. 4: E_l = Σ (G - A)^2 / (4 N_l^2 M_l^2)."""
    n = features.shape[-3]
    m = features.shape[-2] * features.shape[-1]
    return (gram(features) - target_gram).pow(2).sum() / (4.0 * n * n * m * m)


def total_variation(image: Tensor) -> Tensor:
    """Squared total variation Σ (x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2 of an RGB image
    in [0, 1]. Not in the 2016 paper (an addition of Johnson et al. 2016 and neural-style)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return widen(dx).pow(2).sum() + widen(dy).pow(2).sum()


def objective(
    features: Mapping[str, Tensor], image: Tensor, targets: Targets, weights: Weights, extra: Sequence[Term] = ()
) -> LossTerms:
    """Eq. 7 of the paper plus an optional TV term and any ``extra`` terms:
    α L_content + β L_style + λ_TV TV + Σ weight × term.

    L_style = Σ_s b_s Σ_l w_l E_l(s) blends several style images by weights b_s.
    """
    zero = image.new_zeros((), dtype=torch.float32)
    content = sum(
        (w * content_layer_loss(features[name], targets.content[name]) for name, w in weights.content_layers.items()),
        zero,
    )
    style = sum(
        (
            b * w * style_layer_loss(features[name], grams[name])
            for grams, b in zip(targets.grams, targets.blend, strict=True)
            for name, w in weights.style_layers.items()
        ),
        zero,
    )
    tv = total_variation(image) if weights.tv > 0 else zero
    terms = {"content": weights.content * content, "style": weights.style * style, "tv": weights.tv * tv}
    for term in extra:
        if term.name in terms:
            raise ValueError(f"extra loss term {term.name!r}: the name is taken")
        terms[term.name] = term.weight * term.loss(features, image)
    return LossTerms(terms)
