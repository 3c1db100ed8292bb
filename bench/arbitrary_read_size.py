"""How large the any-painting network should read the painting — not a test.

For each held-out painting × held-out photo pair at ``--size`` (the pairs ``arbitrary_worth.py``
uses), the network reads the painting at each long side of ``--read-sizes`` and stylises the
photo; each output is scored on the network's recorded objective (``impasto.evaluate``, float32)
with the painting held at each of those sizes. Prints the median over the pairs: a row per size
read, a column per size scored. A network that follows the scale it is given scores best on the
diagonal.

    python bench/arbitrary_read_size.py src/impasto/models/arbitrary/any_painting.pt --read-sizes 341 512 683
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

import impasto
from impasto import images
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.arbitrary.objective import recorded_objective
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos
from impasto.runtime import describe_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arbitrary_worth import DUPLICATED, PAINTINGS, spread
from fast_worth import PHOTOS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an arbitrary-style model file")
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--paintings", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--read-sizes", type=int, nargs="+", default=[341, 512, 683])
    args = parser.parse_args()
    print(describe_cpu(), file=sys.stderr)
    model = arbitrary.read_arbitrary(args.model)
    settings = model.training.get("settings") or {}
    photos = Photos(PHOTOS, 2.0).held_out[: args.photos]
    paintings = spread([p for p in arbitrary.Paintings(PAINTINGS).held_out if p.name not in DUPLICATED],
                       args.paintings)
    sizes = args.read_sizes
    scores: dict[tuple[int, int], list[float]] = {(r, s): [] for r in sizes for s in sizes}
    objectives = {s: recorded_objective(settings, s) for s in sizes}
    vgg = objectives[sizes[0]].vgg()
    for painting_path in paintings:
        painting = images.load_image(painting_path)
        bound = {r: arbitrary.bind(model, [painting], style_size=r) for r in sizes}
        for photo_path in photos:
            photo = images.resize_long_side(images.load_image(photo_path), args.size)
            with torch.no_grad():
                outputs = {r: stylize(bound[r], photo) for r in sizes}
            for s in sizes:
                config = objectives[s].for_pair(photo, painting, vgg).transfer_config(args.size)
                for r in sizes:
                    scores[r, s].append(float(impasto.evaluate(outputs[r], photo, painting_path, config).total))
    print(f"CPU: {describe_cpu()}; {len(paintings) * len(photos)} held-out pairs at {args.size} px; the "
          "recorded objective's total, median over the pairs\n")
    print("| painting read at (long side) | " + " | ".join(f"scored with it at {s}" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for r in sizes:
        cells = [f"{statistics.median(scores[r, s]):.3g}" for s in sizes]
        print(f"| {r} | " + " | ".join(f"**{c}**" if r == s else c for c, s in zip(cells, sizes, strict=True)) + " |")


if __name__ == "__main__":
    main()
