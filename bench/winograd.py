"""Benchmark: Winograd's F(4x4, 3x3) against PyTorch's direct convolution for VGG-19's layers
(``impasto.winograd``) — not a test.

For each 3x3 convolution of VGG-19 up to conv5_1, at the sizes its feature maps have for a
``--size`` px image (4:3), the forward pass and the input gradient (what the transfer needs: the
weights are frozen) through PyTorch's direct convolution on channels-last float32 (what the
runtime uses otherwise) and through the Winograd form; median of ``--repeats``. Then the whole
network, forward to relu5_1 and backward, with the convolutions the runtime would choose
("auto") against "direct". Run with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` to
measure PyTorch's AVX2 kernels on an AVX-512 CPU.

    python bench/winograd.py --size 512
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from impasto.runtime import describe_cpu, resolve_runtime, winograd_min_channels
from impasto.vgg import CONV_LAYERS, VGG19, load_weights
from impasto.winograd import WinogradConv2d


def median_ms(step: Callable[[], None], repeats: int) -> float:
    step()  # warm-up: oneDNN picks and caches its kernels on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def forward_backward(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    x = x.detach().requires_grad_()

    def step() -> None:
        y = layer(x)
        torch.autograd.grad(y, x, torch.ones_like(y))

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="long side of the image, px (4:3)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    width, height = args.size, args.size * 3 // 4
    weights = load_weights()
    network = VGG19(weights, "relu5_1")
    print(f"CPU: {describe_cpu()}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"image {width}x{height}; forward + input gradient, median of {args.repeats}\n")
    print("| layer | in → out channels | feature map | direct | Winograd | speed-up | used by auto |")
    print("|---|---|---|---:|---:|---:|---|")
    threshold = winograd_min_channels()
    scale = 1
    for name in CONV_LAYERS:
        if name.startswith("conv5_") and name != "conv5_1":
            break
        if name.endswith("_1") and name != "conv1_1":
            scale *= 2
        conv = network.layers[name]
        h, w = height // scale, width // scale
        x = torch.rand(1, conv.in_channels, h, w).contiguous(memory_format=torch.channels_last)
        direct = median_ms(forward_backward(conv, x), args.repeats)
        fast = median_ms(forward_backward(WinogradConv2d(conv), x), args.repeats)
        used = "Winograd" if threshold is not None and conv.out_channels >= threshold else "direct"
        print(f"| {name} | {conv.in_channels} → {conv.out_channels} | {w}×{h} | {direct:.1f} ms | {fast:.1f} ms "
              f"| {direct / fast:.2f}× | {used} |")

    print("\n| whole network to relu5_1, forward + backward | median |")
    print("|---|---:|")
    image = torch.rand(1, 3, height, width)
    for convolution in ("direct", "auto"):
        runtime = resolve_runtime("cpu", "fp32", convolution)
        net = runtime.vgg(VGG19(weights, "relu5_1"))
        x = runtime.prepare(image)

        def step(net: VGG19 = net, x: torch.Tensor = x) -> None:
            x = x.detach().requires_grad_()
            features = net(x, ["relu5_1"])
            torch.autograd.grad(features["relu5_1"].sum(), x)

        print(f"| {convolution} ({runtime.convolution}) | {median_ms(step, args.repeats):.0f} ms |")


if __name__ == "__main__":
    main()
