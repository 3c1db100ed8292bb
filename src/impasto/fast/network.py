"""The image transformation network of Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time
Style Transfer and Super-Resolution" (ECCV 2016), with the later fixes everyone adopted.

Layout (the paper's supplementary material, Table 1): a 9x9 convolution, two stride-2 3x3
convolutions, residual blocks, two upsampling stages and a 9x9 convolution back to RGB.
Departures from the paper, all common practice since:

* instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016) instead of batch normalisation;
* reflection padding in every convolution instead of zero padding, and residual blocks that
  keep their size (the paper pads the input by 40 px and uses unpadded convolutions);
* nearest-neighbour upsampling followed by a convolution instead of fractionally strided
  convolutions, which avoids checkerboard artefacts (Odena, Dumoulin & Olah 2016); bilinear
  upsampling (``Architecture.upsample``) as an option, since nearest-neighbour steps can leave a
  faint hatching at the network's total upsampling period;
* RGB in [0, 1] in and out; the output passes through a sigmoid (the paper: a scaled tanh
  on 0-255), which trains smoothly, keeps every value in range and exports to ONNX as one op.

Any height and width work: the input is reflection-padded to a multiple of 2**stages inside the
module and the output cropped back, so exported graphs do the same.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from impasto.config import Upsampling
from impasto.errors import InputError


@dataclass(frozen=True)
class Architecture:
    """Size of a transformation network: ``width`` channels after the first convolution (doubled
    by each of the ``stages`` stride-2 downsamplings, halved again by each upsampling),
    ``blocks`` residual blocks at the lowest resolution, and the ``kernel`` size of the first and
    last convolutions, and how each stage ``upsample``s before its convolution. Johnson et al.:
    width 32, 5 blocks, 9x9 kernels, 2 stages (with nearest-neighbour resize-convolutions)."""

    width: int = 32
    blocks: int = 5
    kernel: int = 9
    stages: int = 2
    upsample: Upsampling = "nearest"

    def __post_init__(self) -> None:
        sizes = (self.width, self.blocks, self.kernel, self.stages)
        if not all(isinstance(v, int) for v in sizes) or self.width < 1 or self.blocks < 0 or self.stages < 0:
            raise InputError(f"width must be a positive integer, blocks and stages non-negative, got {self}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"kernel must be a positive odd integer, got {self.kernel}")
        if self.upsample not in get_args(Upsampling):
            raise InputError(f"upsample must be one of {', '.join(get_args(Upsampling))}, got {self.upsample!r}")

    @property
    def multiple(self) -> int:
        """Sides are padded to this multiple so that the upsamplings land exactly."""
        return 2**self.stages

    @property
    def min_side(self) -> int:
        """The smallest side the network accepts: reflection padding needs more pixels than it
        adds, in the edge convolutions (kernel // 2) and at the lowest resolution (1 px)."""
        return max(2 * self.multiple, self.kernel // 2 + 1)

    def __str__(self) -> str:
        k = self.kernel
        text = f"width-{self.width}, {self.blocks}-block, {k}x{k}-edge, {self.stages}-stage"
        return text if self.upsample == "nearest" else f"{text}, {self.upsample}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, spec: Any) -> Architecture:
        """The inverse of ``as_dict``, for a model file's record (raises KeyError/TypeError/
        ValueError on a malformed one, which the readers turn into one line). Files written before
        the upsampling became a choice used nearest-neighbour."""
        return cls(int(spec["width"]), int(spec["blocks"]), int(spec["kernel"]), int(spec["stages"]),
                   str(spec.get("upsample", "nearest")))  # type: ignore[arg-type]


# Named variants; the CLI's --variant. "fast" quarters the convolutions' cost (half the channels);
# "lite" (width 8, 5x5 edges, residual blocks at 1/8 scale) was picked by measurement to stylise
# 512x512 within 100 ms on a 2-core CPU through onnxruntime (docs/benchmarks.md).
VARIANTS: dict[str, Architecture] = {
    "johnson": Architecture(32, 5),
    "fast": Architecture(16, 5),
    "lite": Architecture(8, 3, kernel=5, stages=3),
}


def architecture(variant: str) -> Architecture:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise InputError(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}") from None


class ConvLayer(nn.Sequential):
    """Reflection padding, a convolution, and (unless ``norm=False``) affine instance
    normalisation (Ulyanov et al. 2016, "Instance Normalization: The Missing Ingredient for Fast
    Stylization") and a ReLU: the building block of Johnson et al. (2016)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1, norm: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(inputs, outputs, kernel, stride)]
        if norm:
            layers += [nn.InstanceNorm2d(outputs, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions and an identity skip connection (He et al. 2016), as in Johnson et
    al.'s supplementary material: no ReLU after the second normalisation or the sum (Gross &
    Wilber's finding), but reflection padding instead of cropping the skip path."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def upsample2(x: Tensor, mode: Upsampling) -> Tensor:
    """``x`` at twice its height and width; bilinear with half-pixel centres (align_corners off),
    which ONNX exports as one Resize that onnxruntime and OpenCV dnn both run."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class Upsample2(nn.Module):
    def __init__(self, mode: Upsampling) -> None:
        super().__init__()
        self.mode: Upsampling = mode

    def forward(self, x: Tensor) -> Tensor:
        return upsample2(x, self.mode)


class UpsampleConvLayer(nn.Sequential):
    """Upsampling by 2 then a ConvLayer: the resize-convolution of Odena, Dumoulin & Olah (2016,
    "Deconvolution and Checkerboard Artifacts"), replacing the paper's fractionally strided
    convolution."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 3, mode: Upsampling = "nearest") -> None:
        super().__init__(Upsample2(mode), ConvLayer(inputs, outputs, kernel))


class TransformNet(nn.Module):
    """RGB in [0, 1], shape (B, 3, H, W) or (3, H, W), to a stylised image of the same shape in
    [0, 1]. Both sides must be at least ``arch.min_side`` px."""

    def __init__(self, arch: Architecture | None = None) -> None:
        super().__init__()
        self.arch = arch = arch or Architecture()
        widths = [arch.width * 2**i for i in range(arch.stages + 1)]
        pairs = list(itertools.pairwise(widths))
        downs = [ConvLayer(a, b, 3, 2) for a, b in pairs]
        ups = [UpsampleConvLayer(b, a, mode=arch.upsample) for a, b in reversed(pairs)]
        self.encoder = nn.Sequential(ConvLayer(3, arch.width, arch.kernel), *downs)
        self.residuals = nn.Sequential(*(ResidualBlock(widths[-1]) for _ in range(arch.blocks)))
        self.decoder = nn.Sequential(*ups, ConvLayer(arch.width, 3, arch.kernel, norm=False))

    def forward(self, image: Tensor) -> Tensor:
        single = image.dim() == 3
        x = image.unsqueeze(0) if single else image
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.arch.multiple, -width % self.arch.multiple
        # While tracing for ONNX export the sizes are symbolic: always pad (by zero where the
        # sides are multiples already), or the graph would bake in the example's case.
        if pad_h or pad_w or torch.jit.is_tracing():
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = torch.sigmoid(self.decoder(self.residuals(self.encoder(x))))
        y = y[..., :height, :width]
        return y.squeeze(0) if single else y


def build(arch: Architecture | str) -> TransformNet:
    """A freshly initialised network of an architecture or a named variant."""
    return TransformNet(architecture(arch) if isinstance(arch, str) else arch)


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
