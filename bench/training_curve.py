"""The held-out curve of a training: content, style and total held-out loss against iterations,
with the training hours on a second axis, from the model file or checkpoint the run wrote (both
record every held-out evaluation: any-painting and multi-style trainings; a multi-style file
continued with --init-from carries the curve of the runs before it) — not a test.

``--history JSON`` adds the rows ``bench/heldout_history.py`` computed for versions of the file
from before it recorded its curve (scored the same way, so they continue it). Where the rows have
a lattice term (``grid``, a training aid against hatching, not part of the style's objective),
the plot shows it apart from the objective, content + style.

    python bench/training_curve.py src/impasto/models/arbitrary/any_painting.pt -o docs/arbitrary_curve.png
    python bench/training_curve.py training/fig3_w32_grid.pt -o curve.png --units "paper units"
    python bench/heldout_history.py --history src/impasto/models/multistyle/paper_fig3.pt \
        --like src/impasto/models/multistyle/paper_fig3.pt --json history.json
    python bench/training_curve.py src/impasto/models/multistyle/paper_fig3.pt --history history.json \
        -o docs/multistyle_curve.png --units "paper units" --title "4 held-out photos × 5 paintings"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from impasto import storage
from impasto.storage import load_torch


def held_out_rows(path: Path) -> list[dict[str, Any]]:
    """The held-out evaluations a model file (``training.validation``) or checkpoint records."""
    record = load_torch(path, str(path), "model file")
    rows = record.get("validation") or (record.get("training") or {}).get("validation") or []
    if not rows:
        raise SystemExit(f"{path}: no held-out evaluations recorded")
    return sorted(rows, key=lambda r: r["iteration"])


def with_history(rows: list[dict[str, Any]], history: Path) -> list[dict[str, Any]]:
    """``rows`` and the ``held_out`` rows of a ``heldout_history.py`` JSON, one per iteration (the
    recorded one where both have it), by iteration."""
    earlier = {r["held_out"]["iteration"]: r["held_out"] for r in json.loads(history.read_text())}
    return sorted({**earlier, **{r["iteration"]: r for r in rows}}.values(), key=lambda r: r["iteration"])


def curves(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The lines to draw: total, style, content; with a lattice term, the objective (content +
    style + tv) in place of the total, and the term itself."""
    if not any(r.get("grid") for r in rows):
        return {key: [r[key] for r in rows] for key in ("total", "style", "content")}
    return {"content + style": [r["content"] + r["style"] + r.get("tv", 0.0) for r in rows],
            "style": [r["style"] for r in rows], "content": [r["content"] for r in rows],
            "lattice term (training only)": [r.get("grid", 0.0) for r in rows]}


def plot(rows: list[dict[str, Any]], title: str, output: Path, units: str = "relative units") -> None:
    iterations = [r["iteration"] for r in rows]
    lines = curves(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    for (key, values), colour in zip(lines.items(), ("black", "tab:red", "tab:blue", "tab:grey"), strict=False):
        ax.plot(iterations, values, marker="o", markersize=3, color=colour, label=key)
    if max(max(v) for v in lines.values()) > 20 * min(min(v) for v in lines.values() if min(v) > 0):
        ax.set_yscale("log")
    ax.set_xlim(iterations[0], iterations[-1])
    ax.set_xlabel("iteration (batches of the training)")
    ax.set_ylabel(f"held-out loss ({units})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=title, title_fontsize=8)
    # Hours of training at the iterations where they were measured (evaluations excluded).
    spent = [r["seconds"] / 3600 for r in rows]
    hours = ax.secondary_xaxis("top", functions=(lambda x: _interpolate(x, iterations, spent),
                                                 lambda h: _interpolate(h, spent, iterations)))
    # Ticks only inside the measured hours: the interpolation clamps outside them, which would
    # stack ticks of hours never reached on the first iteration.
    hours.set_xticks([t for t in MaxNLocator(8).tick_values(spent[0], spent[-1]) if spent[0] <= t <= spent[-1]])
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
    parser.add_argument("--history", type=Path, help="rows of earlier versions from bench/heldout_history.py")
    args = parser.parse_args()
    rows = held_out_rows(args.model)
    if args.history:
        rows = with_history(rows, args.history)
    plot(rows, args.title, args.output, args.units)
    lines = curves(rows)
    print("| iteration | hours | " + " | ".join(lines) + " |\n|---:|---:|" + "---:|" * len(lines))
    for i, r in enumerate(rows):
        print(f"| {r['iteration']} | {r['seconds'] / 3600:.2f} | "
              + " | ".join(f"{values[i]:.4g}" for values in lines.values()) + " |")


if __name__ == "__main__":
    main()
