"""The objective of Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural
Networks" (CVPR 2016), as pure functions of feature maps.

Notation of the paper (§2): a layer l has N_l feature maps of M_l positions each; F^l is the
generated image's N_l x M_l feature matrix, P^l the content image's, G^l = F^l F^l^T the Gram
matrix and A^l the style image's Gram matrix. Nothing here modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


class LossTerms(NamedTuple):
    """The weighted terms of the objective and their sum (all scalars)."""

    content: Tensor
    style: Tensor
    tv: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {name: float(value.detach()) for name, value in self._asdict().items()}


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


def _wide(x: Tensor) -> Tensor:
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
    return _wide(f @ f.T)


def content_layer_loss(features: Tensor, target: Tensor) -> Tensor:
    """Eq. 1: L = 1/2 Σ (F - P)^2."""
    return 0.5 * (_wide(features) - _wide(target)).pow(2).sum()


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
    return _wide(dx).pow(2).sum() + _wide(dy).pow(2).sum()


def objective(features: Mapping[str, Tensor], image: Tensor, targets: Targets, weights: Weights) -> LossTerms:
    """Eq. 7 of the paper plus an optional TV term: α L_content + β L_style + λ_TV TV.

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
    c, s, t = weights.content * content, weights.style * style, weights.tv * tv
    return LossTerms(c, s, t, c + s + t)


# Batched losses for training feed-forward networks (Johnson, Alahi & Fei-Fei, ECCV 2016, §3.1).
# They differ from the paper objective above in their normalisation, documented per function,
# so that the layers of the original (unnormalised) VGG-19 weigh alike whatever the style.


def gram_batch(features: Tensor) -> Tensor:
    """Johnson et al.'s eq. 3, G = F F^T / (N M), per image of a (B, N, H, W) batch: (B, N, N),
    at least float32. Runs in the features' precision, as ``gram``."""
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)
    return _wide(torch.bmm(f, f.transpose(1, 2))) / (n * h * w)


def relative_style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """||G - A||_F^2 / ||A||_F^2 averaged over the batch: Johnson et al.'s eq. 4 divided by the
    target's own energy. The raw term spans four orders of magnitude between relu1_1 and relu4_1
    of the original VGG-19 (and depends on the painting), so layer weights 1/L would otherwise
    leave only the deepest layer effective. ``target_gram`` is (N, N) or (B, N, N)."""
    g = gram_batch(features)
    target = _wide(target_gram).expand_as(g)
    return ((g - target).pow(2).sum(dim=(1, 2)) / target.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)).mean()


def relative_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """||F - P||^2 / ||P||^2 over the batch: Johnson et al.'s eq. 2 (a squared error per feature)
    divided by the target's energy, so its weight does not depend on the layer's scale."""
    target = _wide(target)
    return (_wide(features) - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def batch_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Eq. 1 of Gatys et al., ½ Σ (F - P)², averaged over the images of a batch."""
    return content_layer_loss(features, target) / features.shape[0]


def batch_style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Eq. 4 of Gatys et al., E_l = Σ (G - A)² / (4 N² M²) = ¼ Σ (G/(NM) - A/(NM))², averaged
    over a batch. ``target_gram`` is normalised by its own N M (``gram_batch``), so a painting
    of another size than the crops asks for the same statistics; at equal sizes this is eq. 4."""
    g = gram_batch(features)
    return 0.25 * (g - _wide(target_gram).expand_as(g)).pow(2).sum(dim=(1, 2)).mean()


def batch_total_variation(images: Tensor) -> Tensor:
    """``total_variation`` averaged over the images of a (B, 3, H, W) batch."""
    return total_variation(images) / images.shape[0]


def mean_total_variation(images: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels of (B, 3, H, W) images in [0, 1]: the
    squared total variation of ``total_variation`` per pixel pair, independent of size and batch."""
    dx = _wide(images[..., :, 1:] - images[..., :, :-1])
    dy = _wide(images[..., 1:, :] - images[..., :-1, :])
    return dx.pow(2).mean() + dy.pow(2).mean()


def perceptual_objective(
    features: Mapping[str, Tensor],
    outputs: Tensor,
    content: Mapping[str, Tensor],
    grams: Mapping[str, Tensor],
    weights: Weights,
    normalisation: str = "relative",
) -> LossTerms:
    """Johnson et al.'s training objective for a batch of network ``outputs``: feature
    reconstruction against the photos' ``content`` features, style reconstruction against one
    painting's ``grams`` (from ``gram_batch``), and a TV term, each weighted as ``weights`` says.
    ``normalisation`` "relative" divides each term by its target's energy; "gatys" uses the
    batch average of Gatys et al.'s own terms (the objective of ``objective`` above)."""
    zero = outputs.new_zeros((), dtype=torch.float32)
    if normalisation == "gatys":
        content_loss, style_loss, tv_loss = batch_content_loss, batch_style_loss, batch_total_variation
    else:
        content_loss, style_loss, tv_loss = relative_content_loss, relative_style_loss, mean_total_variation
    c = sum((w * content_loss(features[n], content[n]) for n, w in weights.content_layers.items()), zero)
    s = sum((w * style_loss(features[n], grams[n]) for n, w in weights.style_layers.items()), zero)
    t = tv_loss(outputs) if weights.tv > 0 else zero
    c, s, t = weights.content * c, weights.style * s, weights.tv * t
    return LossTerms(c, s, t, c + s + t)
