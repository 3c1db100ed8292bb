"""Peak memory and time per iteration of the Gatys transfer against output size, in one pass
over the whole image and tile by tile (gatys.tiles).

Each case runs in a fresh process, so its peak resident memory (getrusage) is its own: the
network, the targets at that size, and ``--iterations`` L-BFGS iterations of the final scale,
started from the content image upsampled (as a coarse-to-fine run's last scale starts), with
the history the memory plan allows. Usage:

    python bench/large.py --sizes 512 1024 2048 --modes off 512
    python bench/large.py --sizes 4096 --modes auto --iterations 1

``--modes``: "off" (one pass), "auto" (the default plan under --max-memory), or a tile size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT = SHARED / "content" / "tubingen.jpg"
STYLE = SHARED / "style" / "starry_night.jpg"


def run_case(size: int, mode: str, iterations: int, max_memory: float | None) -> dict[str, object]:
    """One case in this process: what it measured, as a JSON-ready row."""
    import torch

    from impasto import images
    from impasto.config import TransferConfig
    from impasto.gatys import memory
    from impasto.gatys.api import build_problem
    from impasto.gatys.loop import Progress, optimise_scale
    from impasto.gatys.schedule import Scale
    from impasto.gatys.targets import targets

    config = TransferConfig(size=size, tile=mode, max_memory=max_memory, iterations=iterations, scales=1, seed=0)
    problem = build_problem(CONTENT, STYLE, config, ())
    shape = problem.shape_at(size)
    layout = memory.plan(problem, shape, iterations)
    start = time.perf_counter()
    scale_targets = targets(problem, size)
    target_seconds = time.perf_counter() - start
    progress = Progress(1, iterations, time.perf_counter())
    x = images.resize_to(problem.content, *shape)
    optimise_scale(problem, Scale(0, size, iterations), scale_targets, x, progress)
    seconds = [row["seconds"] for row in progress.history]
    per_iteration = (seconds[-1] - seconds[0]) / (len(seconds) - 1) if len(seconds) > 1 else seconds[0]
    return {
        "size": size,
        "shape": f"{shape[1]}x{shape[0]}",
        "mode": mode,
        "tiles": _count(layout, shape),
        "history": layout.history,
        "estimate_gib": round(layout.bytes / 2**30, 2),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "targets_s": round(target_seconds, 1),
        "s_per_iteration": round(per_iteration, 1),
        "precision": problem.runtime.precision,
        "threads": torch.get_num_threads(),
    }


def _count(layout: object, shape: tuple[int, int]) -> int:
    from impasto.gatys import tiles

    tiling = getattr(layout, "tiling", None)
    return 1 if tiling is None else len(tiles.tiles(*shape, tiling))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--modes", nargs="+", default=["off", "512"])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--max-memory", type=float, help="GiB (default: the library's, a quarter of the RAM)")
    parser.add_argument("--case", nargs=2, metavar=("SIZE", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(int(args.case[0]), args.case[1], args.iterations, args.max_memory)))
        return
    from impasto.runtime import describe_cpu

    print(f"CPU: {describe_cpu()}")
    print("| size | shape | mode | tiles | L-BFGS pairs | estimate GiB | peak RSS GiB | targets s | s / iteration |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for size in args.sizes:
        for mode in args.modes:
            command = [sys.executable, __file__, "--case", str(size), mode, "--iterations", str(args.iterations)]
            if args.max_memory is not None:
                command += ["--max-memory", str(args.max_memory)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {size} | | {mode} | failed: {out.stderr.strip().splitlines()[-1:]} |", flush=True)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"| {row['size']} | {row['shape']} | {row['mode']} | {row['tiles']} | {row['history']} | "
                  f"{row['estimate_gib']} | {row['peak_gib']} | {row['targets_s']} | {row['s_per_iteration']} |",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
