"""Exact tiled evaluation of Gatys et al.'s objective and its gradient, in bounded memory.

The paper's losses decompose over positions: the content loss (eq. 1) is a sum over positions,
and a Gram matrix is one too, G = F Fᵀ = Σ_t F_t F_tᵀ over any partition of the positions into
tiles. So an image too large for one forward and backward pass is evaluated in two passes:

1. every tile runs forward without autograd and adds its interior positions' F_t F_tᵀ to each
   style layer's Gram G (and the style loss is then known exactly);
2. every tile runs forward and backward again, with a surrogate whose gradient is the global
   one: ½ ⟨C_l, F_t F_tᵀ⟩ with C_l = Σ_s b_s w_l (G_l − A_l^s) / (N_l² M_l²) held constant
   (d E / d F = C F, eq. 6), plus the content loss on the tile's interior positions.

A tile carries a halo wide enough that its interior features do not see the tile's edge
(:func:`halo_for`: the zero padding at a cut spreads one position per convolution), and tiles
start on the pooling grid (multiples of 2^poolings px), so the interior features equal the
whole image's bit for bit in exact arithmetic; summing the tiles' input gradients gives the whole
image's gradient. There are no seams by construction: it is the same objective, evaluated in
pieces. Only the evaluation differs from the paper; nothing is blended.

Spatial control (``gatys.regions``) tiles the same way: a guided Gram matrix is a sum over
positions too, G_r = Σ_t T_t² F_t F_tᵀ, with each tile's guides cut from the whole image's.

Departure: an extra loss term (``Term``) sees whole feature maps, so tiling refuses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.gatys.problem import Problem
from impasto.losses import (
    LossTerms,
    Targets,
    content_layer_loss,
    gram,
    guide_mass,
    guided_gram,
    guided_style_layer_loss,
    total_variation,
)
from impasto.vgg import LAYERS, deepest

TileCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Tiling:
    """Interior tiles of ``tile`` px (a multiple of ``grid``) with ``halo`` px of context."""

    tile: int
    halo: int
    grid: int


@dataclass(frozen=True)
class Tile:
    """One tile: its interior rows/columns [y0, y1) × [x0, x1) and the region read with its halo."""

    y0: int
    y1: int
    x0: int
    x1: int
    top: int
    bottom: int
    left: int
    right: int

    @property
    def region(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def interior(self, features: Tensor, factor: int) -> Tensor:
        """The interior positions of ``features`` computed on this tile's region, at a layer
        ``factor`` times coarser than the image."""
        return features[
            ..., (self.y0 - self.top) // factor : (self.y1 - self.top) // factor,
            (self.x0 - self.left) // factor : (self.x1 - self.left) // factor,
        ]

    def global_slice(self, features: Tensor, factor: int) -> Tensor:
        """The same positions in a whole-image feature map."""
        return features[..., self.y0 // factor : self.y1 // factor, self.x0 // factor : self.x1 // factor]


def factor(layer: str) -> int:
    """How many image px one position of ``layer`` spans: 2 to the number of poolings before it."""
    return 2 ** sum(name.startswith("pool") for name in LAYERS[: LAYERS.index(layer)])


def halo_for(layers: tuple[str, ...]) -> tuple[int, int]:
    """(halo, grid) in px for features up to the deepest of ``layers``.

    Zero padding at a tile's cut makes its outer ring of positions wrong; every 3×3 convolution
    spreads that by one position, and a 2×2 pooling on the grid halves it (rounding up). The
    halo is that width in image px, rounded up to the pooling grid so that tiles start on it.
    For relu5_1: 80 px.
    """
    last = deepest(layers)
    reach, scale = 0, 1
    for name in LAYERS[: LAYERS.index(last) + 1]:
        if name.startswith("conv"):
            reach += 1
        elif name.startswith("pool"):
            reach, scale = math.ceil(reach / 2), scale * 2
    grid = factor(last) if not last.startswith("pool") else scale
    return math.ceil(reach * scale / grid) * grid, grid


def tiling_for(layers: tuple[str, ...], tile: int) -> Tiling:
    """Tiles of about ``tile`` px (rounded down to the pooling grid) for ``layers``."""
    halo, grid = halo_for(layers)
    return Tiling(max(grid, tile // grid * grid), halo, grid)


def _cuts(length: int, tiling: Tiling) -> list[tuple[int, int]]:
    """Interior spans covering [0, length): as many as tiles of ``tiling.tile`` need, of equal
    size on the grid (the last takes the rest), so no sliver of a tile is left at the end."""
    count = math.ceil(length / tiling.tile)
    step = math.ceil(length / count / tiling.grid) * tiling.grid
    starts = list(range(0, length, step))
    return [(a, min(a + step, length)) for a in starts]


def tiles(height: int, width: int, tiling: Tiling) -> list[Tile]:
    """The tiles of an image, row by row."""
    h = tiling.halo
    return [
        Tile(y0, y1, x0, x1, max(0, y0 - h), min(height, y1 + h), max(0, x0 - h), min(width, x1 + h))
        for y0, y1 in _cuts(height, tiling)
        for x0, x1 in _cuts(width, tiling)
    ]


def _features(problem: Problem, x: Tensor, tile: Tile, layers: tuple[str, ...]) -> dict[str, Tensor]:
    rows, cols = tile.region
    image = problem.to_network(x[..., rows, cols])
    return problem.net(problem.runtime.prepare(image), layers)


def feature_maps(problem: Problem, x: Tensor, layers: tuple[str, ...], tiling: Tiling) -> dict[str, Tensor]:
    """The whole image's features at ``layers`` (no autograd), computed tile by tile: what one
    forward pass would give, at the memory of one tile (plus the maps themselves)."""
    height, width = x.shape[-2:]
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for tile in tiles(height, width, tiling):
            for name, f in _features(problem, x, tile, layers).items():
                d = factor(name)
                if name not in out:
                    out[name] = f.new_empty((1, f.shape[1], height // d, width // d))
                tile.global_slice(out[name], d).copy_(tile.interior(f, d))
    return out


def grams(problem: Problem, x: Tensor, layers: tuple[str, ...], tiling: Tiling) -> dict[str, Tensor]:
    """Each layer's Gram matrix G = Σ_t F_t F_tᵀ over the tiles' interior positions (pass 1)."""
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for tile in tiles(*x.shape[-2:], tiling):
            for name, f in _features(problem, x, tile, layers).items():
                g = gram(tile.interior(f, factor(name)))
                out[name] = out[name] + g if name in out else g
    return out


def guided_grams(problem: Problem, x: Tensor, layers: tuple[str, ...], tiling: Tiling,
                 guides: Sequence[Mapping[str, Tensor]]) -> list[dict[str, Tensor]]:
    """Each region's guided Gram matrices G_r = Σ_t (F_t ⊙ T_r)(F_t ⊙ T_r)ᵀ over the tiles'
    interior positions (pass 1), ``guides`` holding each region's whole-image guides."""
    out: list[dict[str, Tensor]] = [{} for _ in guides]
    with torch.no_grad():
        for tile in tiles(*x.shape[-2:], tiling):
            for name, f in _features(problem, x, tile, layers).items():
                d = factor(name)
                for region, guide in zip(out, guides, strict=True):
                    g = guided_gram(tile.interior(f, d), tile.global_slice(guide[name], d))
                    region[name] = region[name] + g if name in region else g
    return out


@dataclass(frozen=True)
class _Style:
    """The style loss of the whole image, and each layer's C_l for the surrogate of pass 2 (with
    regions: each region's, in ``targets.regions``' order)."""

    value: Tensor
    slopes: Mapping[str, Tensor]
    region_slopes: Sequence[Mapping[str, Tensor]] = ()


def _style(problem: Problem, x: Tensor, targets: Targets, tiling: Tiling) -> _Style:
    if targets.regions:
        return _guided_style(problem, x, targets, tiling)
    weights = problem.weights
    g = grams(problem, x, tuple(weights.style_layers), tiling)
    height, width = x.shape[-2:]
    value = torch.zeros((), dtype=torch.float32, device=x.device)
    slopes = {}
    for name, w in weights.style_layers.items():
        n, d = g[name].shape[0], factor(name)
        m = (height // d) * (width // d)
        diffs = [(b, g[name] - style[name]) for style, b in zip(targets.grams, targets.blend, strict=True)]
        # Eq. 4 and its derivative, eq. 6: d E_l / d F = (G − A) F / (N² M²), blended.
        value = value + sum(b * w * diff.pow(2).sum() / (4.0 * n * n * m * m) for b, diff in diffs)
        slopes[name] = sum(b * w * diff for b, diff in diffs) / (n * n * m * m)
    return _Style(value, slopes)


def _guided_style(problem: Problem, x: Tensor, targets: Targets, tiling: Tiling) -> _Style:
    """The guided style term (``losses.guided_style_layer_loss``) and its slopes: with
    E = Σ (G_r − (M_r/M) A)² / (4 N² M_r M) and G_r = Σ_t T_t² F_t F_tᵀ,
    d E / d F_t = C_r T_t² F_t with C_r = (G_r − (M_r/M) A) / (N² M_r M), which the surrogate
    ½ ⟨C_r, (F ⊙ T)(F ⊙ T)ᵀ⟩ of each tile reproduces."""
    weights = problem.weights
    height, width = x.shape[-2:]
    guided = guided_grams(problem, x, tuple(weights.style_layers), tiling, [r.guides for r in targets.regions])
    value = torch.zeros((), dtype=torch.float32, device=x.device)
    region_slopes = []
    for region, g in zip(targets.regions, guided, strict=True):
        slopes = {}
        for name, w in weights.style_layers.items():
            n, d = g[name].shape[0], factor(name)
            m = (height // d) * (width // d)
            mass = guide_mass(region.guides[name])
            value = value + sum(b * w * guided_style_layer_loss(g[name], mass, a[name], m, n)
                                for a, b in zip(region.grams, region.blend, strict=True))
            if float(mass) > 0:
                slopes[name] = sum(b * w * (g[name] - a[name] * (mass / m))
                                   for a, b in zip(region.grams, region.blend, strict=True)) / (n * n * mass * m)
        region_slopes.append(slopes)
    return _Style(value, {}, region_slopes)


def _tile_loss(problem: Problem, features: Mapping[str, Tensor], tile: Tile, targets: Targets,
               style: _Style) -> tuple[Tensor, Tensor]:
    """(α × this tile's content loss, the tile's objective whose gradient is its share of the
    whole image's) from the tile's features."""
    weights = problem.weights
    content = sum(
        (w * content_layer_loss(tile.interior(features[name], factor(name)),
                                tile.global_slice(targets.content[name], factor(name)))
         for name, w in weights.content_layers.items()),
        torch.zeros((), dtype=torch.float32, device=_device(features)),
    )
    surrogate = sum(
        (0.5 * (slope * gram(tile.interior(features[name], factor(name)))).sum()
         for name, slope in style.slopes.items()),
        torch.zeros((), dtype=torch.float32, device=_device(features)),
    )
    for region, slopes in zip(targets.regions, style.region_slopes, strict=True):
        surrogate = surrogate + sum(
            (0.5 * (slope * guided_gram(tile.interior(features[name], factor(name)),
                                        tile.global_slice(region.guides[name], factor(name)))).sum()
             for name, slope in slopes.items()),
            torch.zeros((), dtype=torch.float32, device=_device(features)),
        )
    content = weights.content * content
    return content, content + weights.style * surrogate


def _device(features: Mapping[str, Tensor]) -> torch.device:
    return next(iter(features.values())).device


def evaluate(
    problem: Problem, x: Tensor, targets: Targets, tiling: Tiling, on_tile: TileCallback | None = None
) -> tuple[LossTerms, Tensor]:
    """The paper's objective of the optimised variable ``x`` (the whole image) and its gradient
    with respect to ``x``, tile by tile; ``on_tile(k, n)`` after each tile of pass 2."""
    if problem.extra:
        raise ValueError("tiled evaluation: extra loss terms see whole feature maps and cannot be tiled")
    x = x.detach()
    style = _style(problem, x, targets, tiling)
    grad = torch.zeros_like(x)
    content = torch.zeros((), dtype=torch.float32, device=x.device)
    every = tiles(*x.shape[-2:], tiling)
    for k, tile in enumerate(every, 1):
        rows, cols = tile.region
        piece = x[..., rows, cols].clone().requires_grad_(True)
        image = problem.to_network(piece)
        features = problem.net(problem.runtime.prepare(image), problem.layers)
        tile_content, loss = _tile_loss(problem, features, tile, targets, style)
        (piece_grad,) = torch.autograd.grad(loss, piece)
        grad[..., rows, cols] += piece_grad
        content = content + tile_content.detach()
        del features, loss, piece_grad
        if on_tile is not None:
            on_tile(k, len(every))
    tv = torch.zeros((), dtype=torch.float32, device=x.device)
    if problem.weights.tv > 0:
        whole = x.clone().requires_grad_(True)
        tv = problem.weights.tv * total_variation(problem.to_network(whole))
        grad += torch.autograd.grad(tv, whole)[0]
        tv = tv.detach()
    terms = LossTerms({"content": content, "style": problem.weights.style * style.value.detach(), "tv": tv})
    return terms, grad

