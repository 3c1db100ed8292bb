"""``impasto report``, ``gallery``, ``compare-optimizers``, ``tradeoff``, ``compare-init``: the
paper's figures and run reports from the command line (see :mod:`impasto.research.experiments`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TypeVar

from impasto import examples
from impasto.cli.jobs import run_job
from impasto.cli.options import OUTPUT_FOLDERS, add_device, add_json, add_quiet, listed
from impasto.config import (
    ExperimentConfig,
    FigureConfig,
    GalleryConfig,
    OptimizerComparisonConfig,
    Pooling,
    Precision,
    TradeoffConfig,
    TransferConfig,
    choices,
)
from impasto.errors import InputError
from impasto.jobs import GalleryJob, InitComparisonJob, OptimizerComparisonJob, ReportJob, TradeoffJob

Settings = TypeVar("Settings", bound=ExperimentConfig)

DEFAULT_CONTENT = Path("content/tubingen.jpg")
DEFAULT_STYLE = Path("style/starry_night.jpg")

REPORT_EXAMPLES = """\
examples:
  impasto transfer photo.jpg style.jpg -o run/out.png --history run/history.json \\
      --snapshot-every 50 --snapshot-dir run
  impasto report run            # writes run/index.html, loss_curves.png, strip.png
"""
GALLERY_EXAMPLES = """\
examples:
  impasto gallery                                      # the shipped examples, 512 px, coarse to fine
  impasto gallery --images my_images --with-reference  # with Picasso's painting and neural-style's outputs
  impasto gallery --scales 1 --iterations 500 --pooling avg   # the paper's settings
  impasto gallery --size 256 --iterations 200 -o quick/ --images path/to/images
"""
OPTIMIZER_EXAMPLES = """\
examples:
  impasto compare-optimizers                           # tubingen + starry_night, 256 px, 300 iterations
  impasto compare-optimizers photo.jpg style.jpg --adam-learning-rates 0.02 0.1 --iterations 300
"""
TRADEOFF_EXAMPLES = """\
examples:
  impasto tradeoff                                   # 4 ratios x 5 layer sets = 20 runs at 512 px
  impasto tradeoff photo.jpg composition_vii.jpg --ratios 1e-4 1e-3 --size 256
"""
INIT_EXAMPLES = """\
examples:
  impasto compare-init                               # noise, photo and painting starts, 256 px
  impasto compare-init photo.jpg style.jpg --iterations 100 -o figures/init
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "report", "HTML report of one transfer run (loss curves, iteration strip)",
                "Write index.html, loss_curves.png, strip.png and thumbnails into RUN_DIR, a folder holding the "
                "history.json and iter_NNNNN.png snapshots of an `impasto transfer` run, and the report's job file, "
                "report.job.json (RUN_DIR/job.json stays the transfer's).", REPORT_EXAMPLES)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder with history.json (and snapshots)")
    add_json(p)
    add_quiet(p)
    p.set_defaults(run=run_report)

    p = _parser(sub, "gallery", "the paper's Fig. 3: Tübingen in five painters' styles",
                "Gatys et al. (2016) Fig. 3: tubingen.jpg in the styles of Turner, van Gogh, Munch, Picasso and "
                "Kandinsky, with the paper's α/β for each; a 3x2 grid, results.json and index.html.",
                GALLERY_EXAMPLES)
    _add_common(p, "figures/gallery", GalleryConfig(), inputs=False)
    p.add_argument("--with-reference", action="store_true",
                   help="also place IMAGES/reference/neural-style_tubingen_*.png beside ours")
    p.set_defaults(run=run_gallery)

    p = _parser(sub, "compare-optimizers", "L-BFGS vs Adam: loss against iterations and seconds",
                "Run L-BFGS and Adam at several learning rates from the same noise at one scale; plot the loss "
                "against iterations and seconds and tabulate the seconds to reach given losses.", OPTIMIZER_EXAMPLES)
    rates = OptimizerComparisonConfig().adam_learning_rates
    _add_common(p, "figures/optimizers", OptimizerComparisonConfig())
    p.add_argument("--adam-learning-rates", type=float, nargs="+", default=rates, metavar="LR",
                   help=f"Adam's learning rates, steps in [0, 1] pixel units, one run each (default: {listed(rates)})")
    p.set_defaults(run=run_compare_optimizers)

    p = _parser(sub, "tradeoff", "the paper's Fig. 4: α/β ratios x style layers",
                "A grid with one row per content/style ratio α/β and one column per set of style layers "
                "(relu1_1, relu1_1...relu2_1, ..., relu1_1...relu5_1).", TRADEOFF_EXAMPLES)
    ratios = TradeoffConfig().ratios
    _add_common(p, "figures/tradeoff", TradeoffConfig())
    p.add_argument("--ratios", type=float, nargs="+", default=ratios, metavar="R",
                   help=f"α/β ratios, one row each (default: {listed(ratios)})")
    p.set_defaults(run=run_tradeoff)

    p = _parser(sub, "compare-init", "noise vs photo vs painting as the starting image",
                "Equal iterations from white noise, the photograph and the painting, at one scale.", INIT_EXAMPLES)
    _add_common(p, "figures/init", ExperimentConfig())
    p.set_defaults(run=run_compare_init)


def _parser(sub: argparse._SubParsersAction, name: str, help_text: str, description: str,
            epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_common(p: argparse.ArgumentParser, out: str, d: ExperimentConfig, *, inputs: bool = True) -> None:
    """Options shared by the experiments, defaults from their config ``d``; a ``FigureConfig``
    adds the coarse-to-fine ones. Each option sets the config field of its name (``_config``)."""
    if inputs:
        p.add_argument("content", type=Path, nargs="?", help=f"the photograph (default: IMAGES/{DEFAULT_CONTENT})")
        p.add_argument("style", type=Path, nargs="?", help=f"the painting (default: IMAGES/{DEFAULT_STYLE})")
    p.add_argument("--images", type=Path, metavar="DIR", default=examples.ROOT,
                   help="folder with content/, style/ and, for --with-reference, reference/ (default: the "
                   "example images that ship with impasto)")
    p.add_argument("-o", "--output", type=Path, default=Path(out), metavar="DIR", dest="out",
                   help=f"output folder ({OUTPUT_FOLDERS}); nothing is written elsewhere, the job file "
                   "included (OUT/job.json) (default: %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="long side of every result in px (default: %(default)s)")
    if isinstance(d, FigureConfig):
        p.add_argument("--iterations", type=int, default=d.iterations,
                       help="iterations at the final scale (default: %(default)s)")
        p.add_argument("--coarse-iterations", type=int, default=d.coarse_iterations,
                       help="iterations at each coarser scale (default: %(default)s)")
        p.add_argument("--scales", type=int, default=d.scales, help="coarse-to-fine levels, 1 = the paper's single "
                       f"scale (default: halving down to {TransferConfig.min_scale_size} px)")
    else:
        p.add_argument("--iterations", type=int, default=d.iterations,
                       help="iterations of every run, all at one scale (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the noise initialisation (default: %(default)s)")
    p.add_argument("--pooling", choices=choices(Pooling), default=d.pooling,
                   help="VGG-19's pooling layers (default: %(default)s; the paper's figures use avg)")
    add_device(p, d.device)
    p.add_argument("--precision", choices=choices(Precision), default=d.precision,
                   help="network number format; auto = bf16 on CPUs with native bf16 where it is faster, bf16/fp16 "
                   "on CUDA (default: %(default)s)")
    add_json(p)
    add_quiet(p)


def run_report(args: argparse.Namespace) -> int:
    return run_job(ReportJob(args.run_dir.absolute()), quiet=args.quiet, as_json=args.json)


def run_gallery(args: argparse.Namespace) -> int:
    job = GalleryJob(args.images.absolute(), args.out, _config(args, GalleryConfig))
    return run_job(job, quiet=args.quiet, as_json=args.json)


def run_compare_optimizers(args: argparse.Namespace) -> int:
    job = OptimizerComparisonJob(*_inputs(args), args.out, _config(args, OptimizerComparisonConfig))
    return run_job(job, quiet=args.quiet, as_json=args.json)


def run_tradeoff(args: argparse.Namespace) -> int:
    job = TradeoffJob(*_inputs(args), args.out, _config(args, TradeoffConfig))
    return run_job(job, quiet=args.quiet, as_json=args.json)


def run_compare_init(args: argparse.Namespace) -> int:
    job = InitComparisonJob(*_inputs(args), args.out, _config(args, ExperimentConfig))
    return run_job(job, quiet=args.quiet, as_json=args.json)


def _inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """The photo and the painting, by default the examples' (under --images), by their absolute
    paths, so that the job file runs from any folder."""
    if args.content is not None and args.style is not None:
        return args.content.absolute(), args.style.absolute()
    if not args.images.is_dir():
        raise InputError(f"{args.images}: images folder not found; give CONTENT and STYLE or --images DIR")
    content, style = args.content or args.images / DEFAULT_CONTENT, args.style or args.images / DEFAULT_STYLE
    return content.absolute(), style.absolute()


def _config(args: argparse.Namespace, kind: type[Settings]) -> Settings:
    """The experiment's config from its options, each named as the field it sets (lists as tuples)."""
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{name: tuple(value) if isinstance(value, list) else value
                   for name, value in vars(args).items() if name in names})
