"""Batched losses for training feed-forward networks (Johnson, Alahi & Fei-Fei, ECCV 2016, §3.1).

They differ from the paper objective of :mod:`impasto.losses.paper` in their normalisation,
documented per function, so that the layers of the original (unnormalised) VGG-19 weigh alike
whatever the style.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from impasto.losses.paper import LossTerms, Weights, content_layer_loss, total_variation, widen


def gram_batch(features: Tensor) -> Tensor:
    """Johnson et al.'s eq. 3, G = F F^T / (N M), per image of a (B, N, H, W) batch: (B, N, N),
    at least float32. Runs in the features' precision, as ``gram``."""
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)
    return widen(torch.bmm(f, f.transpose(1, 2))) / (n * h * w)


def relative_style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """||G - A||_F^2 / ||A||_F^2 averaged over the batch: Johnson et al.'s eq. 4 divided by the
    target's own energy. The raw term spans four orders of magnitude between relu1_1 and relu4_1
    of the original VGG-19 (and depends on the painting), so layer weights 1/L would otherwise
    leave only the deepest layer effective. ``target_gram`` is (N, N) or (B, N, N)."""
    g = gram_batch(features)
    target = widen(target_gram).expand_as(g)
    return ((g - target).pow(2).sum(dim=(1, 2)) / target.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)).mean()


def relative_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """||F - P||^2 / ||P||^2 over the batch: Johnson et al.'s eq. 2 (a squared error per feature)
    divided by the target's energy, so its weight does not depend on the layer's scale."""
    target = widen(target)
    return (widen(features) - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def batch_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Eq. 1 of Gatys et al., ½ Σ (F - P)², averaged over the images of a batch."""
    return content_layer_loss(features, target) / features.shape[0]


def batch_style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Eq. 4 of Gatys et al., E_l = Σ (G - A)² / (4 N² M²) = ¼ Σ (G/(NM) - A/(NM))², averaged
    over a batch. ``target_gram`` is normalised by its own N M (``gram_batch``), so a painting
    of another size than the crops asks for the same statistics; at equal sizes this is eq. 4."""
    g = gram_batch(features)
    return 0.25 * (g - widen(target_gram).expand_as(g)).pow(2).sum(dim=(1, 2)).mean()


def batch_total_variation(images: Tensor) -> Tensor:
    """``total_variation`` averaged over the images of a (B, 3, H, W) batch."""
    return total_variation(images) / images.shape[0]


def mean_total_variation(images: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels of (B, 3, H, W) images in [0, 1]: the
    squared total variation of ``total_variation`` per pixel pair, independent of size and batch."""
    dx = widen(images[..., :, 1:] - images[..., :, :-1])
    dy = widen(images[..., 1:, :] - images[..., :-1, :])
    return dx.pow(2).mean() + dy.pow(2).mean()


def lattice_pattern(images: Tensor, period: int) -> Tensor:
    """The part of (B, C, H, W) images that repeats every ``period`` pixels on both axes: for each
    of the period × period phases (row mod period, column mod period), the mean of the pixels of
    that phase minus the mean of all phases; (B, C, period, period), at least float32.

    Why: a network that downsamples by strides of 2 and upsamples by as many doublings treats the
    pixels of one phase alike and can leave a fixed pattern of its upsampling factor all over its
    output, the 4-px hatching of a two-stage network. A photo has next to none (its phase means
    agree to a few 10⁻⁴), so the squared pattern measures the hatching alone, without asking
    for a smoother image."""
    b, c, h, w = images.shape
    tiles = widen(images[..., : h - h % period, : w - w % period])
    phases = tiles.reshape(b, c, h // period, period, w // period, period).mean(dim=(2, 4))
    return phases - phases.mean(dim=(2, 3), keepdim=True)


def batch_lattice_energy(images: Tensor, period: int) -> Tensor:
    """Σ over the pixels of the squared ``lattice_pattern`` tiled over each image, averaged over
    the batch: in the units of ``batch_total_variation``."""
    b, _, h, w = images.shape
    return lattice_pattern(images, period).pow(2).sum() * (h // period) * (w // period) / b


def mean_lattice_energy(images: Tensor, period: int) -> Tensor:
    """The mean squared ``lattice_pattern`` per pixel value: in the units of ``mean_total_variation``."""
    return lattice_pattern(images, period).pow(2).mean()


def outlier_inflation(activations: Tensor, ceiling: float, clip: float = 3.0, passes: int = 3) -> Tensor:
    """Per image of a (B, C, H, W) batch, the mean over channels of how far the factor by which a
    channel's few outlying values inflate its variance over positions, var(x) / var(x clipped)
    - 1, exceeds ``ceiling``; (B,), at least float32. The clipping range, ``clip`` standard
    deviations either side of the mean, is narrowed ``passes`` times from the clipped values'
    own statistics, so that the outliers it is meant to find do not widen it.

    Why: an instance normalisation divides a channel by its spread over the image, so a network
    can turn down every position at once by piling large values on a few (the "droplet" of
    Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", §2): a dark or
    coloured oval at the same place whatever the photo or style. This measures that function,
    the outliers' share of the spread the normalisation divides by, rather than their shape: a
    droplet spread over more positions to stay clear of a shape measure such as the kurtosis
    (tried first) still inflates the variance, and only stops counting once it no longer sets
    the normalisation's scale. The clipping range is held fixed for the gradient, which then
    draws the outliers toward the others. A constant channel scores 0."""
    x = widen(activations)
    variance = x.var(dim=(2, 3), unbiased=False)
    with torch.no_grad():
        # The first pass's range comes from the variance the ratio needs anyway.
        mean, spread = x.mean(dim=(2, 3), keepdim=True), clip * variance.sqrt()[..., None, None]
        for _ in range(passes - 1):
            clipped = x.clamp(mean - spread, mean + spread)
            mean = clipped.mean(dim=(2, 3), keepdim=True)
            spread = clip * clipped.std(dim=(2, 3), unbiased=False, keepdim=True)
    kept = x.clamp(mean - spread, mean + spread).var(dim=(2, 3), unbiased=False)
    inflation = variance / kept.clamp_min(1e-12) - 1.0
    return (inflation - ceiling).clamp_min(0.0).mean(dim=1)


def perceptual_objective(
    features: Mapping[str, Tensor],
    outputs: Tensor,
    content: Mapping[str, Tensor],
    grams: Mapping[str, Tensor],
    weights: Weights,
    normalisation: str = "relative",
    period: int = 4,
    droplets: Tensor | None = None,
) -> LossTerms:
    """Johnson et al.'s training objective for a batch of network ``outputs``: feature
    reconstruction against the photos' ``content`` features, style reconstruction against one
    painting's ``grams`` (from ``gram_batch``), and a TV term, each weighted as ``weights`` says.
    ``normalisation`` "relative" divides each term by its target's energy; "gatys" uses the
    batch average of Gatys et al.'s own terms (the objective of ``objective`` above). A positive
    ``weights.grid`` adds a "grid" term, the outputs' lattice energy at the network's upsampling
    factor ``period``; a positive ``weights.droplet`` a "droplet" term, the batch mean of
    ``droplets``, each output's ``outlier_inflation`` inside the network that made it."""
    zero = outputs.new_zeros((), dtype=torch.float32)
    if normalisation == "gatys":
        content_loss, style_loss, tv_loss = batch_content_loss, batch_style_loss, batch_total_variation
        lattice = batch_lattice_energy
    else:
        content_loss, style_loss, tv_loss = relative_content_loss, relative_style_loss, mean_total_variation
        lattice = mean_lattice_energy
    c = sum((w * content_loss(features[n], content[n]) for n, w in weights.content_layers.items()), zero)
    s = sum((w * style_loss(features[n], grams[n]) for n, w in weights.style_layers.items()), zero)
    t = tv_loss(outputs) if weights.tv > 0 else zero
    terms = {"content": weights.content * c, "style": weights.style * s, "tv": weights.tv * t}
    if weights.grid > 0:
        terms["grid"] = weights.grid * lattice(outputs, period)
    if weights.droplet > 0:
        if droplets is None:
            raise ValueError("a droplet weight needs the droplets of the network's normalisations")
        terms["droplet"] = weights.droplet * droplets.mean()
    return LossTerms(terms)
