"""Stylising a batch of images with a trained network, on any back-end."""

from __future__ import annotations

import torch
from torch import Tensor

from impasto import colour
from impasto.config import images_per_call
from impasto.errors import InputError
from impasto.fast.backends import Backend, torch_backend
from impasto.fast.model import FastModel, network_of
from impasto.fast.network import TransformNet


def stylize(
    model: FastModel | TransformNet,
    image: Tensor,
    *,
    preserve_color: bool = False,
    backend: Backend | None = None,
) -> Tensor:
    """Stylise RGB images in [0, 1], shape (B, 3, H, W) with sides of at least the
    architecture's ``min_side`` (8 px for Johnson et al.'s, 16 px for "lite").

    ``preserve_color`` keeps the photograph's colours: the output's luminance with the photo's
    YIQ chroma (Gatys et al. 2017's luminance-only transfer, applied after the network, as
    Johnson et al.'s networks were trained on colour images). ``backend`` runs the network
    (default: PyTorch float32 on the CPU).
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise InputError(f"image: expected shape (B, 3, H, W), got {tuple(image.shape)}")
    least = network_of(model).arch.min_side
    if min(image.shape[-2:]) < least:
        raise InputError(f"image: sides of at least {least} px are needed, got {image.shape[-1]}x{image.shape[-2]}")
    run = backend or torch_backend(model)
    per_call = images_per_call(*image.shape[-2:])
    output = torch.cat([run(chunk).float().cpu() for chunk in image.split(per_call)])
    if preserve_color:
        output = colour.combine_luminance(colour.luminance(output), image.float().cpu())
    return output
