"""Benchmark: a temporally consistent fast-network video in one piece vs split into segments
stylised in parallel by ``impasto batch`` (not a test).

A synthetic clip (a camera move over the example photo, ``impasto.video.synthetic``) is stylised:

* by ``stylize_video`` in this process, as ``impasto apply`` does, with every usable core's
  PyTorch threads, and with one thread (the reference of the frames: a worker's arithmetic);
* by ``impasto batch``'s runner as segments on a local pool (one thread a worker), with the
  warm-up of each segment set to 0, 1, 2 … key intervals (``--overlaps``);
* on a loopback Ray cluster of one node with W CPUs and of two nodes with W/2 each (the default
  overlap), unless ``--no-ray``; starting the cluster is not counted.

For each run: wall time, the speed-up over the faster sequential run, the CPU seconds of every
process of the run (workers, Ray's services, this process: what the run costs whatever else the
machine is doing, unlike its wall time; Linux), the warping error of the
written video (``impasto video-metrics``: Lai et al. 2018, DIS flow) and its change against the
sequential run's, the same over the frame pairs that straddle a cut between segments alone, and
how far the segments' frames, as computed (decoded from the lossless segment files, before the
H.264 writer), are from the sequential run's. For scale, the writer itself moves the frames of the
sequential run by the amount printed above the table.

    python bench/video_segments.py                                     # 384 x 288, 192 frames, 4 segments
    python bench/video_segments.py --size 192x144 --frames 96 --overlaps 0 1 2 3 --no-ray

Prints the CPU and a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

# bench/ is the script's folder, so on its import path; importing batch_scaling also keeps Ray on
# the loopback address.
from batch_scaling import loopback_cluster, tree_cpu
from impasto import batch, examples, images
from impasto.fast.frames import stylize_segment, stylize_video
from impasto.fast.styles import resolve
from impasto.fast.stylize import stylize
from impasto.runtime import describe_cpu
from impasto.video.metrics import WarpingError, frames_of, video_warping_error
from impasto.video.segments import OVERLAP_KEYS, plan, segment_length
from impasto.video.synthetic import MOVES, camera_clip, write_clip
from impasto.video.temporal import DEFAULT_INTERVAL, TemporalBlender


@dataclass(frozen=True)
class Run:
    """A run: its wall time, the video it wrote, and the warm-up of its segments in keys (None:
    one piece)."""

    name: str
    wall: float
    cpu: float
    video: Path
    overlap: int | None = None
    # Seconds of each segment job and of the join, as the ledger records them.
    segments: tuple[float, ...] = ()
    join: float = 0.0


def sequential(clip: Path, style: str, out: Path, threads: int) -> Run:
    torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), tree_cpu()
    stylize_video(resolve(style), clip, out)
    return Run(f"one piece (`impasto apply`), {threads} thread{'s' if threads > 1 else ''}",
               time.perf_counter() - start, tree_cpu() - cpu, out)


def segmented(name: str, clip: Path, style: str, folder: Path, segments: int, overlap: int,
              executor: batch.Executor) -> Run:
    tasks = batch.video_tasks(clip, batch.styles([style])[0], folder, segments=segments, overlap=overlap)
    start, cpu = time.perf_counter(), tree_cpu()
    summary = batch.run(tasks, folder, executor)
    wall, cpu = time.perf_counter() - start, tree_cpu() - cpu
    if not summary.complete:
        raise SystemExit(f"{name}: the batch did not finish: {summary.describe()}")
    seconds: dict[str, list[float]] = {"video-segment": [], "video-join": []}
    with batch.Ledger(folder) as ledger:
        for row in ledger.rows():
            seconds[row["kind"]].append(row["seconds"])
    return Run(name, wall, cpu, folder / f"{clip.stem}_{style}.mp4", overlap, tuple(seconds["video-segment"]),
               seconds["video-join"][0])


def on_ray(name: str, clip: Path, style: str, folder: Path, segments: int, nodes: list[int]) -> Run:
    """Segments on a loopback Ray cluster of ``nodes`` (CPUs each); its start not counted."""
    with loopback_cluster(nodes) as cluster:
        return segmented(name, clip, style, folder, segments, OVERLAP_KEYS, cluster)


def at_cuts(error: WarpingError, frames: int, segments: int) -> float:
    """The mean warping error of the frame pairs (s-1, s) at each segment's first frame s."""
    length = segment_length(frames, DEFAULT_INTERVAL, segments)
    cuts = range(length, frames, length)
    return sum(error.per_frame[c - 1] for c in cuts) / max(1, len(cuts))


def computed(clip: Path, style: str) -> list[Tensor]:
    """The sequential run's frames as computed, before the writer (one thread, in levels of 255)."""
    torch.set_num_threads(1)
    model, blender = resolve(style), TemporalBlender()
    return [(blender.blend(f, stylize(model, f)).clamp(0, 1) * 255).round() for f in frames_of(clip)]


def segment_frames(clip: Path, style: str, folder: Path, frames: int, segments: int, overlap: int) -> list[Tensor]:
    """The segments' frames as computed (written lossless, decoded), in levels of 255."""
    torch.set_num_threads(1)
    model, parts = resolve(style), plan(frames, segment_length(frames, DEFAULT_INTERVAL, segments),
                                        overlap * DEFAULT_INTERVAL)
    result: list[Tensor] = []
    for part in parts:
        path = folder / f"segment_{part.index}.mkv"
        stylize_segment(model, clip, path, part.start, part.stop, part.lead)
        result += [f * 255 for f in frames_of(path)]
    return result


def difference(a: list[Tensor], b: list[Tensor]) -> tuple[float, float]:
    """The largest and the mean absolute difference of two lists of frames."""
    gaps = [(x - y).abs() for x, y in zip(a, b, strict=True)]
    return max(float(g.max()) for g in gaps), sum(float(g.mean()) for g in gaps) / len(gaps)


def writer_change(reference: list[Tensor], video: Path) -> float:
    """The mean absolute difference (levels of 255) between frames as computed and as the H.264
    writer keeps them: the yardstick of a difference too small to matter."""
    return difference(reference, [f * 255 for f in frames_of(video)])[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=192, help="the clip's frames (default: %(default)s)")
    parser.add_argument("--size", default="384x288", help="WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--move", choices=sorted(MOVES), default="pan_zoom", help="(default: %(default)s)")
    parser.add_argument("--style", default="starry_night", help="a shipped style (default: %(default)s)")
    parser.add_argument("--segments", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 1, 2],
                        help="warm-ups to measure, in keys (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=batch.usable_cores(),
                        help="local pool workers and Ray CPUs (default: the usable cores, %(default)s)")
    parser.add_argument("--no-ray", action="store_true", help="the local pool only")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="video_segments_") as scratch:
        root = Path(scratch)
        still = images.resize_long_side(images.load_image(examples.PHOTO), 2 * max(width, height))
        source = camera_clip(still, MOVES[args.move], args.frames, height, width)
        clip = write_clip(source, root / "clip.mp4")
        # Loaded once before the timings: the network, OpenCV's flow, the writer.
        sequential(write_clip(source[:8], root / "warm.mp4"), args.style, root / "warm_out.mp4", 1)
        runs = [sequential(clip, args.style, root / "all_threads.mp4", batch.usable_cores()),
                sequential(clip, args.style, root / "one_thread.mp4", 1)]
        for overlap in args.overlaps:
            runs.append(segmented(f"{args.segments} segments, local pool, warm-up {overlap} key"
                                  f"{'s' if overlap != 1 else ''} ({overlap * DEFAULT_INTERVAL} frames)", clip,
                                  args.style, root / f"pool_{overlap}", args.segments, overlap,
                                  batch.LocalPool(args.workers)))
        if not args.no_ray:
            runs.append(on_ray(f"{args.segments} segments, Ray, 1 node", clip, args.style, root / "ray1",
                               args.segments, [args.workers]))
            if args.workers >= 2:
                half = [args.workers // 2, args.workers - args.workers // 2]
                runs.append(on_ray(f"{args.segments} segments, Ray, 2 nodes", clip, args.style, root / "ray2",
                                   args.segments, half))
        load = os.getloadavg()[0]
        reference = computed(clip, args.style)
        differences = {overlap: difference(reference, segment_frames(clip, args.style, root / f"raw_{overlap}",
                                                                     args.frames, args.segments, overlap))
                       for overlap in {r.overlap for r in runs if r.overlap is not None}}
        report(args, runs, clip, writer_change(reference, runs[1].video), differences, load)


def report(args: argparse.Namespace, runs: list[Run], clip: Path, writer: float,
           differences: dict[int, tuple[float, float]], load: float) -> None:
    fastest = min(run.wall for run in runs[:2])
    base = video_warping_error(clip, runs[1].video)
    base_cuts = at_cuts(base, args.frames, args.segments)
    print(f"CPU: {describe_cpu()}; load average {load:.1f} during the runs")
    print(f"clip: {args.frames} frames of {args.size}, {args.move}; style {args.style}; {args.workers} workers; "
          f"the H.264 writer moves the frames by {writer:.1f} levels of 255 on average\n")
    print("| run | wall s | speed-up | CPU s | warping error | change | at the cuts "
          "| frames vs one piece (largest / mean) |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        error = video_warping_error(clip, run.video)
        cuts = at_cuts(error, args.frames, args.segments)
        largest, mean = differences.get(run.overlap, (0.0, 0.0)) if run.overlap is not None else (0.0, 0.0)
        print(f"| {run.name} | {run.wall:.1f} | {fastest / run.wall:.2f}x | {run.cpu:.1f} | {error.mean:.5f} "
              f"| {(error.mean / base.mean - 1) * 100:+.2f} % | {(cuts / base_cuts - 1) * 100:+.1f} % "
              f"| {largest:.0f} / {mean:.2f} |")
    print()
    for run in runs:
        if run.segments:
            jobs = ", ".join(f"{seconds:.1f}" for seconds in run.segments)
            print(f"{run.name}: segment jobs {jobs} s, the join {run.join:.1f} s")


if __name__ == "__main__":
    main()
