"""The spatial-control figure of the README and docs/transfer.md (docs/regions.jpg) — not a test.

One photo that no part of impasto was made or tuned with, its sky painted as one painting and
the rest as another (Gatys et al. 2017, §4.1, with this project's defaults otherwise). Panels:
the photo with its sky mask inset; the result with the two paintings inset (sky bottom left,
rest bottom right); the boundary at 200 % (each pixel doubled, none interpolated), where a seam
or a halo would show.

The sky mask is made from the photo here, for this figure only: a pixel is sky when it is bright
and bluer than it is red, and each column's sky is the run of such pixels from the top (three
non-sky pixels in a row end it); its edge is softened by a 1.5 px Gaussian. A user draws or
paints their masks in any editor; the mask is written beside the figure so that the command the
figure shows can be repeated:

    python bench/regions_figure.py ../shared/images/content/yosemite.jpg -o docs/regions.jpg
    impasto transfer yosemite.jpg shipwreck.jpg --region sky.png=starry_night.jpg --size 512 -o out.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from impasto import examples, images
from impasto.research.report import image_grid, with_inset
from impasto.runtime import describe_cpu


def sky_mask(photo: Path, long_side: int) -> Image.Image:
    """The photo's sky at ``long_side`` px (the module's docstring says how)."""
    image = Image.open(photo).convert("RGB")
    image.thumbnail((long_side, long_side))
    rgb = np.asarray(image).astype(np.float32)
    sky = (rgb[..., 2] >= rgb[..., 0] + 4) & (rgb.mean(-1) > 165)
    mask = np.zeros_like(sky)
    for x in range(sky.shape[1]):
        y = 0
        while y < sky.shape[0] and sky[y : y + 3, x].any():
            y += 1
        mask[:y, x] = True
    return Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))


def insets_both(image: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``image`` with ``left`` inset bottom left and ``right`` bottom right."""
    mirrored = with_inset(image.flip(-1), right.flip(-1), fraction=0.25)
    return with_inset(mirrored.flip(-1), left, fraction=0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/regions.jpg"))
    parser.add_argument("--sky", default="starry_night", help="painting of the sky (a shipped example's name)")
    parser.add_argument("--rest", default="shipwreck", help="painting of the rest")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--result", type=Path, help="an earlier result of the same command, instead of running it")
    args = parser.parse_args()

    work = args.output.parent / (args.output.stem + "_files")
    work.mkdir(parents=True, exist_ok=True)
    mask_file = work / "sky.png"
    sky_mask(args.photo, args.size).save(mask_file)
    sky, rest = examples.painting(args.sky), examples.painting(args.rest)
    result = args.result or work / "result.png"
    print(f"CPU: {describe_cpu()}")
    if args.result is None:
        command = [sys.executable, "-m", "impasto", "transfer", str(args.photo), str(rest), "--region",
                   f"{mask_file}={sky}", "--size", str(args.size), "-o", str(result), "--json", "-q"]
        print(" ".join(command))
        start = time.perf_counter()
        summary = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"{time.perf_counter() - start:.0f} s; final losses {summary.get('final_losses')}")

    photo = images.resize_long_side(images.load_image(args.photo), args.size)
    painted = images.load_image(result)
    mask = images.load_image(mask_file)  # (1, 3, H, W), grey
    height, width = painted.shape[-2:]
    # A window of half the panel's size across the horizon, each pixel doubled (edge rows
    # repeated where a side is odd) so that the panel keeps the photo's shape without resampling.
    horizon = int((mask[0, 0].mean(-1) > 0.5).sum())
    ch, cw = height // 2, width // 2
    top, left = min(max(0, horizon - ch // 2), height - ch), (width - cw) // 2
    crop = painted[..., top : top + ch, left : left + cw].repeat_interleave(2, -2).repeat_interleave(2, -1)
    crop = torch.nn.functional.pad(crop, (0, width - 2 * cw, 0, height - 2 * ch), mode="replicate")
    cells = [[with_inset(photo, mask, fraction=0.3),
              insets_both(painted, images.load_image(sky), images.load_image(rest)), crop]]
    titles = [["photo; sky mask (inset)", f"sky: {args.sky}, rest: {args.rest}", "the boundary at 200 %"]]
    image_grid(cells, args.output, titles=titles)
    print(f"wrote {args.output} and {mask_file}")


if __name__ == "__main__":
    main()
