"""Spatial control (Gatys et al. 2017, §4.1): the paper's "inside" guides against the simpler
resized masks (and erosion), on the Tübingen photo with the sky as The Starry Night and the town
as The Scream. The sky mask is the top third of the photo, its edge softened over 8 px.

Each run is measured with one yardstick, independent of the guides it used: the Gram matrices
per position of each region (the mask area-downsampled to each layer) against each painting's,
Σ_l ‖G_l/M − A_l/M_A‖² / ‖A_l/M_A‖² over relu1_1 … relu5_1 ("own" and "other"), and the
boundary leak: the same distance over relu1_1 … relu3_1 in a band of ``--band`` px on each side
of the boundary, as the share d_own / (d_own + d_other) (0: only the region's own painting shows
there; 0.5: the two cannot be told apart), averaged over the two sides.

    python bench/regions.py --size 256 -o out/regions
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from impasto import examples, images
from impasto.config import TransferConfig
from impasto.gatys.api import transfer
from impasto.gatys.regions import Region, propagate, resize
from impasto.losses import gram, guide_mass, guided_gram
from impasto.runtime import describe_cpu
from impasto.vgg import VGG19, load_weights

STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
LOCAL = ("relu1_1", "relu2_1", "relu3_1")


def sky_mask(height: int, width: int, soft: float = 8.0) -> torch.Tensor:
    """The top third, its edge ramping over about ``soft`` px."""
    rows = torch.arange(height, dtype=torch.float32) + 0.5
    sky = torch.sigmoid((height / 3 - rows) / (soft / 8))
    return sky.view(1, 1, height, 1).expand(1, 1, height, width).contiguous()


def statistics(net: VGG19, image: torch.Tensor, layers: tuple[str, ...],
               mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        features = net(image, layers)
        if mask is None:
            return {n: gram(f) / (f.shape[-2] * f.shape[-1]) for n, f in features.items()}
        guides = propagate(resize(mask, tuple(image.shape[-2:])), layers, "resize")
        return {n: guided_gram(f, guides[n]) / guide_mass(guides[n]) for n, f in features.items()}


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum(float((a[n] - b[n]).pow(2).sum() / b[n].pow(2).sum()) for n in a)


def measure(net: VGG19, image: torch.Tensor, masks: list[torch.Tensor], paintings: list[torch.Tensor],
            band: int) -> dict[str, float]:
    """Own and other distance per region, and the boundary leak."""
    height = image.shape[-2]
    boundary = height // 3
    whole = [statistics(net, p, STYLE) for p in paintings]
    local = [statistics(net, p, LOCAL) for p in paintings]
    out: dict[str, float] = {}
    leaks = []
    for k, (name, mask) in enumerate(zip(("sky", "town"), masks, strict=True)):
        s = statistics(net, image, STYLE, mask)
        out[f"{name} own"], out[f"{name} other"] = distance(s, whole[k]), distance(s, whole[1 - k])
        rows = torch.zeros_like(mask)
        if k == 0:
            rows[..., boundary - band : boundary, :] = 1
        else:
            rows[..., boundary : boundary + band, :] = 1
        b = statistics(net, image, LOCAL, rows)
        own, other = distance(b, local[k]), distance(b, local[1 - k])
        leaks.append(own / (own + other))
    out["leak"] = sum(leaks) / len(leaks)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--coarse-iterations", type=int, default=60)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--band", type=int, default=16, help="px each side of the boundary for the leak")
    parser.add_argument("--modes", nargs="+", default=["inside", "resize", "erode"])
    parser.add_argument("-o", "--output", type=Path, help="folder for the images (one per mode, side by side)")
    args = parser.parse_args()
    print(f"CPU: {describe_cpu()}")
    photo = images.resize_long_side(images.load_image(examples.PHOTO), args.size)
    height, width = photo.shape[-2:]
    sky = sky_mask(height, width)
    masks = [sky, 1 - sky]
    paintings = [images.resize_long_side(images.load_image(examples.painting(n)), args.size)
                 for n in ("starry_night", "the_scream")]
    net = VGG19(load_weights(), "relu5_1")
    rows = [("photo", 0.0, measure(net, photo, masks, paintings, args.band))]
    results = []
    for mode in args.modes:
        config = TransferConfig(size=args.size, coarse_iterations=args.coarse_iterations, iterations=args.iterations,
                                seed=0, region_guides=mode)
        start = time.perf_counter()
        result = transfer(photo, [], config, regions=[Region(sky, paintings[0]), Region(1 - sky, paintings[1])])
        seconds = time.perf_counter() - start
        rows.append((mode, seconds, measure(net, result.tensor, masks, paintings, args.band)))
        results.append(result.tensor)
        print(f"{mode}: {seconds:.0f} s, loss {result.loss:.4g}", flush=True)
    print(f"\n{args.size} px, {args.coarse_iterations}/{args.iterations} iterations, seed 0\n")
    print("| guides | sky: own | sky: other | town: own | town: other | boundary leak | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, seconds, m in rows:
        print(f"| {mode} | {m['sky own']:.3f} | {m['sky other']:.3f} | {m['town own']:.3f} | {m['town other']:.3f} "
              f"| {m['leak']:.3f} | {seconds:.0f} |")
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        for mode, tensor in zip(args.modes, results, strict=True):
            images.save_image(tensor, args.output / f"{mode}.png")
        images.save_image(torch.cat(results, dim=-1), args.output / "side_by_side.png")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
