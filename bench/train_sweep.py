"""Benchmark: train fast style networks for a wall-time budget each, then score them (not a test).

For a machine lent for minutes (a GPU): each job of a JSON file trains one network with
`impasto.fast.single.train` for about its ``seconds`` of training time. A short first stint measures the
time per iteration; the run then resumes from its checkpoint up to the iteration count the
budget allows (batches are seeded by iteration, so this is the same run as one uninterrupted).
Afterwards every model is scored as `fast_latency.py --quality` does: the paper's style loss of
its output on held-out photos against a 300-iteration `impasto transfer` of the same pair.

    python bench/train_sweep.py bench/sweeps/gpu.json --out bench_out/sweep --workers 12

A job: {"name": "starry_gatys", "style": "starry_night.jpg", "seconds": 120,
        "objective": "gatys", "settings": {"variant": "lite", "batch_size": 8}}
with ``style`` relative to --styles, ``settings`` any TrainConfig fields and an optional
``quality`` (photos scored, default --quality). Writes per job the
model, its JSON record and a folder of preview strips, then summary.json; prints Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fast_latency import PHOTOS, ROOT, style_loss_rows
from impasto.config import train_config
from impasto.events import TrainStep
from impasto.fast.model import read_model
from impasto.fast.single.train import train
from impasto.fast.training.data import Photos

CALIBRATION = 60  # iterations of the first stint; the first few include start-up


def train_job(job: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    style = args.styles / job["style"]
    out = args.out / f"{job['name']}.pt"
    settings = {"workers": args.workers, "checkpoint_every": 0, "preview_every": 0, **job.get("settings", {})}
    config = train_config(job.get("objective", "relative"), iterations=CALIBRATION, **settings)
    stamps: list[float] = []

    def clock(step: TrainStep) -> None:
        stamps.append(step.seconds)

    first = train(style, args.data, out, dataclasses.replace(config, checkpoint_every=CALIBRATION),
                  style_name=style.stem, on_event=clock)
    per_iteration = (stamps[-1] - stamps[CALIBRATION // 2]) / (len(stamps) - 1 - CALIBRATION // 2)
    iterations = max(CALIBRATION, int((job["seconds"] - first.seconds) / per_iteration) // 100 * 100)
    print(f"{job['name']}: {per_iteration * 1000:.1f} ms/iteration, training to {iterations}",
          file=sys.stderr, flush=True)
    full = dataclasses.replace(config, iterations=iterations, preview_every=max(1, iterations // 4),
                               checkpoint_every=iterations)
    result = train(style, args.data, out, full, style_name=style.stem, resume=True,
                   preview_dir=args.out / f"{job['name']}_previews")
    return {"name": job["name"], "style": job["style"], "objective": full.objective,
            "iterations": result.iterations, "seconds": round(result.seconds, 1),
            "ms_per_iteration": round(per_iteration * 1000, 2), "settings": job.get("settings", {}),
            "quality_photos": job.get("quality", args.quality),
            "validation": result.validation[-1] if result.validation else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jobs", type=Path, help="JSON list of jobs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=PHOTOS)
    parser.add_argument("--styles", type=Path, default=ROOT / "images" / "style")
    parser.add_argument("--workers", type=int, default=0, help="photo-decoding processes per run")
    parser.add_argument("--quality", type=int, default=3, metavar="N", help="held-out photos scored per model")
    parser.add_argument("--quality-size", type=int, default=256)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Fixed crop sizes: let cuDNN pick the fastest kernels once.
    torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    results = [train_job(job, args) for job in json.loads(args.jobs.read_text())]
    print(f"training done after {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    references: dict[str, dict[Path, tuple[float, float]]] = {}
    for result in results:
        model = read_model(args.out / f"{result['name']}.pt")
        photos = Photos(args.data, model.training["settings"]["holdout_percent"]).held_out[: result["quality_photos"]]
        rows = style_loss_rows(model, args.styles / result["style"], photos, args.quality_size, 300,
                               references.setdefault(result["style"], {}))
        result["quality"] = rows
        result["ratio"] = statistics.geometric_mean(r["ratio"] for r in rows)
        (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print("| job | objective | iterations | training s | ms/it | content (val.) | style (val.) | fast / transfer |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        val = r["validation"] or {}
        print(f"| {r['name']} | {r['objective']} | {r['iterations']} | {r['seconds']:.0f} | {r['ms_per_iteration']} "
              f"| {val.get('content', float('nan')):.3g} | {val.get('style', float('nan')):.3g} | {r['ratio']:.2f} |")
    print(f"all done after {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
