"""Colour preservation of Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural
Artistic Style Transfer" / "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017, §5).

Two ways to keep the photograph's colours: transfer the style in the luminance channel only and
take the colour channels from the photograph, or first match the style image's colour
statistics (mean and covariance) to the photograph's. All functions take RGB tensors in [0, 1]
of shape (1, 3, H, W) and return new tensors. They work in the RGB encoding they are given:
``impasto.jobs`` and ``fast.apply`` give luminance transfer the photo's own (its ICC profile's,
Display P3 say), so that colours outside sRGB keep their chroma.
"""

from __future__ import annotations

import torch
from torch import Tensor

# NTSC YIQ, the colour space the 2017 paper uses for luminance-only transfer.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)


def rgb_to_yiq(image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(image), image)


def luminance(image: Tensor) -> Tensor:
    """Y of YIQ, shape (1, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """Shift and scale the style's luminance to the content's mean and standard deviation (§5.2),
    so that the luminance histograms' first two moments agree before transfer."""
    scale = content_y.std() / style_y.std().clamp_min(1e-6)
    return (style_y - style_y.mean()) * scale + content_y.mean()


def combine_luminance(y: Tensor, colour_source: Tensor) -> Tensor:
    """An RGB image with luminance ``y`` and the I, Q channels of ``colour_source``."""
    iq = rgb_to_yiq(colour_source)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0.0, 1.0)


def match_histogram(style: Tensor, content: Tensor, eps: float = 1e-5) -> Tensor:
    """Colour histogram matching (§5.1): the affine map x' = A x + b of the style's RGB values
    with mean and covariance equal to the content's, A = Σ_c^{1/2} Σ_s^{-1/2} (the "image
    analogies" colour transfer the paper prefers over the Cholesky variant)."""
    s = style.flatten(2).squeeze(0).double()
    c = content.flatten(2).squeeze(0).double()
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=torch.float64)
    cov_s = torch.cov(s) + eps * eye
    cov_c = torch.cov(c) + eps * eye
    a = _sqrtm(cov_c) @ torch.linalg.inv(_sqrtm(cov_s))
    matched = a @ (s - mu_s) + mu_c
    return matched.reshape(style.shape).to(style.dtype).clamp(0.0, 1.0)


def _sqrtm(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
