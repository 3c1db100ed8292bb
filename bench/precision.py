"""Does bfloat16 worsen the result? bf16 runs without and with the float32 polish (the default
last 10 iterations in fp32) against fp32 runs of the same settings over several seeds, each
output scored by the float32 paper objective (`impasto.evaluate`). Not a test.

    python bench/precision.py --size 256 --seeds 0 1 2

Prints a Markdown table: per seed, the fp32-evaluated loss of each run's result, the ratios to
the fp32 run's, and each run's wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import impasto

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT = SHARED / "content" / "tubingen.jpg"
STYLE = SHARED / "style" / "starry_night.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    base = impasto.TransferConfig(size=args.size)
    print(f"size {args.size}, scales {base.scale_sizes()}, iterations {base.coarse_iterations}/{base.iterations}\n")
    runs = {
        "bf16, no polish": {"precision": "bf16", "polish_iterations": 0},
        f"bf16, polish {base.polish_iterations}": {"precision": "bf16"},
        "fp32": {"precision": "fp32"},
    }
    names = list(runs)
    print("| seed | " + " | ".join(f"{n}: loss" for n in names) + " | "
          + " | ".join(f"{n} / fp32" for n in names[:-1]) + " | " + " | ".join(f"{n}: s" for n in names) + " |")
    print("|---:|" + "---:|" * (3 * len(names) - 1))
    ratios: dict[str, list[float]] = {n: [] for n in names[:-1]}
    for seed in args.seeds:
        row = {}
        for name, change in runs.items():
            config = dataclasses.replace(base, seed=seed, **change)
            result = impasto.transfer(CONTENT, STYLE, config)
            row[name] = (impasto.evaluate(result.tensor, CONTENT, STYLE, config).total.item(), result.seconds)
        for name in names[:-1]:
            ratios[name].append(row[name][0] / row["fp32"][0])
        print(f"| {seed} | " + " | ".join(f"{row[n][0]:.4g}" for n in names) + " | "
              + " | ".join(f"{ratios[n][-1]:.3f}" for n in names[:-1]) + " | "
              + " | ".join(f"{row[n][1]:.1f}" for n in names) + " |", flush=True)
    for name, values in ratios.items():
        print(f"\nmedian {name} / fp32 loss ratio: {statistics.median(values):.3f}")


if __name__ == "__main__":
    main()
