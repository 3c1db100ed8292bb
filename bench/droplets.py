"""Benchmark: how far a multi-style network's droplets set the scale of its instance
normalisations — not a test.

A droplet (Karras et al. 2020, §2) is a few positions of huge value that a network piles up
before an instance normalisation so that the normalisation's spread, and with it the scale of
every other position, is theirs to set; it shows as a dark or coloured oval at the same place in
every output. For each normalisation of the transformer, over --photos held-out photos (centre
crops of --size px, never trained on) under every style, the outlier inflation of each channel
entering it (``impasto.losses.outlier_inflation``: var / var clipped to 3 sigma, less 1; about
0.03 for a Gaussian field) is summarised by its median, 99th percentile and maximum, and the
droplet term a training with ``--droplet-weight`` would add (per image, before the weight).

    python bench/droplets.py src/impasto/models/multistyle/paper_fig3.pt training/fig3_w32_grid.pt

Prints describe_cpu() and a Markdown table per model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from impasto.fast.conditional import ConditionalInstanceNorm
from impasto.fast.multistyle.model import read_multistyle
from impasto.fast.training.data import Photos
from impasto.fast.training.droplets import droplet_probe
from impasto.losses import outlier_inflation
from impasto.runtime import describe_cpu

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def per_channel(x: Tensor) -> Tensor:
    """The outlier inflation of every channel of every image of x, flattened."""
    return outlier_inflation(x.flatten(0, 1)[:, None], 0.0)


def measure(path: Path, photos: Tensor) -> tuple[list[list[Tensor]], list[Tensor]]:
    """Per normalisation, the channels' inflations; per style, the droplet term of each photo."""
    model = read_multistyle(path)
    net = model.network.transformer
    norms = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm)]
    seen: list[list[Tensor]] = [[] for _ in norms]
    handles = [m.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(per_channel(args[0])))
               for i, m in enumerate(norms)]
    terms = []
    for k in range(model.network.count):
        codes = model.network.table()[[k] * len(photos)]
        with torch.no_grad(), droplet_probe(net) as probe:
            net(photos, codes)
        assert probe is not None
        terms.append(probe.per_image())
    for handle in handles:
        handle.remove()
    return seen, terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="multi-style model files")
    parser.add_argument("--data", type=Path, default=PHOTOS, help="the photo corpus (its held-out slice is used)")
    parser.add_argument("--photos", type=int, default=4, help="held-out photos (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="side of the centre crops (default: %(default)s)")
    args = parser.parse_args()
    print(describe_cpu())
    photos = Photos(args.data, 2.0).previews(args.photos, args.size)
    if photos is None:
        raise SystemExit(f"{args.data}: no held-out photos")
    for path in args.models:
        seen, terms = measure(path, photos)
        term = torch.cat(terms)
        print(f"\n{path}: droplet term per image, mean {float(term.mean()):.2f}, largest {float(term.max()):.2f} "
              f"({args.photos} photos × {len(terms)} styles, {args.size} px)\n")
        print("| normalisation | channels | median | 99th percentile | largest |")
        print("|---:|---:|---:|---:|---:|")
        for i, values in enumerate(seen):
            v = torch.cat(values)
            print(f"| {i} | {len(v) // (len(photos) * len(terms))} | {float(v.median()):.3f} | "
                  f"{float(v.quantile(0.99)):.2f} | {float(v.max()):.2f} |")


if __name__ == "__main__":
    main()
