"""The objective of Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural
Networks" (CVPR 2016), as pure functions of feature maps.

Notation of the paper (§2): a layer l has N_l feature maps of M_l positions each; F^l is the
generated image's N_l x M_l feature matrix, P^l the content image's, G^l = F^l F^l^T the Gram
matrix and A^l the style image's Gram matrix. Nothing here modifies its inputs.

Spatial control (Gatys, Ecker, Bethge, Hertzmann & Shechtman, CVPR 2017, §4.1) adds guided Gram
matrices, G_r = (F ⊙ T_r)(F ⊙ T_r)^T for a guidance channel T_r per region
(``guided_gram``, ``guided_style_layer_loss``, ``guided_style_loss``).
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
class GuidedStyle:
    """One region's style target (Gatys et al. 2017, §4.1): its guidance channel T_r at each
    style layer, shape (1, 1, h, w) at that layer's resolution with values in [0, 1], and its
    paintings' Gram matrices (scaled to the image's positions, as ``Targets.grams``) with their
    blend weights."""

    guides: Mapping[str, Tensor]
    grams: Sequence[Mapping[str, Tensor]]
    blend: Sequence[float]


@dataclass(frozen=True)
class Targets:
    """What the generated image is pulled toward: content features and style Gram matrices.

    ``grams`` holds one mapping per style image; ``blend`` their weights, summing to one.
    ``regions``, when given, replaces them by a guided style term per region (spatial control);
    ``grams`` and ``blend`` are then unused.
    """

    content: Mapping[str, Tensor]
    grams: Sequence[Mapping[str, Tensor]]
    blend: Sequence[float]
    regions: Sequence[GuidedStyle] = ()


@dataclass(frozen=True)
class Weights:
    """α, β, the total-variation weight and the per-layer weights w_l; ``grid`` and ``droplet``,
    the weights of a feed-forward network's lattice term (``losses.perceptual.lattice_pattern``)
    and droplet term (``losses.perceptual.outlier_inflation``), training only."""

    content: float
    style: float
    tv: float
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    grid: float = 0.0
    droplet: float = 0.0


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


def guided_gram(features: Tensor, guide: Tensor) -> Tensor:
    """The guided Gram matrix of Gatys et al. (2017, eq. 8), G_r = (F ⊙ T_r)(F ⊙ T_r)^T, for
    features (1, N, H, W) and a guide (1, 1, H, W) at the features' resolution: a float32 (N, N)
    matrix, each position weighted by T_r². Unnormalised, as ``gram``."""
    return gram(features * guide.to(features.dtype))


def guide_mass(guide: Tensor) -> Tensor:
    """M_r = Σ T_r², the positions a guided Gram matrix sums over (M where T_r is all ones)."""
    return widen(guide).pow(2).sum()


def guided_style_layer_loss(guided: Tensor, mass: Tensor | float, target_gram: Tensor, positions: int,
                            channels: int) -> Tensor:
    """A region's share of eq. 4: Σ (G_r − (M_r/M) A)² / (4 N² M_r M).

    ``guided`` is G_r (``guided_gram``), ``mass`` M_r = Σ T_r², ``target_gram`` the painting's A
    scaled to the image's M positions (``Targets.grams``), so that A / M is the painting's Gram
    matrix per position. Equal to ¼ (M_r/M) Σ (G_r/M_r − A/M)² / N²: the region's statistics per
    position against the painting's, weighted by the region's share of the image, so that a
    region pulls each of its positions toward its painting as hard as a plain transfer does
    (the paper leaves the normalisation of G_r open). Where T_r is all ones (M_r = M) this is
    eq. 4 exactly. An empty region (M_r = 0) costs nothing.
    """
    mass = torch.as_tensor(mass, dtype=torch.float32, device=guided.device)
    if float(mass) <= 0:
        return guided.new_zeros(())
    diff = guided - target_gram * (mass / positions)
    return diff.pow(2).sum() / (4.0 * channels * channels * mass * positions)


def guided_style_loss(features: Mapping[str, Tensor], regions: Sequence[GuidedStyle],
                      layer_weights: Mapping[str, float]) -> Tensor:
    """The spatially controlled style term: Σ_r Σ_s b_s Σ_l w_l E_l(r, s) (``guided_style_layer_loss``)."""
    zero = next(iter(features.values())).new_zeros((), dtype=torch.float32)
    total = zero
    for region in regions:
        for name, w in layer_weights.items():
            f, guide = features[name], region.guides[name]
            g, mass = guided_gram(f, guide), guide_mass(guide)
            m, n = f.shape[-2] * f.shape[-1], f.shape[-3]
            total = total + sum((b * w * guided_style_layer_loss(g, mass, grams[name], m, n)
                                 for grams, b in zip(region.grams, region.blend, strict=True)), zero)
    return total


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

    L_style = Σ_s b_s Σ_l w_l E_l(s) blends several style images by weights b_s; with
    ``targets.regions`` it is the guided term of Gatys et al. (2017, §4.1), ``guided_style_loss``.
    """
    zero = image.new_zeros((), dtype=torch.float32)
    content = sum(
        (w * content_layer_loss(features[name], targets.content[name]) for name, w in weights.content_layers.items()),
        zero,
    )
    if targets.regions:
        style = guided_style_loss(features, targets.regions, weights.style_layers)
    else:
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
