"""The image transformation network of Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time
Style Transfer and Super-Resolution" (ECCV 2016), with the later fixes everyone adopted.

Layout (the paper's supplementary material, Table 1): a 9x9 convolution, two stride-2 3x3
convolutions, residual blocks, two upsampling stages and a 9x9 convolution back to RGB.
Departures from the paper, all common practice since:

* instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016) instead of batch normalisation;
* reflection padding in every convolution instead of zero padding, and residual blocks that
  keep their size (the paper pads the input by 40 px and uses unpadded convolutions);
* nearest-neighbour upsampling followed by a convolution instead of fractionally strided
  convolutions, which avoids checkerboard artefacts (Odena, Dumoulin & Olah 2016);
* RGB in [0, 1] in and out; the output passes through a sigmoid (the paper: a scaled tanh
  on 0-255), which trains smoothly, keeps every value in range and exports to ONNX as one op.

Any height and width work: the input is reflection-padded to a multiple of 4 inside the module
and the output cropped back, so exported graphs do the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The two stride-2 stages shrink by 4; padding to this multiple makes upsampling land exactly.
MULTIPLE = 4
# The 9x9 convolution's reflection padding (4 px) needs more pixels than it adds.
MIN_SIDE = 8


@dataclass(frozen=True)
class Architecture:
    """Size of a transformation network: ``width`` channels after the first convolution (doubled
    by each downsampling stage) and ``blocks`` residual blocks. Johnson et al.: width 32, 5 blocks."""

    width: int = 32
    blocks: int = 5

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.blocks, int) and self.width >= 1 and self.blocks >= 0):
            raise ValueError(f"width must be a positive integer and blocks non-negative, got {self}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# Named variants; the CLI's --variant. "fast" quarters the convolutions' cost (half the channels).
VARIANTS: dict[str, Architecture] = {
    "johnson": Architecture(32, 5),
    "fast": Architecture(16, 5),
    "lite": Architecture(16, 3),
}


def architecture(variant: str) -> Architecture:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}") from None


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


class UpsampleConvLayer(nn.Sequential):
    """Nearest-neighbour upsampling by 2 then a ConvLayer: the resize-convolution of Odena,
    Dumoulin & Olah (2016, "Deconvolution and Checkerboard Artifacts"), replacing the paper's
    fractionally strided convolution."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 3) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(inputs, outputs, kernel))


class TransformNet(nn.Module):
    """RGB in [0, 1], shape (B, 3, H, W) or (3, H, W), to a stylised image of the same shape in
    [0, 1]. Both sides must be at least ``MIN_SIDE`` (8) px."""

    def __init__(self, arch: Architecture | None = None) -> None:
        super().__init__()
        self.arch = arch or Architecture()
        c = self.arch.width
        self.encoder = nn.Sequential(ConvLayer(3, c, 9), ConvLayer(c, 2 * c, 3, 2), ConvLayer(2 * c, 4 * c, 3, 2))
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(self.arch.blocks)))
        self.decoder = nn.Sequential(
            UpsampleConvLayer(4 * c, 2 * c), UpsampleConvLayer(2 * c, c), ConvLayer(c, 3, 9, norm=False)
        )

    def forward(self, image: Tensor) -> Tensor:
        single = image.dim() == 3
        x = image.unsqueeze(0) if single else image
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
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
