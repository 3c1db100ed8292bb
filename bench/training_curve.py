"""The held-out curve of a training: content, style and total held-out loss against iterations,
with the training hours on a second axis, from the model file or checkpoint the run wrote (both
record every held-out evaluation: any-painting and multi-style trainings; a multi-style file
continued with --init-from carries the curve of the runs before it) — not a test.

    python bench/training_curve.py src/impasto/models/arbitrary/any_painting.pt -o docs/arbitrary_curve.png
    python bench/training_curve.py training/fig3_w32_grid.pt -o curve.png --units "paper units"
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from impasto import storage
from impasto.storage import load_torch


def held_out_rows(path: Path) -> list[dict[str, Any]]:
    """The held-out evaluations a model file (``training.validation``) or checkpoint records."""
    record = load_torch(path, str(path), "model file")
    rows = record.get("validation") or (record.get("training") or {}).get("validation") or []
    if not rows:
        raise SystemExit(f"{path}: no held-out evaluations recorded")
    return sorted(rows, key=lambda r: r["iteration"])


def plot(rows: list[dict[str, Any]], title: str, output: Path, units: str = "relative units") -> None:
    iterations = [r["iteration"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    for key, colour in (("total", "black"), ("style", "tab:red"), ("content", "tab:blue")):
        ax.plot(iterations, [r[key] for r in rows], marker="o", markersize=3, color=colour, label=key)
    ax.set_xlabel("iteration (batches of the training)")
    ax.set_ylabel(f"held-out loss ({units})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=title, title_fontsize=8)
    # Hours of training at the iterations where they were measured (evaluations excluded).
    hours = ax.secondary_xaxis("top", functions=(
        lambda x: _interpolate(x, iterations, [r["seconds"] / 3600 for r in rows]),
        lambda h: _interpolate(h, [r["seconds"] / 3600 for r in rows], iterations)))
    hours.set_xlabel("training hours", fontsize=8)
    fig.tight_layout()
    with storage.atomic_file(output) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def _interpolate(x: Any, xs: list[float], ys: list[float]) -> Any:
    return np.interp(x, xs, ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model file or its training checkpoint")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default="held-out photos × held-out paintings")
    parser.add_argument("--units", default="relative units", help="what the losses are in, for the axis")
    args = parser.parse_args()
    rows = held_out_rows(args.model)
    plot(rows, args.title, args.output, args.units)
    print("| iteration | hours | content | style | total |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['iteration']} | {r['seconds'] / 3600:.2f} | {r['content']:.4g} | {r['style']:.4g} "
              f"| {r['total']:.4g} |")


if __name__ == "__main__":
    main()
