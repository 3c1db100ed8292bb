"""Spatial control: Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in
Neural Style Transfer" (CVPR 2017, §4.1).

A region is a mask over the photo (white = inside, soft edges allowed) and what it becomes: a
painting, or the photo itself (``keep``). Each painted region r gets a guidance channel T_r,
propagated to every style layer (:func:`propagate`), and a guided Gram matrix
G_r = (F ⊙ T_r)(F ⊙ T_r)ᵀ compared with its painting's (``losses.guided_style_layer_loss``).
What no mask covers, 1 − Σ masks, is the *remainder*: it gets the command's own paintings
(blended as usual) or, when there are none, stays the photo.

Propagation of a guide to a layer (``TransferConfig.region_guides``):

* ``inside`` (the paper's): a neuron's guide is the share of its receptive field inside the
  region, computed as the paper suggests by following the network: a normalised all-ones 3×3
  filter at every convolution and a 2×2 pooling at every pooling layer. Departure: the pooling
  is an average whatever the network's pooling, since a share is an average (max pooling a
  share would dilate the region). At the image's border only the positions inside the image
  count, as the network's zero padding adds no region there.
* ``resize``: the simpler alternative, the mask averaged over each layer position's footprint
  (area downsampling); it ignores that a deep neuron sees far beyond its footprint.
* ``erode``: for hard boundaries: the minimum over the same 3×3 and 2×2 windows, so a neuron
  counts only as far as its whole receptive field lies in the region.

Kept regions (Departure: the paper only paints regions). A kept region has no style term; its
pixels are pinned to the photo by a change of variable, image = K ⊙ photo + (1 − K) ⊙ x, where K
is the kept mask and x the optimised variable. Where K = 1 the image *is* the photo, exactly and
at every scale; a soft edge blends photo and painting in proportion. A content term weighted up
inside the mask was the alternative: it holds relu4_2 features at 1/8 of the resolution, so
colours and fine detail near a painted region would still drift, and it changes the α/β balance
as far as relu4_2's receptive field reaches.

Overlapping masks share: where masks sum to more than one they are divided by their sum.
Guides are computed on the whole image at each scale and cut per tile, so a tiled evaluation
sees exactly the guides an untiled one does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.errors import InputError
from impasto.vgg import LAYERS, deepest

#: Masks whose aspect ratio differs from the photo's by more than this are refused.
ASPECT_TOLERANCE = 0.01
GUIDE_MODES = ("inside", "resize", "erode")


@dataclass(frozen=True)
class Region:
    """A region of the photo and what it becomes. ``mask``: a greyscale image (path, PIL image,
    array or tensor; white = the region, grey = partly) of the photo's aspect ratio; ``style``: a
    painting, or None to keep the photo there."""

    mask: Any
    style: Any = None


@dataclass(frozen=True)
class LoadedRegion:
    """A region as a transfer holds it: the mask (1, 1, H, W) in [0, 1] at the photo's size, and
    its painting (RGB in [0, 1], colour-matched where asked) or None for the photo."""

    mask: Tensor
    style: Tensor | None


@dataclass(frozen=True)
class Painted:
    """A painted area at the photo's size: its mask, its paintings and their blend."""

    mask: Tensor
    styles: tuple[Tensor, ...]
    blend: tuple[float, ...]


@dataclass(frozen=True)
class Layout:
    """The photo divided: the painted areas (the remainder included when there are paintings
    for it) and the kept mask K, or None when nothing is kept."""

    painted: tuple[Painted, ...]
    keep: Tensor | None


def as_mask(image: Tensor) -> Tensor:
    """An RGB image in [0, 1] (1, 3, H, W) as a mask (1, 1, H, W): the mean of its channels."""
    return image.mean(dim=1, keepdim=True).clamp(0, 1)


def check_mask(mask: Tensor, label: str, photo: tuple[int, int]) -> Tensor:
    """``mask`` (1, 1, h, w) resized to the photo's (height, width); a mask of another aspect
    ratio (beyond 1 %) is a one-line InputError naming ``label``."""
    h, w = mask.shape[-2:]
    height, width = photo
    if abs((w / h) / (width / height) - 1) > ASPECT_TOLERANCE:
        problem = f"mask is {w}x{h}, the photo is {width}x{height} (the aspect ratios must match)"
        raise InputError(f"{label}: {problem}", field=label, problem=problem)
    return resize(mask, photo)


def resize(mask: Tensor, shape: tuple[int, int]) -> Tensor:
    """A mask resized to ``shape`` (bilinear, antialiased: soft edges stay soft), in [0, 1]."""
    if tuple(mask.shape[-2:]) == tuple(shape):
        return mask
    return F.interpolate(mask, size=shape, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def load(regions: Sequence[Region], photo: tuple[int, int], load_image: Callable[[Any], Tensor],
         match: Callable[[Tensor], Tensor]) -> tuple[LoadedRegion, ...]:
    """Read every region's mask and painting with ``load_image`` (a path's errors name it),
    check the masks against the photo's (height, width), and colour-match the paintings with
    ``match``."""
    loaded = []
    for k, region in enumerate(regions, 1):
        label = str(region.mask) if not isinstance(region.mask, (Tensor, type(None))) else f"region {k} mask"
        if region.mask is None:
            raise InputError(f"region {k}: a mask is needed")
        mask = region.mask if isinstance(region.mask, Tensor) and region.mask.shape[1] == 1 else None
        if mask is None:
            mask = as_mask(load_image(region.mask))
        mask = check_mask(mask.detach().float().cpu().clamp(0, 1), label, photo)
        style = None if region.style is None else match(load_image(region.style))
        loaded.append(LoadedRegion(mask, style))
    return tuple(loaded)


def layout(regions: Sequence[LoadedRegion], styles: Sequence[Tensor], blend: tuple[float, ...]) -> Layout:
    """The painted areas and the kept mask of ``regions``, the remainder going to ``styles``
    (blended by ``blend``) or, without styles, kept."""
    masks = [r.mask for r in regions]
    total = torch.stack(masks).sum(0)
    share = torch.where(total > 1, total, torch.ones_like(total))
    masks = [m / share for m in masks]
    rest = (1 - torch.stack(masks).sum(0)).clamp(0, 1)
    painted = [Painted(m, (r.style,), (1.0,)) for m, r in zip(masks, regions, strict=True) if r.style is not None]
    kept = [m for m, r in zip(masks, regions, strict=True) if r.style is None]
    if styles:
        painted.append(Painted(rest, tuple(styles), blend))
    else:
        kept.append(rest)
    keep = torch.stack(kept).sum(0).clamp(0, 1) if kept else None
    return Layout(tuple(painted), keep)


def _box(t: Tensor) -> Tensor:
    return F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)


def _min3(t: Tensor) -> Tensor:
    return -F.max_pool2d(-t, 3, stride=1, padding=1)


def propagate(mask: Tensor, layers: Sequence[str], mode: str = "inside") -> dict[str, Tensor]:
    """The guide of ``mask`` (1, 1, H, W) at the image's size at each of ``layers``, each of the
    layer's resolution (⌊H / 2^pools⌋ × ⌊W / 2^pools⌋), by ``mode`` (see the module's docstring)."""
    if mode not in GUIDE_MODES:
        raise InputError(f"--region-guides: {mode!r} is not one of {', '.join(GUIDE_MODES)}")
    wanted, out = set(layers), {}
    t = mask.float()
    pools = 0
    for name in LAYERS[: LAYERS.index(deepest(layers)) + 1]:
        if name.startswith("pool"):
            pools += 1
            if mode != "resize":
                t = F.avg_pool2d(t, 2) if mode == "inside" else -F.max_pool2d(-t, 2)
        elif name.startswith("conv") and mode != "resize":
            t = _box(t) if mode == "inside" else _min3(t)
        if name in wanted:
            out[name] = F.avg_pool2d(mask.float(), 2**pools) if mode == "resize" and pools else t
    return out


@dataclass(frozen=True)
class Pin:
    """The kept mask K (1, 1, h, w) and the photo (in the optimised colour space) at one scale:
    the image is K ⊙ photo + (1 − K) ⊙ x for the optimised variable x."""

    keep: Tensor
    photo: Tensor

    def compose(self, x: Tensor) -> Tensor:
        """The image of the variable ``x`` (differentiable in ``x``)."""
        return x + self.keep * (self.photo - x)

    def pull_back(self, grad: Tensor) -> Tensor:
        """The gradient with respect to x of a gradient with respect to the image."""
        return grad * (1 - self.keep)


def pin(keep: Tensor | None, photo: Tensor) -> Pin | None:
    """The pin of a scale from the kept mask at the photo's size (None: nothing kept) and the
    photo at the scale, in the optimised colour space and on its device."""
    if keep is None:
        return None
    return Pin(resize(keep, tuple(photo.shape[-2:])).to(photo.device), photo)
