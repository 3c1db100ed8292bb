"""Figure: a fast network's outputs before and after a change, at 200 %, on held-out pairs —
not a test.

Each row is one held-out pair of ``grid_heldout.py`` (the same photos and styles, at --size px):
the centre of the photo, then the centre of each model's output, enlarged twice with nearest
neighbours so that a 2-px or 4-px pattern shows as it is; each panel's caption gives its grid ratio.

    python bench/hatching_figure.py before.pt after.pt -o docs/hatching.jpg --rows 0 3 5
    python bench/hatching_figure.py old_any.pt new_any.pt --arbitrary -o docs/hatching_any.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from impasto import images
from impasto.fast.stylize import stylize
from impasto.fast.training.data import centre_crop
from impasto.runtime import describe_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_worth import PHOTOS
from grid_heldout import pairs, ratio

LABEL = 18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs=2, help="the model before and the model after")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--arbitrary", action="store_true", help="any-painting models: held-out paintings")
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 3, 5], help="which of the 12 pairs")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--crop", type=int, default=160, help="side of the centre shown, px (default: %(default)s)")
    args = parser.parse_args()
    print(describe_cpu(), file=sys.stderr)
    chosen = []
    for model in args.models:
        found = pairs(argparse.Namespace(model=model, arbitrary=args.arbitrary, pairs=12, data=PHOTOS))
        chosen.append([found[i] for i in args.rows])
    side = 2 * args.crop
    canvas = Image.new("RGB", (3 * side, len(args.rows) * (side + LABEL)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (before, after) in enumerate(zip(*chosen, strict=True)):
        photo = centre_crop(images.load_image(before[0]), args.size)
        panels = [("photo", photo)] + [(f"{name} ({label})", stylize(pair[1], photo))
                                       for name, pair, label in (("before", before, before[2]),
                                                                 ("after", after, after[2]))]
        y = row * (side + LABEL)
        for column, (caption, image) in enumerate(panels):
            top = (args.size - args.crop) // 2
            crop = image[..., top:top + args.crop, top:top + args.crop]
            shown = images.to_pil(crop.clamp(0, 1)).resize((side, side), Image.NEAREST)
            canvas.paste(shown, (column * side, y + LABEL))
            draw.text((column * side + 4, y + 3), f"{caption}, grid ratio {ratio(image):.0f}", fill="black")
    canvas.save(args.output, quality=92)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
