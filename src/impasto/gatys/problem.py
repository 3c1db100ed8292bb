"""What stays fixed through one transfer: the inputs, the network, the weights, the colour mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from torch import Tensor

from impasto import colour, images
from impasto.config import TransferConfig
from impasto.gatys.regions import Layout, LoadedRegion, layout
from impasto.losses import Term, Weights
from impasto.runtime import Runtime
from impasto.vgg import VGG19, VGGWeights, deepest


@dataclass(frozen=True)
class Problem:
    """The content image and styles (RGB in [0, 1] on the CPU, styles already colour-matched
    where the config asks), their blend, the objective's weights and extra terms, and the
    network that measures them. ``regions`` (spatial control, ``gatys.regions``) divide the
    photo between paintings and the photo itself; ``styles`` then paint what no region covers
    and may be empty."""

    config: TransferConfig
    runtime: Runtime
    content: Tensor
    styles: Sequence[Tensor]
    blend: tuple[float, ...]
    extra: tuple[Term, ...]
    vgg_weights: VGGWeights
    # A starting image instead of config.init's (video: the previous frame's result warped).
    init_image: Tensor | None = None
    regions: tuple[LoadedRegion, ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the objective reads, each once."""
        names = (*self.config.content_layers, *self.config.style_layers, *(n for t in self.extra for n in t.layers))
        return tuple(dict.fromkeys(names))

    @cached_property
    def net(self) -> VGG19:
        return self.runtime.vgg(VGG19(self.vgg_weights, deepest(self.layers), self.config.pooling))

    @cached_property
    def layout(self) -> Layout:
        """The painted areas and the kept mask of the regions (at the photo's size)."""
        return layout(self.regions, self.styles, self.blend)

    @property
    def paintings(self) -> tuple[Tensor, ...]:
        """Every painting in use: the styles, then the regions'."""
        return (*self.styles, *(r.style for r in self.regions if r.style is not None))

    @cached_property
    def weights(self) -> Weights:
        content_w, style_w = self.config.layer_weights()
        return Weights(self.config.content_weight, self.config.style_weight, self.config.tv_weight, content_w, style_w)

    @property
    def luminance(self) -> bool:
        """Luminance-only transfer (Gatys et al. 2017) optimises the Y channel alone."""
        return self.config.preserve_color == "luminance"

    def to_network(self, x: Tensor) -> Tensor:
        """The optimised variable as an RGB image."""
        return x.expand(-1, 3, -1, -1) if self.luminance else x

    def colour_space(self, rgb: Tensor) -> Tensor:
        return colour.luminance(rgb) if self.luminance else rgb

    def shape_at(self, size: int) -> tuple[int, int]:
        """Height and width of the content image resized to long side ``size``."""
        return images.long_side_shape(*self.content.shape[-2:], size)

    def render(self, x: Tensor, shape: tuple[int, int] | None = None) -> Tensor:
        """The optimised variable as the RGB image a user sees, in [0, 1] on the CPU, resized to
        ``shape`` when given (a coarse scale's result shown at the requested size)."""
        x = x.detach().float().cpu()
        if shape is not None and tuple(x.shape[-2:]) != shape:
            x = images.resize_to(x.clamp(0, 1), *shape)
        if self.luminance:
            return colour.combine_luminance(x, images.resize_to(self.content, *x.shape[-2:]))
        return x.clamp(0, 1)
