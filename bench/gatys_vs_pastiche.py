"""Benchmark: `impasto transfer` against `pastiche` on the paper's objective, as loss against wall
time (not a test).

Every tool runs the objective of Gatys et al. (2016) with the same original VGG-19 weights, the
same images and L-BFGS (history 100, one evaluation per step): content on relu4_2, style on
relu1_1 ... relu5_1 (w_l = 1/5), α/β = 1e-3. pastiche runs at its best documented settings for
that objective, at the objective's natural scale: its loss is cw·c·mean((F−P)²) + Σ w_l·mean((G/M −
A/M)²), which is the paper's exactly when the content weight cw = α·N·M/2 (N, M of relu4_2 at the
working size), its content-layer weight c = 1 (its default is 0.01) and w_l = β/20 = 50; its own
default content weight 1 would put its L-BFGS on a 1e5-times different gradient scale, which is
not a fair baseline. Both tools read the same two files: the photo and the painting resized once
(long side ``--size``, impasto's antialiased resize) and saved as PNG, so neither resamples them
(pastiche would otherwise resize with plain bilinear and match the painting's area rather than
its long side, which changes the targets). On those files pastiche's own loss equals
``impasto.evaluate`` to four digits (checked on both tools' outputs, 2026-11-30).

Both start from white noise (each tool's own: pastiche's unit normal noise in its mean-subtracted
0-255 space, impasto's ±1 grey level around the mean colour: the same noise in distribution) or
from the photo, with seed 0.

Each run saves its image every ``--every`` iterations; the wall time of a snapshot is its file's
modification time minus the moment the command was launched (imports, weights and targets
included for both tools). After all runs, every snapshot is scored by one function,
``impasto.evaluate`` in float32 at the final size (a coarse-scale snapshot upsampled first, as a
user would see it), giving one loss-against-time curve per run on one plot. The table reads off
the curves how soon each run passes pastiche's loss after 100, 200 and 300 iterations.

    python bench/gatys_vs_pastiche.py --out bench_out/gatys          # 512 px, noise and content
    python bench/gatys_vs_pastiche.py --size 128 --iterations 20 --out /tmp/g   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import impasto
from impasto import images, storage
from impasto.runtime import describe_cpu
from impasto.vgg import CHANNELS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
PHOTO = SHARED / "content" / "tubingen.jpg"
PAINTING = SHARED / "style" / "starry_night.jpg"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MILESTONES = (100, 200, 300)


def pastiche_weights(size: tuple[int, int], alpha: float, beta: float) -> tuple[float, list[float]]:
    """pastiche's content weight and style layer weights making its loss exactly the paper's."""
    h, w = size
    n, m = CHANNELS["relu4_2"], (h // 8) * (w // 8)
    return alpha * n * m / 2, [beta / (4 * len(STYLE_LAYERS))] * len(STYLE_LAYERS)


def prepare_inputs(size: int, folder: Path) -> tuple[Path, Path]:
    """The photo and the painting at long side ``size``, as PNG files both tools read unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "content.png", folder / "style.png"
    for source, path in zip((PHOTO, PAINTING), paths, strict=True):
        images.save_image(images.resize_long_side(images.load_image(source), size), path)
    return paths


def pastiche_command(args: argparse.Namespace, init: str, folder: Path, size: tuple[int, int]) -> list[str]:
    config = impasto.TransferConfig()
    cw, sw = pastiche_weights(size, config.content_weight, config.style_weight)
    exe = shutil.which("pastiche") or str(Path(sys.executable).with_name("pastiche"))
    start = ["--random-init"] if init == "noise" else []  # pastiche starts from the photo by default
    return [exe, *start, "--seed", "0", "--size", str(args.size), "--num-steps", str(args.iterations),
            "--optimizer", "lbfgs", "--content-layers", "block4_relu2",
            "--style-layers", *(f"block{n[4]}_relu{n[6]}" for n in STYLE_LAYERS), "--content-weight", repr(cw),
            "--content-layer-weights", "1.0", "--style-layer-weights", *map(repr, sw), "--style-size", str(args.size),
            "--content", str(args.content), "--styles", str(args.style),
            "--workspace", str(folder), "--workspace-step", str(args.every), "--output", str(folder / "final.png"),
            "--no-verbose"]


def impasto_command(args: argparse.Namespace, init: str, folder: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "impasto", "transfer", str(args.content), str(args.style),
            "-o", str(folder / "final.png"),
            "--size", str(args.size), "--seed", "0", "--init", init, "--snapshot-every", str(args.every),
            "--snapshot-dir", str(folder), "--history", str(folder / "history.json"), "--quiet", *extra]


def runs(args: argparse.Namespace, init: str, size: tuple[int, int]) -> dict[str, tuple[list[str], Path]]:
    root = args.out / init
    folders = {name: root / key for key, name in (
        ("pastiche", f"pastiche 1.6, {args.iterations} it."),
        ("defaults", "impasto defaults"),
        ("single", f"impasto --scales 1, {args.iterations} it."),
    )}
    names = list(folders)
    commands = {
        "pastiche": pastiche_command(args, init, folders[names[0]], size),
        "defaults": impasto_command(args, init, folders[names[1]], args.defaults),
        "single": impasto_command(args, init, folders[names[2]],
                                  ["--scales", "1", "--iterations", str(args.iterations)]),
    }
    return {name: (commands[key], folders[name]) for key, name in zip(commands, names, strict=True) if key in args.runs}


def timed(cmd: list[str], folder: Path) -> dict:
    """Run a command; return its wall time and each snapshot's (iteration, seconds since launch)."""
    # An earlier run's snapshots would be read as this one's (with times before its launch).
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    launched = time.time()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    snaps = []
    for path in sorted(folder.glob("*.png")):
        digits = "".join(c for c in path.stem if c.isdigit())
        if digits and path.name != "final.png":
            snaps.append((int(digits), path.stat().st_mtime - launched, path))
    return {"wall": wall, "snapshots": sorted(snaps)}


def score(run: dict, shape: tuple[int, int], config: impasto.TransferConfig, args: argparse.Namespace) -> None:
    """The paper's loss (float32, final size) of each snapshot and of the output."""
    points = []
    for iteration, seconds, path in run["snapshots"]:
        image = images.resize_to(images.load_image(path), *shape)
        loss = impasto.evaluate(image, args.content, args.style, config).as_floats()["total"]
        points.append((iteration, seconds, loss))
    run["curve"] = points
    run["final"] = impasto.evaluate(run["folder"] / "final.png", args.content, args.style, config).as_floats()["total"]
    del run["snapshots"]


def passed(curve: list[tuple[int, float, float]], loss: float) -> float | None:
    """The first time a curve is at or below ``loss``, read off the plotted line: linearly
    interpolated between the snapshot before and the one that passes (snapshots every 10
    iterations are 15-25 s apart; taking the later one would add half a step on average)."""
    before: tuple[float, float] | None = None
    for _, seconds, value in curve:
        if value <= loss:
            if before is None or before[1] <= value:
                return seconds
            t0, v0 = before
            return t0 + (seconds - t0) * (v0 - loss) / (v0 - value)
        before = (seconds, value)
    return None


def table(results: dict[str, dict], iterations: int) -> list[str]:
    names = list(results)
    pastiche = results[names[0]]
    targets = {m: next((v for i, _, v in pastiche["curve"] if i == m), None) for m in MILESTONES if m <= iterations}
    head = "| run | wall s | final loss | " + " | ".join(f"s to pastiche@{m} ({t:.4g})" if t else f"@{m}"
                                                      for m, t in targets.items()) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(targets)]
    for name in names:
        run = results[name]
        cells = []
        for target in targets.values():
            ours = passed(run["curve"], target) if target else None
            theirs = passed(pastiche["curve"], target) if target else None
            ratio = f" ({theirs / ours:.2f}x)" if ours and theirs and name != names[0] else ""
            cells.append(f"{ours:.0f}{ratio}" if ours is not None else "never")
        lines.append(f"| {name} | {run['wall']:.0f} | {run['final']:.4g} | " + " | ".join(cells) + " |")
    return lines


def previews(results: dict[str, dict]) -> list[str]:
    """When each multi-scale impasto run showed the end of its coarsest scale, and finished."""
    lines = []
    for name, run in results.items():
        history = run["folder"] / "history.json"
        if not name.startswith("impasto") or not history.exists():
            continue
        rows = storage.read_json(history)
        rows = rows["history"]
        first = [r for r in rows if r.get("scale") == 0]
        if len(first) == len(rows):
            continue
        end = len(first)
        when = next((s for i, s, _ in run["curve"] if i == end), None)
        shape = f"{first[-1]['width']}x{first[-1]['height']}"
        if when is not None:
            lines.append(f"{name}: the {shape} scale's last iterate ({end} it.) at {when:.0f} s after launch; "
                         f"the final image at {run['wall']:.0f} s.")
    return lines


def plot(all_results: dict[str, dict[str, dict]], path: Path, cpu: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(6.5 * len(all_results), 4.5), squeeze=False)
    for ax, (init, results) in zip(axes[0], all_results.items(), strict=True):
        for name, run in results.items():
            xs = [s for _, s, _ in run["curve"]]
            ys = [v for _, _, v in run["curve"]]
            ax.plot(xs, ys, label=name)
        finals = [r["final"] for r in results.values()]
        # The tail, where the runs differ: a coarse scale's upsampled iterates start far above it.
        ax.set_ylim(min(finals) * 0.97, min(finals) * 1.6)
        ax.set_xlabel("wall seconds since launch")
        ax.set_ylabel("paper objective (float32)")
        ax.set_title(f"{init} init")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(cpu, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench_out/gatys"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=300, help="pastiche's and the single-scale run's")
    parser.add_argument("--every", type=int, default=10, help="snapshot interval (iterations)")
    parser.add_argument("--inits", nargs="+", default=["noise", "content"], choices=["noise", "content"])
    parser.add_argument("--runs", nargs="+", default=["pastiche", "defaults", "single"],
                        choices=["pastiche", "defaults", "single"], help="which runs (pastiche first: the reference)")
    parser.add_argument("--defaults", nargs="*", default=[], metavar="ARG",
                        help="extra arguments of the 'impasto defaults' run (none: the defaults)")
    parser.add_argument("--replot", action="store_true", help="redraw the plot from --out's results.json only")
    args = parser.parse_args()
    if args.replot:
        recorded = json.loads((args.out / "results.json").read_text())
        plot(recorded["runs"], args.out / "loss_vs_time.png", recorded["cpu"])
        return
    config = impasto.TransferConfig(size=args.size)
    args.content, args.style = prepare_inputs(args.size, args.out)
    shape = tuple(images.load_image(args.content).shape[-2:])
    print(f"CPU: {describe_cpu()}", file=sys.stderr)
    all_results: dict[str, dict[str, dict]] = {}
    for init in args.inits:
        results = {}
        for name, (cmd, folder) in runs(args, init, shape).items():
            results[name] = {**timed(cmd, folder), "folder": folder, "command": cmd}
        for run in results.values():
            score(run, shape, config, args)
        all_results[init] = results
    lines = [f"CPU: {describe_cpu()}; {shape[1]}x{shape[0]}, snapshots every {args.every} iterations", ""]
    for init, results in all_results.items():
        lines += [f"**{init} init**", "", *table(results, args.iterations), "", *previews(results), ""]
    print("\n".join(lines))
    storage.write_text(args.out / "results.md", "\n".join(lines) + "\n")
    recorded = {"cpu": describe_cpu(), "runs": all_results}
    storage.write_text(args.out / "results.json", json.dumps(recorded, indent=1, default=os.fspath))
    plot(all_results, args.out / "loss_vs_time.png", recorded["cpu"])


if __name__ == "__main__":
    main()
