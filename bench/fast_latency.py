"""Benchmark: how fast and how good the feed-forward style networks are (not a test).

Latency (default): the median wall time of stylising one square image at each size through
every back-end (PyTorch float32 and bfloat16, onnxruntime, OpenCV dnn), for a model file or a
freshly initialised network of a variant (latency does not depend on the weights); the
"johnson" architecture in OpenCV dnn as the reference point; and the speed-up over
`impasto transfer` with its default settings at the same size, timed in the same run at the
--transfer-sizes (512 by default; a 1024 px transfer takes a quarter of an hour here).

    python bench/fast_latency.py --variant lite --transfer-sizes      # latency only, a few minutes
    python bench/fast_latency.py --arch 8,3,5,3 --sizes 512 --backends onnxruntime --transfer-sizes
    python bench/fast_latency.py --model starry_night --transfer-sizes 256 512

Quality (--quality N): on N held-out photos of the training folder, the paper-objective style
loss (`impasto.evaluate`, float32, its `.style`) of the network's output and of a 300-iteration
`impasto.transfer` for the same photo and painting, at the same size.

    python bench/fast_latency.py --model starry.pt --quality 4 --style-image ../shared/images/style/starry_night.jpg

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import impasto
from impasto import images
from impasto.fast.backends import BACKENDS, export_onnx, make_backend
from impasto.fast.model import FastModel
from impasto.fast.network import VARIANTS, Architecture, TransformNet, build
from impasto.fast.styles import resolve
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos

ROOT = Path(__file__).resolve().parents[2] / "shared"
CONTENT = ROOT / "images" / "content" / "tubingen.jpg"
STYLE = ROOT / "images" / "style" / "starry_night.jpg"
PHOTOS = ROOT / "data" / "photos"


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def latency_row(network: TransformNet, size: int, repeats: int, backends: list[str]) -> dict[str, float]:
    x = torch.rand(1, 3, size, size)
    graph = export_onnx(network) if {"onnxruntime", "opencv"} & set(backends) else None
    row = {}
    for name in backends:
        backend = make_backend(name, network, graph)
        row[name] = median_seconds(lambda b=backend: b(x), repeats)
        print(f"  {size}px {name}: {row[name] * 1000:.0f} ms", file=sys.stderr, flush=True)
    return row


def transfer_seconds(size: int) -> float:
    config = impasto.TransferConfig(size=size, seed=0)
    start = time.perf_counter()
    impasto.transfer(CONTENT, STYLE, config)
    return time.perf_counter() - start


def latency(args: argparse.Namespace, network: TransformNet, label: str) -> None:
    reference = build("johnson").eval()
    header = [f"{label}: {b}" for b in args.backends] + ["johnson: opencv", "transfer", "speed-up"]
    print("| size | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for size in args.sizes:
        row = latency_row(network, size, args.repeats, args.backends)
        johnson = latency_row(reference, size, args.repeats, ["opencv"])["opencv"]
        best = min(row.values())
        cells = [f"{row[b] * 1000:.0f} ms" for b in args.backends] + [f"{johnson * 1000:.0f} ms"]
        if size in args.transfer_sizes:
            transfer = transfer_seconds(size)
            cells += [f"{transfer:.1f} s", f"{transfer / best:.0f}x"]
        else:
            cells += ["–", "–"]
        print(f"| {size}² | " + " | ".join(cells) + " |", flush=True)


def style_loss_rows(model: FastModel, style_image: Path, photos: list[Path], size: int, iterations: int,
                    references: dict[Path, tuple[float, float]] | None = None) -> list[dict[str, float | str]]:
    """Per held-out photo: the paper's style loss of the network's output and of an
    ``iterations``-step transfer, both at ``size`` px; ``references`` caches the transfers'
    (loss, seconds) by photo for several models of one painting."""
    config = impasto.TransferConfig(size=size, iterations=iterations, seed=0)
    references = {} if references is None else references
    rows = []
    for path in photos:
        photo = images.resize_long_side(images.load_image(path), size)
        start = time.perf_counter()
        fast = stylize(model, photo)
        fast_s = time.perf_counter() - start
        if path not in references:
            slow = impasto.transfer(photo, style_image, config)
            references[path] = (float(impasto.evaluate(slow.tensor, photo, style_image, config).style), slow.seconds)
        slow_loss, slow_s = references[path]
        fast_loss = float(impasto.evaluate(fast, photo, style_image, config).style)
        rows.append({"photo": path.name, "fast": fast_loss, "fast_s": fast_s, "transfer": slow_loss,
                     "transfer_s": slow_s, "ratio": fast_loss / slow_loss})
    return rows


def quality(args: argparse.Namespace, model: FastModel) -> None:
    if args.style_image is None:
        sys.exit("--quality needs --style-image (the painting the model was trained on)")
    settings = model.training.get("settings", {})
    photos = Photos(args.data, settings.get("holdout_percent", 2.0)).held_out[: args.quality]
    print("| photo | fast: style loss | fast: s | transfer: style loss | transfer: s | fast / transfer |")
    print("|---|---|---|---|---|---|")
    rows = style_loss_rows(model, args.style_image, photos, args.quality_size, args.transfer_iterations)
    for row in rows:
        print(f"| {row['photo']} | {row['fast']:.4g} | {row['fast_s']:.2f} | {row['transfer']:.4g} "
              f"| {row['transfer_s']:.0f} | {row['ratio']:.2f} |", flush=True)
    if rows:
        print(f"| geometric mean | | | | | {statistics.geometric_mean(r['ratio'] for r in rows):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="a model file or shipped style")
    which.add_argument("--variant", choices=tuple(VARIANTS), default="lite", help="a fresh network (default: lite)")
    which.add_argument("--arch", metavar="W,B,K,S",
                       help="a fresh network of width W, B residual blocks, KxK edge kernels, S stages")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell; the median is shown")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--transfer-sizes", type=int, nargs="*", default=[512], metavar="SIZE",
                        help="sizes at which to time `impasto transfer` (defaults) for the speed-up; none: skip")
    parser.add_argument("--transfer-iterations", type=int, default=300,
                        help="iterations of the quality mode's reference transfer (default: %(default)s)")
    parser.add_argument("--quality", type=int, default=0, metavar="N", help="quality mode on N held-out photos")
    parser.add_argument("--quality-size", type=int, default=256, help="long side in the quality mode")
    parser.add_argument("--style-image", type=Path, help="the painting (quality mode)")
    parser.add_argument("--data", type=Path, default=PHOTOS, help="the training photos (quality mode)")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.model:
        model = resolve(args.model)
        label = model.style
    else:
        arch = Architecture(*map(int, args.arch.split(","))) if args.arch else args.variant
        label = f"{args.arch or args.variant} (untrained)"
        model = FastModel(build(arch).eval(), label)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    if args.quality:
        quality(args, model)
    else:
        latency(args, model.network, label)


if __name__ == "__main__":
    main()
