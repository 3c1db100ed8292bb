"""Benchmark: how many L-BFGS iterations a fast network's output is worth (issue 12, point 4;
Johnson et al. 2016, Fig. 5) — not a test.

For each style of a model with a recorded objective (a multi-style model, or a one-style model
trained on the "gatys" objective) and each held-out photo, at each size: the network's output
is scored on that style's objective by ``impasto.evaluate`` (float32), then ``impasto transfer
--scales 1`` from white noise minimises the same objective (``Objective.transfer_config``), and
the first iteration whose image scores lower, in float32 too, is what the network is worth.
The transfer's own per-iteration losses (bf16 where the CPU has it, within 0.4 % of float32,
docs/benchmarks.md) only locate the crossing: every image from a little before it is rescored in
float32, so the reported iteration is the float32 one. ">N" means L-BFGS had not passed the
network after the --max-iterations cap.

`fast_latency.py --quality` compares the style term alone against a fixed 300-iteration
transfer at the default objective; this script answers the issue's question on the objective
the network was trained on, including its content and TV terms.

The recorded objective sums its content term over positions, as the paper does, and holds each
Gram matrix per position: on a photo of four times the training crop's area the content weighs
four times as much against the style as it did in training. ``--content-per-position`` scores on
Johnson et al.'s normalisation instead (the content term per position, α times the crop's pixels
over the photo's), which is the same objective on the training's square crops.

    python bench/fast_worth.py multi.pt --photos 8 --sizes 256 512            # the real run (hours)
    python bench/fast_worth.py multi.pt --photos 1 --sizes 64 --max-iterations 20 --style starry_night  # smoke

Prints describe_cpu() and a Markdown table; --json writes every row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import impasto
from impasto import images
from impasto.config import TransferConfig
from impasto.events import CancelToken, Iteration
from impasto.fast.model import FastModel
from impasto.fast.multistyle.model import Objective
from impasto.fast.styles import describe_file, resolve
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos
from impasto.runtime import describe_cpu

ROOT = Path(__file__).resolve().parents[2] / "shared"
PAINTINGS = ROOT / "images" / "style"
PHOTOS = ROOT / "data" / "photos"
# Reported losses within this fraction of the target start the float32 rescoring.
BRACKET = 0.02


def passing_iterations(photo: torch.Tensor, painting: Path, config: TransferConfig, targets: Sequence[float]
                       ) -> tuple[list[int | None], float, float]:
    """For each of ``targets``, the first iteration of the transfer ``config`` (L-BFGS from noise
    at one scale, as the callers set it) whose float32 loss is below it, or None; the last
    iterate's float32 loss; the transfer's seconds. The transfer stops once its own loss is
    clearly below every target (by more than BRACKET, far beyond the 0.4 % between its precision
    and float32), so a run costs what the networks are worth, not the cap."""
    iterates: list[tuple[int, float, torch.Tensor]] = []
    passed = CancelToken()
    lowest = min(targets)

    def keep(event: Iteration) -> None:
        iterates.append((event.step, event.losses["total"], event.image().detach().cpu().half()))
        if event.losses["total"] < lowest * (1 - BRACKET):
            passed.cancel()

    start = time.perf_counter()
    impasto.transfer(photo, painting, config, keep, cancel=passed)
    seconds = time.perf_counter() - start
    scored: dict[int, float] = {}

    def float32_loss(i: int) -> float:
        if i not in scored:
            scored[i] = float(impasto.evaluate(iterates[i][2].float(), photo, painting, config).total)
        return scored[i]

    def crossing(target: float) -> int | None:
        first = next((i for i, (_, loss, _) in enumerate(iterates) if loss <= target * (1 + BRACKET)), None)
        if first is None:
            return None
        return next((iterates[i][0] for i in range(max(0, first - 3), len(iterates)) if float32_loss(i) < target),
                    None)

    return [crossing(t) for t in targets], float32_loss(len(iterates) - 1), seconds


def per_position(objective: Objective, photo: torch.Tensor, crop: int) -> Objective:
    """``objective`` with its content term per position, as Johnson et al. normalise theirs: α
    times the training crop's pixels over the photo's. On the training's square crops it is the
    recorded objective itself; at other sizes it keeps their balance of content and style, where
    the recorded sum over positions weighs the content by the photo's area."""
    height, width = photo.shape[-2:]
    return replace(objective, content_weight=objective.content_weight * crop * crop / (height * width))


def style_rows(model: FastModel, objective: Objective, painting: Path, photos: list[Path], sizes: list[int],
               max_iterations: int, crop: int | None = None) -> list[dict[str, Any]]:
    """One row per size and photo; with ``crop``, on the ``per_position`` form of the objective."""
    rows = []
    for size in sizes:
        for path in photos:
            photo = images.resize_long_side(images.load_image(path), size)
            scored = objective if crop is None else per_position(objective, photo, crop)
            output = stylize(model, photo)
            fast = float(impasto.evaluate(output, photo, painting, scored.transfer_config(size)).total)
            lbfgs = scored.transfer_config(size, iterations=max_iterations, seed=0, init="noise")
            (worth,), final, seconds = passing_iterations(photo, painting, lbfgs, [fast])
            row = {"style": model.style, "size": size, "photo": path.name, "network_loss": fast,
                   "worth": worth, "lbfgs_last_loss": final, "lbfgs_seconds": round(seconds, 1),
                   "max_iterations": max_iterations, "content_weight": scored.content_weight}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def styles_of(spec: str, only: list[str] | None, paintings: Path) -> list[tuple[FastModel, Objective, Path]]:
    """(bound network, objective, painting) per style of the model; the painting by the style's
    recorded file name, else ``<name>.jpg``, in --paintings."""
    entries = describe_file(spec)
    out = []
    for entry in entries:
        if only and entry["name"] not in only:
            continue
        if entry["objective"] is None:
            sys.exit(f"{entry['name']}: no objective to score on ({entry.get('objective_reason')})")
        objective = Objective.from_dict(entry["objective"], entry["name"])
        model = resolve(spec, entry["name"] if entry["kind"] == "multi-style" else None)
        painting = (entry.get("training") or {}).get("painting") or f"{entry['name']}.jpg"
        out.append((model, objective, paintings / painting))
    return out


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every bench that scores a model's styles on held-out photos against L-BFGS:
    the model, which styles, photos, sizes and paintings, and the JSON rows."""
    parser.add_argument("model", help="a multi-style model file, or a one-style model trained on 'gatys'")
    parser.add_argument("--style", nargs="+", help="only these styles (default: all)")
    parser.add_argument("--photos", type=int, default=8, help="held-out photos per style (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--data", type=Path, default=PHOTOS, help="the training photos (their held-out slice)")
    parser.add_argument("--holdout-percent", type=float, default=2.0, help="as the training's (default: 2)")
    parser.add_argument("--paintings", type=Path, default=PAINTINGS, help="folder of the paintings")
    parser.add_argument("--json", type=Path, help="write every row here")


def held_out_photos(args: argparse.Namespace) -> list[Path]:
    """The first ``--photos`` held-out photos of ``--data`` (options of ``add_scoring_arguments``)."""
    return Photos(args.data, args.holdout_percent).held_out[: args.photos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scoring_arguments(parser)
    parser.add_argument("--max-iterations", type=int, default=300)
    parser.add_argument("--content-per-position", action="store_true",
                        help="score on the objective with its content term per position (Johnson et al.'s "
                             "normalisation; the recorded one on the training's square crops)")
    args = parser.parse_args()
    crop = describe_file(args.model)[0]["training"]["settings"]["crop_size"] if args.content_per_position else None
    print(describe_cpu(), f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    photos = held_out_photos(args)
    rows = []
    for model, objective, painting in styles_of(args.model, args.style, args.paintings):
        rows += style_rows(model, objective, painting, photos, args.sizes, args.max_iterations, crop)
    print(f"CPU: {describe_cpu()}" + ("; content term per position" if crop else "") + "\n")
    print("| style | size | photos | network loss (median) | L-BFGS iterations worth: median | min | each |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for style in dict.fromkeys(r["style"] for r in rows):
        for size in args.sizes:
            group = [r for r in rows if r["style"] == style and r["size"] == size]
            worth = [r["worth"] if r["worth"] is not None else args.max_iterations + 1 for r in group]
            each = ", ".join(str(r["worth"]) if r["worth"] is not None else f">{args.max_iterations}" for r in group)
            def shown(value: float) -> str:
                return f">{args.max_iterations}" if value > args.max_iterations else f"{value:g}"

            print(f"| {style} | {size} | {len(group)} | {statistics.median(r['network_loss'] for r in group):.4g} "
                  f"| {shown(statistics.median(worth))} | {shown(min(worth))} | {each} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
