"""VGG-19's deep 3×3 convolutions by Winograd's minimal filtering, F(4×4, 3×3), for float32 CPUs
(Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks").

A 3×3 convolution over a 4×4 output tile takes 144 multiplies per input-output channel pair;
Winograd's algorithm takes 36: the 6×6 input tile and the 3×3 filter are each carried into a
6×6 transform domain (``B^T d B``, ``G g G^T``), multiplied element by element, and carried
back (``A^T m A``). Summed over the input channels, the 36 element-wise products become 36
independent matrix products, (out × in) · (in × tiles), which is where the time goes.

Why here: the transfer's cost is VGG-19's forward and backward pass, and in float32 PyTorch's
oneDNN convolutions already run near the cores' peak, so fewer multiplies is what is left.
Measured on 2 cores (forward + input gradient at a 512 × 384 image's sizes, ``bench/winograd.py``):
with AVX2 kernels 1.9-2.4× faster at conv3_x (256 channels) and 3.6-4.2× from conv4_1 (512), the
whole network 1.75×; with AVX-512 kernels, whose direct convolutions are twice as fast,
1.2-1.25× at conv3_x and 1.8-2.2× from conv4_1, the whole network 1.32×; before conv3_1, over
64-128 channels at full and half size, the transforms' memory traffic outweighs the saved
multiplies everywhere. So the runtime replaces convolutions from the depth a probe finds worth
it (``runtime.winograd_min_channels``; ``MIN_CHANNELS`` when forced). The input gradient is a
Winograd convolution too (``_InputGradient``), exact for this function; against a direct
convolution both agree to float32 rounding (about 1e-5 relative: the transforms' coefficients
go up to 8 and 1/24).

Departure from a hand-written kernel: the transforms run as dense products with the 36 × 36
and 16 × 36 Kronecker matrices, which keeps every step one large BLAS call. That spends 1,296
multiplies per tile and input channel where separable transforms would take 432, under 5 % of
the 27,648 the algorithm saves there at 256 output channels; what the transforms really cost is
memory traffic (the gathered tiles are 2.25× the input), which is why shallow layers lose.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The smallest output channel count worth the transforms on any CPU measured (AVX2; see the
# module's docstring): VGG-19's conv3_1 onwards.
MIN_CHANNELS = 256

# Lavin & Gray's F(4×4, 3×3) matrices; the nodes are 0, ±1, ±2 and infinity.
_BT = torch.tensor(
    [[4, 0, -5, 0, 1, 0],
     [0, -4, -4, 1, 1, 0],
     [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0],
     [0, 2, -1, -2, 1, 0],
     [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
_G = torch.tensor(
    [[1 / 4, 0, 0],
     [-1 / 6, -1 / 6, -1 / 6],
     [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6],
     [1 / 24, -1 / 12, 1 / 6],
     [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor(
    [[1, 1, 1, 1, 1, 0],
     [0, 1, -1, 2, -2, 0],
     [0, 1, 1, 4, 4, 0],
     [0, 1, -1, 8, -8, 1]], dtype=torch.float64)
TILE = 4  # output pixels per tile side
WINDOW = TILE + 2  # input pixels per tile side


def filter_transform(weight: Tensor) -> Tensor:
    """(out, in, 3, 3) filters to the transform domain, (36, out, in), computed in float64."""
    u = torch.einsum("ij,oajk,lk->oail", _G, weight.detach().double().cpu(), _G)
    return u.reshape(*u.shape[:2], WINDOW * WINDOW).permute(2, 0, 1).contiguous().float()


def winograd_conv3x3(x: Tensor, u: Tensor, bias: Tensor | None) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` for 3×3 filters given as ``u =
    filter_transform(weight)``; x is (N, C, H, W) float32 of any size and memory format.

    ``WinogradConv2d`` differentiates it through ``_InputGradient`` rather than letting autograd
    trace these gathers and reshapes, whose recorded backward is the dearer one."""
    n, c, h, w = x.shape
    rows, cols = -(-h // TILE), -(-w // TILE)
    # Zero padding of one pixel (the convolution's own), plus whatever completes the last tiles.
    padded = F.pad(x, (1, TILE * cols + 1 - w, 1, TILE * rows + 1 - h))
    # Every tile's 6×6 window as a strided view, (6, 6, C, N, rows, cols), gathered by one copy
    # straight into the layout the transform's product wants (unfold would copy twice).
    sn, sc, sh, sw = padded.stride()
    windows = padded.as_strided((WINDOW, WINDOW, c, n, rows, cols), (sh, sw, sc, sn, TILE * sh, TILE * sw))
    t = n * rows * cols
    d = windows.reshape(WINDOW * WINDOW, c * t)
    v = (_kron_in(x) @ d).view(WINDOW * WINDOW, c, t)  # B^T d B of every tile and channel
    m = torch.bmm(u, v)  # (36, out, N*T): the sum over input channels, per transform element
    out = u.shape[1]
    y = (_kron_out(x) @ m.view(WINDOW * WINDOW, out * t)).view(TILE, TILE, out, n, rows, cols)
    y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, out, TILE * rows, TILE * cols)[..., :h, :w]
    return y if bias is None else y.add_(bias.view(1, -1, 1, 1))


class _InputGradient(torch.autograd.Function):
    """A Winograd convolution whose backward pass is another one: the input gradient of a 3×3,
    stride-1, padding-1 convolution is the convolution of the output gradient with the filters
    flipped and their in/out channels swapped. Saves no activations, and costs what the forward
    pass costs, where autograd through the first version's unfold and reshapes took 1.3-1.6×
    longer (fold's scatter and the copies back). The filters are frozen: no weight gradient."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, u: Tensor, u_flipped: Tensor,
                bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(u_flipped)
        return winograd_conv3x3(x, u, bias)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        (u_flipped,) = ctx.saved_tensors
        return winograd_conv3x3(grad, u_flipped, None), None, None, None


_KRON: dict[tuple[str, torch.device], Tensor] = {}


def _kron_in(x: Tensor) -> Tensor:
    # vec(B^T d B) = (B^T ⊗ B^T) vec(d) for row-major 6×6 tiles.
    return _cached("in", x.device, lambda: torch.kron(_BT, _BT))


def _kron_out(x: Tensor) -> Tensor:
    return _cached("out", x.device, lambda: torch.kron(_AT, _AT))


def _cached(name: str, device: torch.device, make: Callable[[], Tensor]) -> Tensor:
    key = (name, device)
    if key not in _KRON:
        _KRON[key] = make().float().to(device)
    return _KRON[key]


class WinogradConv2d(nn.Module):
    """A frozen 3×3, stride-1, padding-1 ``nn.Conv2d`` computed by F(4×4, 3×3)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not applicable(conv):
            raise ValueError(f"not a 3x3, stride 1, padding 1 convolution: {conv}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.register_buffer("u", filter_transform(conv.weight).to(conv.weight.device))
        flipped = conv.weight.flip(2, 3).transpose(0, 1)
        self.register_buffer("u_flipped", filter_transform(flipped).to(conv.weight.device))
        bias = conv.bias.detach().float().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: Tensor) -> Tensor:
        return _InputGradient.apply(x.float(), self.u, self.u_flipped, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, F(4x4, 3x3)"


def applicable(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def replace_deep_convolutions(layers: nn.ModuleDict, min_channels: int = MIN_CHANNELS) -> int:
    """Swap, in place, every applicable convolution with at least ``min_channels`` outputs for
    its Winograd form; returns how many were swapped."""
    swapped = 0
    for name, layer in layers.items():
        if applicable(layer) and layer.out_channels >= min_channels:
            layers[name] = WinogradConv2d(layer)
            swapped += 1
    return swapped
