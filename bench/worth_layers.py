"""Benchmark: where a fast network's loss lies against the optimisation's, term by term and layer
by layer — not a test.

``fast_worth.py`` counts the L-BFGS iterations a network's output is worth; this script shows
what it would take to be worth more. For each style of a model with a recorded objective, each
held-out photo and each size, it scores the network's output and the image of ``--iterations``
L-BFGS iterations from noise (``impasto transfer --scales 1`` on the style's recorded objective,
as ``fast_worth.py`` runs it; by default Johnson et al.'s protocol's 50 at 256 px and 40 at
512 px) on each weighted term of that objective: the content term of each content layer and the
style term of each style layer, in float32, with the library's own loss functions. The table gives
per style and size the medians of the network's total over the optimisation's (the factor the
network must lose to be worth that many iterations) and of each layer's ratio.

    python bench/worth_layers.py src/impasto/models/multistyle/paper_fig3.pt --photos 8     # the real run
    python bench/worth_layers.py multi.pt --photos 1 --sizes 64 --iterations 5 --style starry_night  # smoke

Prints describe_cpu() and a Markdown table; --json writes every row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import impasto
from impasto import images
from impasto.events import Iteration
from impasto.fast.multistyle.model import Objective
from impasto.fast.stylize import stylize
from impasto.gatys.api import build_problem
from impasto.gatys.targets import targets
from impasto.losses.paper import content_layer_loss, style_layer_loss, total_variation
from impasto.runtime import describe_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_worth import add_scoring_arguments, held_out_photos, styles_of

# The iterations Johnson et al.'s protocol asks a five-painting network to be worth, by size.
CRITERION = {256: 50, 512: 40}


def layer_scorer(photo: torch.Tensor, painting: Path, objective: Objective,
                 size: int) -> Callable[[torch.Tensor], dict[str, float]]:
    """A function giving each weighted term of ``objective`` for an image of the photo's size:
    ``content:<layer>`` (α w_l L_l), ``style:<layer>`` (β w_l E_l) and ``tv`` where it is weighted,
    in float32; their sum is checked against ``impasto.evaluate``'s total. The photo's features
    and the painting's Gram matrices are computed once, for every image scored."""
    config = replace(objective.transfer_config(size), precision="fp32", convolution="direct", preserve_color="none")
    problem = build_problem(photo, painting, config, ())
    target = targets(problem, size)
    weights = problem.weights

    def score(image: torch.Tensor) -> dict[str, float]:
        if image.shape != photo.shape:
            raise ValueError(f"an image of {tuple(image.shape)} scored against a photo of {tuple(photo.shape)}")
        with torch.no_grad():
            x = problem.runtime.prepare(image)
            features = problem.net(x, problem.layers)
            content = {f"content:{name}": weights.content * w
                       * float(content_layer_loss(features[name], target.content[name]))
                       for name, w in weights.content_layers.items()}
            style = {f"style:{name}": weights.style * w
                     * float(style_layer_loss(features[name], target.grams[0][name]))
                     for name, w in weights.style_layers.items()}
        terms = content | style | ({"tv": weights.tv * float(total_variation(x))} if weights.tv > 0 else {})
        # The same objective as the yardstick every other bench uses, or this breakdown means nothing.
        total = float(impasto.evaluate(image, photo, painting, objective.transfer_config(size)).total)
        if abs(sum(terms.values()) - total) > 1e-3 * total:
            raise RuntimeError(f"layer terms sum to {sum(terms.values()):.4g}, impasto.evaluate gives {total:.4g}")
        return terms

    return score


def optimised(photo: torch.Tensor, painting: Path, objective: Objective, size: int, iterations: int) -> torch.Tensor:
    """The image after ``iterations`` L-BFGS iterations from noise on ``objective``."""
    last: list[torch.Tensor] = []

    def keep(event: Iteration) -> None:
        if event.step == iterations:
            last.append(event.image().detach().cpu())

    impasto.transfer(photo, painting, objective.transfer_config(size, iterations=iterations, seed=0, init="noise"),
                     keep)
    return last[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scoring_arguments(parser)
    parser.add_argument("--iterations", type=int, nargs="+",
                        help="L-BFGS iterations to compare with, one per size (default: 50 at 256 px, 40 at 512)")
    args = parser.parse_args()
    iterations = args.iterations or [CRITERION.get(size, 50) for size in args.sizes]
    if len(iterations) != len(args.sizes):
        parser.error("--iterations: give one count per size")
    print(describe_cpu(), f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    photos = held_out_photos(args)
    rows: list[dict[str, Any]] = []
    for model, objective, painting in styles_of(args.model, args.style, args.paintings):
        for size, count in zip(args.sizes, iterations, strict=True):
            for path in photos:
                photo = images.resize_long_side(images.load_image(path), size)
                score = layer_scorer(photo, painting, objective, size)
                row = {"style": model.style, "size": size, "photo": path.name, "iterations": count,
                       "network": score(stylize(model, photo)),
                       "lbfgs": score(optimised(photo, painting, objective, size, count))}
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    terms = list(rows[0]["network"])
    print(f"CPU: {describe_cpu()}\n")
    print("Medians over the photos of the network's term ÷ the optimisation's; 'share' is the layer's part of the "
          "network's total.\n")
    print("| style | size | L-BFGS it. | total | " + " | ".join(terms) + " | share of the largest |")
    print("|---|---:|---:|---:|" + "---:|" * len(terms) + "---|")
    for style in dict.fromkeys(r["style"] for r in rows):
        for size in args.sizes:
            group = [r for r in rows if r["style"] == style and r["size"] == size]
            ratio = {t: statistics.median(r["network"][t] / r["lbfgs"][t] for r in group) for t in terms}
            total = statistics.median(sum(r["network"].values()) / sum(r["lbfgs"].values()) for r in group)
            share = {t: statistics.median(r["network"][t] / sum(r["network"].values()) for r in group) for t in terms}
            largest = max(share, key=share.__getitem__)
            print(f"| {style} | {size} | {group[0]['iterations']} | {total:.2f} | "
                  + " | ".join(f"{ratio[t]:.2f}" for t in terms) + f" | {largest} {share[largest]:.0%} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
