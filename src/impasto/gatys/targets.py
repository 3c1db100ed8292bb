"""The targets of one scale: the content image's features and each style's Gram matrices,
computed once per scale without autograd (they do not change while the image is optimised)."""

from __future__ import annotations

import torch

from impasto import colour, images
from impasto.gatys.problem import Problem
from impasto.losses import Targets, gram


def style_long_side(problem: Problem, size: int) -> int:
    """The style images' long side at a scale of long side ``size``: ``style_size`` scaled with
    the scale, or ``style_scale`` times it (at least 32 px)."""
    config = problem.config
    if config.style_size:
        return round(config.style_size * size / config.size)
    return max(32, round(config.style_scale * size))


def targets(problem: Problem, size: int) -> Targets:
    """Content features and style Grams at the scale of long side ``size``."""
    net, runtime, config = problem.net, problem.runtime, problem.config
    content = problem.colour_space(images.resize_long_side(problem.content, size))
    with torch.no_grad():
        content_features = net(runtime.prepare(problem.to_network(content)), config.content_layers)
        grams = []
        for style in problem.styles:
            s = problem.colour_space(images.resize_long_side(style, style_long_side(problem, size)))
            if problem.luminance:
                s = colour.match_luminance(s, content)
            features = net(runtime.prepare(problem.to_network(s)), config.style_layers)
            grams.append({name: gram(f) for name, f in features.items()})
    return Targets(content_features, grams, problem.blend)
