"""Benchmark: latency of candidate multi-style networks at 512 x 512 (issue 12, point 2), to pick
the width, residual blocks and edge kernel by measurement — not a test.

Every candidate keeps Johnson's layout (2 stride-2 stages: residual blocks at 1/4 resolution,
at least 32 channels there). For each: the network alone (median of --repeats calls on one
512 x 512 image, after a warm-up) through PyTorch float32, PyTorch bfloat16 (where the CPU has
native bf16), onnxruntime and OpenCV dnn; with --apply N, also the marginal time per extra photo
through `impasto apply --model M.pt --style NAME` (``fast.apply.apply``, PNG in and out, one
process: (time for 1 + N photos - time for 1) / N). Weights are untrained: latency does not
depend on them. Run with ATEN_CPU_CAPABILITY=avx2 to measure as an AVX2-only CPU (onnxruntime
and OpenCV ignore it). Prints describe_cpu() and the load average: on a shared machine the
numbers are only as good as the load lets them be.

    python bench/multistyle_latency.py                                  # the default candidates
    python bench/multistyle_latency.py --arch 16,5,9 8,5,5 --apply 8 --backends torch onnxruntime
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from fast_latency import median_seconds
from impasto import images
from impasto.config import ApplyConfig
from impasto.fast.apply import apply
from impasto.fast.backends import export_onnx, make_backend
from impasto.fast.multistyle.model import MultiStyleModel, MultiStyleNet, Objective, StyleEntry, bind, save_multistyle
from impasto.fast.network import Architecture
from impasto.runtime import cpu_has_native_bf16, describe_cpu

SHARED = Path(__file__).resolve().parents[2] / "shared"
OBJECTIVE = Objective(1.0, 1e3, {"relu4_2": 1.0}, {"relu1_1": 1.0}).as_dict()  # any valid one: timing only
CANDIDATES = ["32,5,9", "16,5,9", "16,5,5", "16,3,5", "12,4,5", "8,5,9", "8,5,5", "8,3,5"]


def candidate(spec: str) -> MultiStyleModel:
    width, blocks, kernel = map(int, spec.split(","))
    torch.manual_seed(0)
    net = MultiStyleNet(Architecture(width, blocks, kernel), 2).eval()
    return MultiStyleModel(net, [StyleEntry(n, OBJECTIVE) for n in ("a", "b")])


def gmac(model: MultiStyleModel, size: int = 512) -> float:
    """Multiply-accumulates of the convolutions on one size x size image."""
    total = 0

    def count(module: torch.nn.Conv2d, _: object, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in model.network.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        bind(model, [("a", 1.0)]).network(torch.rand(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return total / 1e9


def apply_marginal(model: MultiStyleModel, folder: Path, photos: list[Path], backend: str) -> tuple[float, float]:
    path = folder / "m.pt"
    save_multistyle(model, path)

    def seconds(inputs: list[Path], out: Path) -> float:
        start = time.perf_counter()
        apply(inputs, out, ApplyConfig(str(path), backend, mix="a"))
        return time.perf_counter() - start

    seconds(photos[:1], folder / "warm.png")
    one = seconds(photos[:1], folder / "one.png")
    many = seconds(photos, folder / f"many_{backend}")
    return one, (many - one) / (len(photos) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=CANDIDATES, metavar="W,B,K",
                        help="width, residual blocks, edge kernel (default: %(default)s)")
    parser.add_argument("--backends", nargs="+", default=["torch", "torch-bf16", "onnxruntime", "opencv"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--apply", type=int, default=0, metavar="N", help="also the marginal time through apply")
    args = parser.parse_args()
    print(describe_cpu(), f"load average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
    backends = [b for b in args.backends if b != "torch-bf16" or cpu_has_native_bf16()]
    x = torch.rand(1, 3, args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = []
        for i, source in enumerate(sorted((SHARED / "data" / "photos").glob("*.jpg"))[: args.apply + 1]):
            photos.append(folder / f"p{i}.png")
            images.save_image(images.resize_to(images.load_image(source), args.size, args.size), photos[-1])
        cells = ["network alone"] + (["apply: first photo", "apply: marginal"] if args.apply else [])
        print(f"\n| width, blocks, kernel | GMAC | backend | {' | '.join(cells)} |")
        print("|---|---:|---|" + "---:|" * len(cells))
        for spec in args.arch:
            model = candidate(spec)
            bound = bind(model, [("a", 1.0)])
            graph = export_onnx(bound) if {"onnxruntime", "opencv"} & set(backends) else None
            for name in backends:
                backend = make_backend(name, bound, graph)
                row = [f"{median_seconds(lambda b=backend: b(x), args.repeats) * 1000:.0f} ms"]
                if args.apply:
                    one, marginal = apply_marginal(model, folder, photos, name)
                    row += [f"{one * 1000:.0f} ms", f"{marginal * 1000:.0f} ms"]
                print(f"| {spec} | {gmac(model, args.size):.1f} | {name} | {' | '.join(row)} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
