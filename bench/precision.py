"""Does bfloat16 worsen the result? bf16 and fp32 runs of the same settings over several seeds,
each output scored by the float32 paper objective (`impasto.evaluate`). Not a test.

    python bench/precision.py --size 256 --seeds 0 1 2

Prints a Markdown table: per seed, the fp32-evaluated loss of each precision's result, their
ratio, and each run's wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import impasto
from impasto.gatys.schedule import plan

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT = SHARED / "content" / "tubingen.jpg"
STYLE = SHARED / "style" / "starry_night.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    base = impasto.TransferConfig(size=args.size)
    sizes = [s.size for s in plan(base)]
    print(f"size {args.size}, scales {sizes}, iterations {base.coarse_iterations}/{base.iterations}\n")
    print("| seed | bf16 loss | fp32 loss | bf16 / fp32 | bf16 s | fp32 s |")
    print("|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for seed in args.seeds:
        row = {}
        for precision in ("bf16", "fp32"):
            config = dataclasses.replace(base, seed=seed, precision=precision)
            result = impasto.transfer(CONTENT, STYLE, config)
            row[precision] = (impasto.evaluate(result.tensor, CONTENT, STYLE, config).total.item(), result.seconds)
        ratios.append(row["bf16"][0] / row["fp32"][0])
        print(f"| {seed} | {row['bf16'][0]:.4g} | {row['fp32'][0]:.4g} | {ratios[-1]:.3f} "
              f"| {row['bf16'][1]:.1f} | {row['fp32'][1]:.1f} |", flush=True)
    print(f"\nmedian bf16/fp32 loss ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
