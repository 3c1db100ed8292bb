"""A figure of held-out paintings x held-out photos through an arbitrary-style model, and how
often a painting's code brings the output's Gram statistics closer to that painting than the
other paintings' codes do (issue 13's property, measured on paintings the model never saw).

    python bench/arbitrary_figure.py MODEL.pt -o docs/arbitrary_heldout.jpg [--size 256] [--count 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from impasto import images
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos, centre_crop
from impasto.losses import gram_batch, relative_style_loss
from impasto.vgg import VGG19, load_weights

SHARED = Path(__file__).resolve().parents[2] / "shared"
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def style_distance(vgg: VGG19, image: torch.Tensor, painting: torch.Tensor) -> float:
    with torch.no_grad():
        a, b = vgg(image, LAYERS), vgg(painting, LAYERS)
    return sum(float(relative_style_loss(a[n], gram_batch(b[n]))) for n in LAYERS) / len(LAYERS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    model = arbitrary.read_arbitrary(args.model)
    photos = Photos(SHARED / "data" / "photos", 2.0)
    paintings = arbitrary.Paintings(SHARED / "data" / "paintings")
    held_photos = [centre_crop(photos.load(p), args.size) for p in photos.held_out[: args.count]]
    held_paintings = [images.load_image(p) for p in paintings.held_out[: args.count]]
    thumbs = [centre_crop(arbitrary.resize_short_side(p, args.size), args.size) for p in held_paintings]
    outputs = [[stylize(arbitrary.bind(model, [p]), photo) for p in held_paintings] for photo in held_photos]
    blank = torch.ones(1, 3, args.size, args.size)
    rows = [torch.cat([blank, *thumbs], dim=-1)]
    rows += [torch.cat([photo, *row], dim=-1) for photo, row in zip(held_photos, outputs, strict=True)]
    images.save_image(torch.cat(rows, dim=-2), args.output)
    vgg = VGG19(load_weights(), "relu4_1")
    wins = total = 0
    for photo, row in zip(held_photos, outputs, strict=True):
        for j, thumb in enumerate(thumbs):
            own = style_distance(vgg, row[j], thumb)
            for k in range(len(thumbs)):
                if k != j:
                    total += 1
                    wins += own < style_distance(vgg, row[k], thumb)
        print("photo: own-painting distance", [round(style_distance(vgg, row[j], t), 3) for j, t in enumerate(thumbs)],
              "photo itself", [round(style_distance(vgg, photo, t), 3) for t in thumbs])
    print(f"painting j's code closer to painting j than painting k's code: {wins}/{total}")
    print("paintings:", [p.name for p in paintings.held_out[: args.count]])
    print("photos:", [p.name for p in photos.held_out[: args.count]])


if __name__ == "__main__":
    main()
