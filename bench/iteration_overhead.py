"""How much one impasto iteration costs above the bare network, in the same process.

The bare step is VGG-19 forward to the deepest layer in use and backward, with the paper's
Grams and losses (``impasto.losses.objective``) and nothing else: no optimiser, no bookkeeping.
An impasto iteration is what ``impasto.transfer`` does per iteration at one scale: the same
evaluation plus L-BFGS's update (history 100), the best-image copy, the event and the history row.
Blocks of each alternate, so that a machine whose speed drifts treats both alike; the table
gives medians, the CPU and the number format the defaults choose there.

    python bench/iteration_overhead.py --size 512 --steps 10 --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import torch

from impasto import images
from impasto.config import TransferConfig
from impasto.events import Iteration
from impasto.gatys.api import build_problem
from impasto.gatys.loop import Progress, initial, optimise_scale
from impasto.gatys.schedule import Scale
from impasto.gatys.targets import targets
from impasto.losses import objective
from impasto.runtime import describe_cpu

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def bare_steps(problem, scale_targets, x: torch.Tensor, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        x.grad = None
        image = problem.to_network(x)
        features = problem.net(problem.runtime.prepare(image), problem.layers)
        objective(features, image, scale_targets, problem.weights).total.backward()
        times.append(time.perf_counter() - start)
    return times


def impasto_steps(problem, scale: Scale, scale_targets, start: torch.Tensor) -> list[float]:
    stamps: list[float] = []

    def clock(event: Iteration) -> None:
        stamps.append(event.seconds)

    progress = Progress(1, scale.iterations, time.perf_counter())
    optimise_scale(problem, scale, scale_targets, start, progress, clock)
    # The first iteration pays L-BFGS's set-up; the rest are the steady state.
    return [b - a for a, b in itertools.pairwise(stamps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10, help="iterations per block")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks of each")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    config = TransferConfig(size=args.size, scales=1, iterations=args.steps + 1, seed=0, precision=args.precision)
    content = images.load_image(SHARED / "content" / "tubingen.jpg")
    style = images.load_image(SHARED / "style" / "starry_night.jpg")
    problem = build_problem(content, [style], config, ())
    scale = Scale(0, args.size, args.steps + 1)
    scale_targets = targets(problem, args.size)
    generator = torch.Generator().manual_seed(0)
    start = initial(problem, scale, Progress(1, 1, 0.0), generator)
    x = start.clone().requires_grad_(True)
    bare_steps(problem, scale_targets, x, 2)  # warm-up: kernel selection, allocator
    bare, ours = [], []
    for _ in range(args.rounds):
        bare += bare_steps(problem, scale_targets, x, args.steps)
        ours += impasto_steps(problem, scale, scale_targets, start)
    b, o = statistics.median(bare), statistics.median(ours)
    h, w = problem.shape_at(args.size)
    print(f"CPU: {describe_cpu()}; precision {problem.runtime.precision}; {w}x{h}; "
          f"{len(bare)} bare steps, {len(ours)} impasto iterations")
    print("| step | median s | ratio |")
    print("|---|---:|---:|")
    print(f"| bare VGG-19 forward+backward with the paper's Grams | {b:.3f} | 1.00 |")
    print(f"| impasto iteration (L-BFGS, history 100) | {o:.3f} | {o / b:.2f} |")


if __name__ == "__main__":
    main()
