"""The style scale at print size, shown small: the same photo and painting with the style image
relative to the output (``--style-scale 1``, the default) and at a quarter of it (what the
painting at its own 1024 px becomes in a 4096 px print), side by side with a 2x crop of each.

    python bench/style_scale.py --size 512 -o docs/style_scale.jpg
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from impasto import images
from impasto.config import TransferConfig
from impasto.gatys.api import transfer
from impasto.runtime import describe_cpu

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--coarse-iterations", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/style_scale.jpg"))
    args = parser.parse_args()
    print(f"CPU: {describe_cpu()}")
    content, style = SHARED / "content" / "tubingen.jpg", SHARED / "style" / "starry_night.jpg"
    base = TransferConfig(size=args.size, coarse_iterations=args.coarse_iterations, iterations=args.iterations, seed=0)
    panels = []
    for label, settings in (("relative, style at the output's size", {"style_scale": 1.0}),
                            ("style at a quarter of the output", {"style_scale": 0.25})):
        start = time.perf_counter()
        result = transfer(content, style, dataclasses.replace(base, **settings))
        print(f"{label}: {time.perf_counter() - start:.0f} s, loss {result.loss:.4g}")
        panels.append(result.tensor)
    height, width = panels[0].shape[-2:]
    # Below each, the same quarter of it at 2x: the brushstrokes' size against the picture.
    top, left = height // 4, width // 2
    crops = [images.resize_to(p[..., top : top + height // 2, left : left + width // 2], height, width)
             for p in panels]
    figure = torch.cat([torch.cat(panels, dim=-1), torch.cat(crops, dim=-1)], dim=-2)
    images.save_image(figure, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
