"""The image transformation network with conditional instance normalisation: one set of
convolutions for any number of styles, each style being a scale γ and shift β per normalised
channel (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic Style").

Ghiasi et al. (2017, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network") predict γ/β from the painting; Dumoulin et al. keep a table of them per
named style. Both drive this network, which therefore takes γ/β as an input, a flat vector per
image laid out as ``[γ of every normalisation, β of every normalisation, g]`` (``ConditionalNet.
split``), g being the output gain below. The layout is Johnson et al.'s (``fast.network``: reflection padding, stride-2
downsampling, residual blocks at 1/4 resolution, nearest upsampling + convolution, a sigmoid
to RGB in [0, 1]) with every instance normalisation made conditional.

Departure, a gated output: with S = sigmoid(last convolution) the network's painting (Johnson's
output), the result is ``photo + g ⊙ (S - photo)``, g a per-channel gain in [0, 1] that is part of the style
vector (the predictor starts it at 1, where the network is Johnson's). The identity vector
(γ = 1, β = 0, g = 0, ``identity``) thus returns the photo itself, exactly and without training,
and ``--strength`` scales the vector's distance from the identity: γ/β and g together, so a
partial strength mixes the photo with an image painted at weakened γ/β, not with the full-strength
one. (Ghiasi et al. interpolate toward the content image's own style code instead, which
reconstructs the photo only as well as training went; a residual in logit space, tried first,
trained far slower: saturated photo pixels pass almost no gradient.)
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from impasto.errors import InputError
from impasto.fast.network import Architecture, Upsampling, upsample2


class ConditionalInstanceNorm(nn.Module):
    """Instance normalisation whose scale and shift come from outside, per image:
    ``γ ⊙ (x - μ(x)) / σ(x) + β`` with γ, β of shape (B, C) or (1, C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        y = F.instance_norm(x, eps=1e-5)
        return y * gamma[:, :, None, None].to(y.dtype) + beta[:, :, None, None].to(y.dtype)


class CondConv(nn.Module):
    """Reflection padding, a convolution, conditional instance normalisation and a ReLU (the
    last two left out with ``norm=False``; the ReLU alone with ``relu=False``)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1, norm: bool = True,
                 relu: bool = True, upsample: Upsampling | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(inputs, outputs, kernel, stride)
        self.norm = ConditionalInstanceNorm(outputs) if norm else None
        self.relu = relu and norm

    def forward(self, x: Tensor, styles: list[tuple[Tensor, Tensor]]) -> Tensor:
        if self.upsample:
            # Resize-convolution (Odena, Dumoulin & Olah 2016) against checkerboard artefacts.
            x = upsample2(x, self.upsample)
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, *styles.pop(0))
            if self.relu:
                x = F.relu(x)
        return x


class CondResidual(nn.Module):
    """Johnson et al.'s residual block (two 3x3 convolutions, no ReLU after the sum) with
    conditional normalisations."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = CondConv(channels, channels, 3)
        self.second = CondConv(channels, channels, 3, relu=False)

    def forward(self, x: Tensor, styles: list[tuple[Tensor, Tensor]]) -> Tensor:
        return x + self.second(self.first(x, styles), styles)


class ConditionalNet(nn.Module):
    """RGB photos in [0, 1], (B, 3, H, W), and γ/β, (B or 1, ``code_size``), to stylised images
    of the same shape in [0, 1]. Sides must be at least ``arch.min_side`` px."""

    def __init__(self, arch: Architecture | None = None) -> None:
        super().__init__()
        self.arch = arch = arch or Architecture()
        widths = [arch.width * 2**i for i in range(arch.stages + 1)]
        pairs = list(itertools.pairwise(widths))
        layers: list[nn.Module] = [CondConv(3, arch.width, arch.kernel)]
        layers += [CondConv(a, b, 3, 2) for a, b in pairs]
        layers += [CondResidual(widths[-1]) for _ in range(arch.blocks)]
        layers += [CondConv(b, a, 3, upsample=arch.upsample) for a, b in reversed(pairs)]
        layers.append(CondConv(arch.width, 3, arch.kernel, norm=False))
        self.layers = nn.ModuleList(layers)
        #: Channels of each conditional normalisation, in the order the layers use them.
        self.norm_channels = tuple(m.channels for m in self.modules() if isinstance(m, ConditionalInstanceNorm))

    @property
    def code_size(self) -> int:
        """Length of the style vector: a γ and a β per normalised channel, and 3 output gains."""
        return 2 * sum(self.norm_channels) + 3

    def identity(self) -> Tensor:
        """γ = 1, β = 0, g = 0, shape (1, code_size): the network returns the photo."""
        half = sum(self.norm_channels)
        return torch.cat([torch.ones(1, half), torch.zeros(1, half + 3)], dim=1)

    def toward_identity(self, gammabeta: Tensor, strength: float | Tensor) -> Tensor:
        """Style vectors moved from the identity by ``strength`` (0: the photo; 1: the vectors
        themselves): γ, β and the gain g interpolated together, so that a partial strength paints
        with weakened normalisation parameters rather than fading pixels (Dumoulin et al. 2017,
        §4, interpolate γ/β between styles the same way)."""
        identity = self.identity().to(gammabeta.device, gammabeta.dtype)
        return identity + strength * (gammabeta - identity)

    def split(self, gammabeta: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """The (γ, β) pair of each normalisation and the output gain from ``[γ..., β..., g]``."""
        if gammabeta.dim() != 2 or gammabeta.shape[1] != self.code_size:
            raise InputError(f"γ/β: expected shape (B, {self.code_size}), got {tuple(gammabeta.shape)}")
        half = sum(self.norm_channels)
        gammas = torch.split(gammabeta[:, :half], self.norm_channels, dim=1)
        betas = torch.split(gammabeta[:, half : 2 * half], self.norm_channels, dim=1)
        return list(zip(gammas, betas, strict=True)), gammabeta[:, 2 * half :]

    def forward(self, image: Tensor, gammabeta: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % self.arch.multiple, -width % self.arch.multiple
        x = image
        # Always pad while tracing for ONNX, so that the graph does not bake in the example's case.
        if pad_h or pad_w or torch.jit.is_tracing():
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        styles, gain = self.split(gammabeta)
        photo = x
        for layer in self.layers:
            x = layer(x, styles)
        painted = torch.sigmoid(x)
        # g in [0, 1]: the output stays a mix of two images in [0, 1].
        g = gain.clamp(0.0, 1.0)[:, :, None, None].to(painted.dtype)
        return (photo + g * (painted - photo))[..., :height, :width]


class BoundNet(nn.Module):
    """A ConditionalNet with its γ/β fixed: a one-style network with the interface of
    ``fast.network.TransformNet`` (photo in, stylised photo out), which every back-end, the
    video path and the ONNX export run as they run a per-style network. The γ/β is a buffer,
    so that copies and dtype conversions carry it."""

    def __init__(self, net: ConditionalNet, gammabeta: Tensor) -> None:
        super().__init__()
        self.net = net
        self.arch = net.arch
        net.split(gammabeta)  # checks the shape
        self.register_buffer("gammabeta", gammabeta.detach().reshape(1, -1).clone())

    def forward(self, image: Tensor) -> Tensor:
        single = image.dim() == 3
        x = image.unsqueeze(0) if single else image
        y = self.net(x, self.gammabeta.to(x.dtype))
        return y.squeeze(0) if single else y
