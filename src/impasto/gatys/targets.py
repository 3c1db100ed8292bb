"""The targets of one scale: the content image's features and each style's Gram matrices,
computed once per scale without autograd (they do not change while the image is optimised).

Eq. 4 compares the image's Gram matrix G_l with the painting's A_l under one M_l: the paper
takes both images at one size. When their positions differ (another aspect ratio, or
``style_size`` holding the painting at a fixed size while the image grows), A_l is brought to
the image's M_l, A_l · M_l(image) / M_l(painting): the image is asked for the painting's
statistics per position, whatever its size, and at equal sizes this is eq. 4 exactly. Left raw,
a painting with a quarter of the image's positions would ask for a quarter of its own Gram
energy (a 512 px photo scored against a painting held at 256 px)."""

from __future__ import annotations

import torch
from torch import Tensor

from impasto import colour, images
from impasto.gatys import regions, tiles
from impasto.gatys.memory import forward_tiling
from impasto.gatys.problem import Problem
from impasto.losses import GuidedStyle, Targets, gram
from impasto.vgg import positions


def style_long_side(problem: Problem, size: int) -> int:
    """The style images' long side at a scale of long side ``size``: ``style_size`` scaled with
    the scale, or ``style_scale`` times it (at least 32 px)."""
    config = problem.config
    if config.style_size:
        return round(config.style_size * size / config.size)
    return max(32, round(config.style_scale * size))


def targets(problem: Problem, size: int) -> Targets:
    """Content features and style Grams at the scale of long side ``size``; images too large for
    one pass within the memory budget are run tile by tile (``gatys.tiles``, the same values)."""
    config = problem.config
    content = problem.colour_space(images.resize_long_side(problem.content, size))
    with torch.no_grad():
        content_features = _features(problem, content, config.content_layers)
        if problem.regions:
            return Targets(content_features, (), (), _guided(problem, content, size))
        grams = [_painting_grams(problem, style, content, size) for style in problem.styles]
    return Targets(content_features, grams, problem.blend)


def _painting_grams(problem: Problem, style: Tensor, content: Tensor, size: int) -> dict[str, Tensor]:
    """A painting's Gram matrices at the scale of long side ``size``, scaled to ``content``'s
    positions (the module's docstring)."""
    config = problem.config
    s = problem.colour_space(images.resize_long_side(style, style_long_side(problem, size)))
    if problem.luminance:
        s = colour.match_luminance(s, content)
    tiling = forward_tiling(problem, s.shape[-2] * s.shape[-1])
    if tiling is None:
        raw = {name: gram(f) for name, f in _features(problem, s, config.style_layers).items()}
    else:
        raw = tiles.grams(problem, s, config.style_layers, tiling)
    return {name: a * (positions(name, *content.shape[-2:]) / positions(name, *s.shape[-2:]))
            for name, a in raw.items()}


def _guided(problem: Problem, content: Tensor, size: int) -> list[GuidedStyle]:
    """Each painted area's guides at this scale (``gatys.regions``) and its paintings' Grams, each
    painting's computed once however many areas use it. Gatys et al. (2017) take a region's
    target from its whole painting, as here (a mask over the painting is not supported)."""
    shape = tuple(content.shape[-2:])
    layers, mode = problem.config.style_layers, problem.config.region_guides
    device = problem.runtime.device
    computed: dict[int, dict[str, Tensor]] = {}
    out = []
    for area in problem.layout.painted:
        for style in area.styles:
            if id(style) not in computed:
                computed[id(style)] = _painting_grams(problem, style, content, size)
        guides = regions.propagate(regions.resize(area.mask, shape), layers, mode)
        out.append(GuidedStyle({name: g.to(device) for name, g in guides.items()},
                               [computed[id(s)] for s in area.styles], area.blend))
    return out


def _features(problem: Problem, image: Tensor, layers: tuple[str, ...]) -> dict[str, Tensor]:
    """Features of ``image`` (in the optimised colour space) at ``layers``, without autograd."""
    tiling = forward_tiling(problem, image.shape[-2] * image.shape[-1])
    if tiling is None:
        return problem.net(problem.runtime.prepare(problem.to_network(image)), layers)
    return tiles.feature_maps(problem, image, layers, tiling)
