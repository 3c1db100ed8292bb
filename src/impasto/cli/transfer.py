"""``impasto transfer``: Gatys et al. style transfer from the command line."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from impasto.cli.jobs import run_job
from impasto.cli.options import (
    OUTPUT_FOLDERS,
    absolute_profile,
    add_device,
    add_json,
    add_output_settings,
    add_quiet,
    listed,
)
from impasto.config import (
    KEEP,
    Convolution,
    Init,
    Optimizer,
    Pooling,
    Precision,
    PreserveColor,
    RegionGuides,
    RegionSpec,
    TransferConfig,
    WeightsFormat,
    choices,
)
from impasto.errors import InputError
from impasto.jobs import TransferJob

EXAMPLES = """\
examples:
  # the paper's settings, 512 px, L-BFGS from white noise
  impasto transfer tubingen.jpg starry_night.jpg -o tubingen_starry.png

  # keep the photograph's colours, start from it, quicker
  impasto transfer photo.jpg scream.jpg --init content --iterations 200 --preserve-color luminance -o out.jpg

  # two styles blended 3:1, watch the image change every 50 iterations, keep the loss history
  impasto transfer photo.jpg a.jpg b.jpg --style-blend 3 1 --snapshot-every 50 --snapshot-dir run/ \\
      --history run/history.json -o run/out.png

  # the paper's single-scale optimisation with its average pooling
  impasto transfer photo.jpg style.jpg --scales 1 --pooling avg -o out.png

  # spatial control: the sky as The Starry Night, the people kept as photographed, the rest as The Scream
  impasto transfer photo.jpg scream.jpg --region sky.png=starry_night.jpg --region people.png=keep -o out.png
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "transfer",
        help="Gatys et al. (2016) optimisation-based style transfer",
        description="Optimise an image so that its VGG-19 features keep CONTENT's content and take the STYLEs' "
        "Gram statistics (Gatys, Ecker & Bethge, CVPR 2016). Defaults follow the paper.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_transfer_arguments(parser)
    parser.set_defaults(run=run_transfer)


def add_transfer_arguments(p: argparse.ArgumentParser, *, still: bool = True) -> None:
    """Options mirroring TransferConfig, whose defaults they show; ``still``: those of one image's
    outputs too (snapshots, history, run folder), which a video has not."""
    d = TransferConfig()
    p.add_argument("content", type=Path, help="the photograph" if still else "the video")
    p.add_argument("styles", type=Path, nargs="*" if still else "+", metavar="style",
                   help="one or more paintings" + ("; with --region, for what no region covers (none: the rest "
                                                   "stays the photo)" if still else ""))
    written = "image (.png, .jpg, .webp, .tiff)" if still else "video (.mp4, .mov, .avi, .mkv, .m4v)"
    p.add_argument("-o", "--output", type=Path, help=f"output {written}; {OUTPUT_FOLDERS}")
    g = p.add_argument_group("objective")
    g.add_argument("--content-weight", type=float, default=d.content_weight,
                   help="α, the weight of the content term (default: %(default)g)")
    g.add_argument("--style-weight", type=float, default=d.style_weight,
                   help="β, the weight of the style term (default: %(default)g; α/β = 1e-3)")
    g.add_argument("--tv-weight", type=float, default=d.tv_weight, help="total-variation weight (default: 0, off)")
    g.add_argument("--content-layers", nargs="+", default=d.content_layers, metavar="LAYER",
                   help=f"VGG-19 layers of the content term (default: {listed(d.content_layers)}, the paper's "
                   "conv4_2 after its ReLU)")
    g.add_argument("--style-layers", nargs="+", default=d.style_layers, metavar="LAYER",
                   help=f"VGG-19 layers of the style term (default: {listed(d.style_layers)})")
    g.add_argument("--content-layer-weights", nargs="+", type=float, metavar="W",
                   help="one per content layer (default: 1 each)")
    g.add_argument("--style-layer-weights", nargs="+", type=float, metavar="W",
                   help="one per style layer (default: 1/(number of style layers) each, the paper's w_l = 1/5)")
    g.add_argument("--style-blend", nargs="+", type=float, metavar="W",
                   help="weights of several style images (normalised to sum 1; default equal)")
    g.add_argument("--pooling", choices=choices(Pooling), default=d.pooling,
                   help="VGG-19's pooling layers (default: %(default)s; the paper's figures use avg)")
    if still:
        g.add_argument("--region", action="append", dest="regions", metavar="MASK=PAINTING",
                       help="paint the area MASK covers (a greyscale image of the photo's aspect ratio, white = "
                       f"the region, soft edges allowed) with PAINTING, or keep the photo there with MASK={KEEP}; "
                       "repeat it for more regions (Gatys et al. 2017, spatial control)")
        g.add_argument("--region-guides", choices=choices(RegionGuides), default=d.region_guides,
                       help="how a region's mask reaches each style layer: inside = the share of each neuron's "
                       "receptive field in the region (the paper's), resize = the mask downsampled, erode = only "
                       "neurons wholly inside (default: %(default)s)")
    g = p.add_argument_group("images")
    g.add_argument("--size", type=int, default=d.size, help="long side of the output in px (default: %(default)s)")
    g.add_argument("--style-scale", type=float, default=d.style_scale,
                   help="the paintings' long side relative to the output's (default: %(default)g)")
    g.add_argument("--style-size", type=int, help="the paintings' long side in px at the output's size (default: "
                   "set by --style-scale, which this overrides)")
    g.add_argument("--preserve-color", choices=choices(PreserveColor), default=d.preserve_color,
                   help="keep the photograph's colours (Gatys et al. 2017): luminance = transfer the luminance "
                   "only; histogram = match the paintings' colour histogram to the photo's first (default: "
                   "%(default)s)")
    g.add_argument("--max-pixels", type=int, default=d.max_pixels,
                   help=f"refuse input images with more pixels (default: {d.max_pixels:,})")
    g = p.add_argument_group("optimisation")
    g.add_argument("--iterations", type=int, default=d.iterations,
                   help="iterations at the final scale (default: %(default)s; above 1024 px, scales over 256 px "
                   "run fewer, in proportion to their pixels: docs/large.md)")
    g.add_argument("--optimizer", choices=choices(Optimizer), default=d.optimizer,
                   help="default: %(default)s, as the paper")
    g.add_argument("--learning-rate", type=float,
                   help="Adam step in [0, 1] pixel units (default 0.02), or L-BFGS step scale (default 1)")
    g.add_argument("--init", choices=choices(Init), default=d.init,
                   help="starting image (default: %(default)s, the paper's white noise)")
    if still:
        g.add_argument("--init-image", type=Path, metavar="IMAGE",
                       help="start from this image instead (resized to the coarsest scale), such as an earlier "
                       "result to refine; replaces --init")
    g.add_argument("--no-clamp", dest="clamp", action="store_false", default=None,
                   help="let pixels leave [0, 1] during the optimisation (clipped only when saved)")
    g.add_argument("--no-photo-detail", dest="photo_detail", action="store_false", default=None,
                   help="start each finer scale from the coarser result upsampled alone, without the photo's "
                   "detail at that octave added")
    g.add_argument("--scales", type=int,
                   help="coarse-to-fine levels, each twice the size of the one before; 1 = the paper's "
                   "single scale (default: as many as keep the smallest >= --min-scale-size)")
    g.add_argument("--min-scale-size", type=int, default=d.min_scale_size,
                   help="long side of the coarsest scale at least this in px (default: %(default)s)")
    g.add_argument("--coarse-iterations", type=int, default=d.coarse_iterations,
                   help="iterations at each coarser scale (default: %(default)s)")
    g.add_argument("--seed", type=int, help="seed of the noise initialisation (default: drawn at random and "
                   "recorded in the job file, so any run can be repeated)")
    g = p.add_argument_group("hardware and weights")
    add_device(g, d.device)
    g.add_argument("--precision", choices=choices(Precision), default=d.precision,
                   help="network number format; auto = bf16 on CPUs with native bf16 where it is faster, bf16/fp16 "
                   "on CUDA (default: %(default)s)")
    g.add_argument("--convolution", choices=choices(Convolution), default=d.convolution,
                   help="VGG-19's deep convolutions: auto = Winograd F(4x4,3x3) on a CPU in float32 from the "
                   "depth where a probe finds it faster (equal to float32 rounding), direct elsewhere; winograd "
                   "forces it from conv3_1 (default: %(default)s)")
    g.add_argument("--tile", default=d.tile, metavar="auto|off|PX",
                   help="evaluate large scales tile by tile (exactly the same objective, no seams): auto when "
                   "one pass would not fit --max-memory, off, or tiles of PX px (default: %(default)s)")
    g.add_argument("--max-memory", type=float, metavar="GIB",
                   help="memory budget in GiB for tiles and the L-BFGS history (default: a quarter of this "
                   "machine's RAM)")
    g.add_argument("--weights", type=Path, help="a VGG-19 state dict (torchvision keys) instead of the original")
    g.add_argument("--weights-format", choices=choices(WeightsFormat), default=d.weights_format,
                   help="input convention of --weights: caffe (BGR, 0-255, mean-subtracted) or torchvision "
                   "(default: %(default)s, told apart by the first layer)")
    g = p.add_argument_group("outputs")
    if still:
        g.add_argument("--snapshot-every", type=int, default=0, metavar="N",
                       help="save the image every N iterations (default: never; 10 with --run-dir)")
        g.add_argument("--snapshot-dir", type=Path, metavar="DIR",
                       help="folder of the snapshots (default: OUTPUT's name + _snapshots)")
        g.add_argument("--history", type=Path, metavar="FILE", help="write the per-iteration losses and timings as "
                       "JSON to FILE")
        g.add_argument("--run-dir", type=Path, metavar="DIR",
                       help=f"keep the whole run in DIR ({OUTPUT_FOLDERS}): output.png (unless -o), history.json, "
                       "snapshots every --snapshot-every iterations (default 10) and an HTML report (index.html)")
        add_output_settings(g, d.output_profile, d.quality)
    if still:
        add_json(g)
    else:
        add_json(g, "print the result as one JSON object on stdout (the video written, frames, seconds, seed); "
                 "messages and progress stay on stderr")
    add_quiet(g)


def config_from_args(args: argparse.Namespace) -> TransferConfig:
    names = {f.name for f in dataclasses.fields(TransferConfig)}
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names and v is not None}
    for key in ("content_layers", "style_layers", "content_layer_weights", "style_layer_weights", "style_blend"):
        if key in values:
            values[key] = tuple(values[key])
    if "output_profile" in values:
        values["output_profile"] = absolute_profile(values["output_profile"])
    return TransferConfig(**values)


def job_from_args(args: argparse.Namespace) -> TransferJob:
    if args.run_dir is None and args.output is None:
        raise InputError("an output is needed: -o OUTPUT or --run-dir DIR")
    # A run folder keeps snapshots for its report: every 10 iterations unless told otherwise.
    every = args.snapshot_every if args.snapshot_every or args.run_dir is None else 10
    if args.init_image is not None and args.init != TransferConfig().init:
        raise InputError(f"--init-image replaces --init; give one of them, not --init {args.init} too")
    regions = tuple(RegionSpec.parse(text) for text in args.regions or ())
    if not args.styles and not any(r.style is not None for r in regions):
        raise InputError("a painting is needed: give one after the photo, or --region MASK=PAINTING"
                         if not regions else "--region: no region has a painting and there is none for the rest")
    return TransferJob(args.content, tuple(args.styles), args.output, config_from_args(args), args.run_dir,
                       args.history, every, args.snapshot_dir, init_image=args.init_image, regions=regions)


def run_transfer(args: argparse.Namespace) -> int:
    return run_job(job_from_args(args), quiet=args.quiet, as_json=args.json)
