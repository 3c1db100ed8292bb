"""Marginal latency of `impasto apply --style-image` per 512 x 512 photo (issue 13's budget:
<= 200 ms on a bf16 CPU, <= 400 ms as float32 on an AVX2-only CPU), for a few transformer sizes.

The marginal time is (time for 1 + N photos - time for 1 photo) / N in one process, through the
library call the CLI makes (fast.apply.apply), PNG in and out, the style code computed once per
run. Weights are untrained (latency does not depend on them). Run with ATEN_CPU_CAPABILITY=avx2
to measure as an AVX2-only CPU. Prints describe_cpu() and the load average: on a shared machine
the numbers are only as good as the load lets them be.

    python bench/arbitrary_latency.py [--photos 4] [--sizes 8,5,5 16,5,9] [--backends torch onnxruntime]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from impasto import images
from impasto.config import ApplyConfig
from impasto.fast.apply import apply
from impasto.fast.arbitrary.model import ArbitraryNet, save_arbitrary
from impasto.fast.network import Architecture
from impasto.runtime import cpu_has_native_bf16, describe_cpu

SHARED = Path(__file__).resolve().parents[2] / "shared"


def seconds_for(model: Path, painting: Path, photos: list[Path], out: Path, backend: str) -> float:
    config = ApplyConfig(str(model), backend, style_images=(painting,))
    start = time.perf_counter()
    apply(photos, out, config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--sizes", nargs="+", default=["8,5,5", "8,3,5", "16,5,9"])
    parser.add_argument("--backends", nargs="+", default=["torch", "torch-bf16", "onnxruntime"])
    args = parser.parse_args()
    print(describe_cpu(), f"load average {os.getloadavg()[0]:.1f}")
    backends = [b for b in args.backends if b != "torch-bf16" or cpu_has_native_bf16()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = sorted((SHARED / "data" / "photos").glob("*.jpg"))[: args.photos + 1]
        photos = []
        for i, source in enumerate(sources):
            path = folder / f"p{i}.png"
            images.save_image(images.resize_to(images.load_image(source), 512, 512), path)
            photos.append(path)
        painting = SHARED / "images" / "style" / "starry_night.jpg"
        print("| transformer | backend | 1 photo (incl. style code, load) | marginal per 512x512 photo |")
        print("|---|---|---|---|")
        for spec in args.sizes:
            width, blocks, kernel = map(int, spec.split(","))
            model = folder / f"m{spec.replace(',', '_')}.pt"
            save_arbitrary(ArbitraryNet(Architecture(width, blocks, kernel)), model, {})
            for backend in backends:
                seconds_for(model, painting, photos[:1], folder / "warm.png", backend)
                one = seconds_for(model, painting, photos[:1], folder / "one.png", backend)
                many = seconds_for(model, painting, photos, folder / f"many_{spec}_{backend}", backend)
                marginal = (many - one) / (len(photos) - 1)
                print(f"| width {width}, {blocks} blocks, {kernel}x{kernel} | {backend} | {one * 1000:.0f} ms "
                      f"| {marginal * 1000:.0f} ms |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
