"""Crops of a print-size output at 100 %, centred on corners of the tiles it was evaluated in,
each beside the same region of a smaller output upsampled: where tiles meet, and what the
print adds over an enlargement.

    python bench/print_crops.py out/big.jpg out/small1024.png --tile 1040 -o docs/print_crops.jpg

``--tile`` is the tile size the run's plan used (``impasto.gatys.memory.plan``); the crops are
centred on the first interior tile corners, where four tiles meet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from impasto import images
from impasto.gatys import tiles


def corners(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """The points where four tiles meet (interior tile corners), row by row."""
    tiling = tiles.tiling_for(("relu5_1",), tile)
    cut = tiles.tiles(height, width, tiling)
    ys = sorted({t.y0 for t in cut} - {0})
    xs = sorted({t.x0 for t in cut} - {0})
    return [(y, x) for y in ys for x in xs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("large", type=Path)
    parser.add_argument("small", type=Path)
    parser.add_argument("--tile", type=int, required=True)
    parser.add_argument("--crop", type=int, default=384, help="crop side in px of the large image")
    parser.add_argument("--count", type=int, default=2, help="how many tile corners to show")
    parser.add_argument("--first", type=int, default=0, help="index of the first corner shown (row by row)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    large = images.load_image(args.large, max_pixels=10**9)
    small = images.load_image(args.small)
    height, width = large.shape[-2:]
    ratio = height / small.shape[-2]
    half = args.crop // 2
    rows = []
    for y, x in corners(height, width, args.tile)[args.first : args.first + args.count]:
        crop = large[..., y - half : y + half, x - half : x + half]
        sy, sx, sh = round((y - half) / ratio), round((x - half) / ratio), round(args.crop / ratio)
        enlarged = images.resize_to(small[..., sy : sy + sh, sx : sx + sh], args.crop, args.crop)
        gap = torch.ones((1, 3, args.crop, 8))
        rows.append(torch.cat([crop, gap, enlarged], dim=-1))
        print(f"corner at x={x}, y={y}: {args.large.name} at 100 % | {args.small.name} x{ratio:g}")
    images.save_image(torch.cat(rows, dim=-2), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
