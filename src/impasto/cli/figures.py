"""``impasto report``, ``gallery``, ``compare-optimizers``, ``tradeoff``, ``compare-init``: the
paper's figures and run reports from the command line (see :mod:`impasto.research.experiments`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from impasto import examples
from impasto.cli.exits import EXIT_INTERRUPTED, EXIT_OK
from impasto.cli.options import OUTPUT_FOLDERS, add_device, add_quiet, listed
from impasto.cli.progress import ProgressBar
from impasto.config import Pooling, Precision, TransferConfig, choices
from impasto.errors import InputError
from impasto.research import experiments

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
                "history.json and iter_NNNNN.png snapshots of an `impasto transfer` run.", REPORT_EXAMPLES)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder with history.json (and snapshots)")
    add_quiet(p)
    p.set_defaults(run=run_report)

    p = _parser(sub, "gallery", "the paper's Fig. 3: Tübingen in five painters' styles",
                "Gatys et al. (2016) Fig. 3: tubingen.jpg in the styles of Turner, van Gogh, Munch, Picasso and "
                "Kandinsky, with the paper's α/β for each; a 3x2 grid, results.json and index.html.",
                GALLERY_EXAMPLES)
    _add_common(p, "figures/gallery", TransferConfig().size, inputs=False, schedule=True)
    p.add_argument("--with-reference", action="store_true",
                   help="also place IMAGES/reference/neural-style_tubingen_*.png beside ours")
    p.set_defaults(run=run_gallery)

    p = _parser(sub, "compare-optimizers", "L-BFGS vs Adam: loss against iterations and seconds",
                "Run L-BFGS and Adam at several learning rates from the same noise at one scale; plot the loss "
                "against iterations and seconds and tabulate the seconds to reach given losses.", OPTIMIZER_EXAMPLES)
    _add_common(p, "figures/optimizers", experiments.COMPARE_SIZE)
    p.add_argument("--adam-learning-rates", type=float, nargs="+", default=experiments.ADAM_LEARNING_RATES,
                   metavar="LR", dest="adam_lrs", help="Adam's learning rates, steps in [0, 1] pixel units, one run "
                   f"each (default: {listed(experiments.ADAM_LEARNING_RATES)})")
    p.set_defaults(run=run_compare_optimizers)

    p = _parser(sub, "tradeoff", "the paper's Fig. 4: α/β ratios x style layers",
                "A grid with one row per content/style ratio α/β and one column per set of style layers "
                "(relu1_1, relu1_1...relu2_1, ..., relu1_1...relu5_1).", TRADEOFF_EXAMPLES)
    _add_common(p, "figures/tradeoff", TransferConfig().size, schedule=True)
    p.add_argument("--ratios", type=float, nargs="+", default=experiments.TRADEOFF_RATIOS, metavar="R",
                   help=f"α/β ratios, one row each (default: {listed(experiments.TRADEOFF_RATIOS)})")
    p.set_defaults(run=run_tradeoff)

    p = _parser(sub, "compare-init", "noise vs photo vs painting as the starting image",
                "Equal iterations from white noise, the photograph and the painting, at one scale.", INIT_EXAMPLES)
    _add_common(p, "figures/init", experiments.COMPARE_SIZE)
    p.set_defaults(run=run_compare_init)


def _parser(sub: argparse._SubParsersAction, name: str, help_text: str, description: str,
            epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_common(p: argparse.ArgumentParser, out: str, size: int, *, inputs: bool = True,
                schedule: bool = False) -> None:
    """Options shared by the experiments; ``schedule`` adds the coarse-to-fine ones."""
    d = TransferConfig()
    if inputs:
        p.add_argument("content", type=Path, nargs="?", help=f"the photograph (default: IMAGES/{DEFAULT_CONTENT})")
        p.add_argument("style", type=Path, nargs="?", help=f"the painting (default: IMAGES/{DEFAULT_STYLE})")
    p.add_argument("--images", type=Path, metavar="DIR", default=examples.ROOT,
                   help="folder with content/, style/ and, for --with-reference, reference/ (default: the "
                   "example images that ship with impasto)")
    p.add_argument("-o", "--output", type=Path, default=Path(out), metavar="DIR", dest="out",
                   help=f"output folder ({OUTPUT_FOLDERS}); nothing is written elsewhere (default: %(default)s)")
    p.add_argument("--size", type=int, default=size, help="long side of every result in px (default: %(default)s)")
    if schedule:
        p.add_argument("--iterations", type=int, default=d.iterations,
                       help="iterations at the final scale (default: %(default)s)")
        p.add_argument("--coarse-iterations", type=int, default=d.coarse_iterations,
                       help="iterations at each coarser scale (default: %(default)s)")
        p.add_argument("--scales", type=int, help="coarse-to-fine levels, 1 = the paper's single scale (default: "
                       f"halving down to {d.min_scale_size} px)")
    else:
        p.add_argument("--iterations", type=int, default=experiments.COMPARE_ITERATIONS,
                       help="iterations of every run, all at one scale (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation (default: %(default)s)")
    p.add_argument("--pooling", choices=choices(Pooling), default=d.pooling,
                   help="VGG-19's pooling layers (default: %(default)s; the paper's figures use avg)")
    add_device(p, d.device)
    p.add_argument("--precision", choices=choices(Precision), default=d.precision,
                   help="network number format; auto = bf16 on CPUs with native bf16 where it is faster, bf16/fp16 "
                   "on CUDA (default: %(default)s)")
    add_quiet(p)


def run_report(args: argparse.Namespace) -> int:
    from impasto.research.report import write_report

    index = write_report(args.run_dir)
    if not args.quiet:
        print(f"wrote {index}", file=sys.stderr)
    return EXIT_OK


def run_gallery(args: argparse.Namespace) -> int:
    return _run(args, lambda **kw: experiments.gallery(args.images, args.out, with_reference=args.with_reference,
                                                       **kw))


def run_compare_optimizers(args: argparse.Namespace) -> int:
    content, style = _inputs(args)
    return _run(args, lambda **kw: experiments.compare_optimizers(content, style, args.out,
                                                                  adam_lrs=tuple(args.adam_lrs), **kw))


def run_tradeoff(args: argparse.Namespace) -> int:
    content, style = _inputs(args)
    return _run(args, lambda **kw: experiments.tradeoff(content, style, args.out, ratios=tuple(args.ratios), **kw))


def run_compare_init(args: argparse.Namespace) -> int:
    content, style = _inputs(args)
    return _run(args, lambda **kw: experiments.compare_init(content, style, args.out, **kw))


def _inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.content is not None and args.style is not None:
        return args.content, args.style
    if not args.images.is_dir():
        raise InputError(f"{args.images}: images folder not found; give CONTENT and STYLE or --images DIR")
    return args.content or args.images / DEFAULT_CONTENT, args.style or args.images / DEFAULT_STYLE


def _run(args: argparse.Namespace, experiment: Callable[..., list[Path]]) -> int:
    """Call the experiment with the shared settings; report where its page is."""
    from impasto.gatys.api import TransferInterrupted

    schedule = {k: getattr(args, k) for k in ("scales", "coarse_iterations") if hasattr(args, k)}
    bar = None if args.quiet else ProgressBar()
    base = TransferConfig(device=args.device, precision=args.precision, pooling=args.pooling, **schedule)
    try:
        files = experiment(size=args.size, iterations=args.iterations, seed=args.seed, base=base, on_event=bar)
    except TransferInterrupted:
        print(f"impasto: interrupted; finished runs are in {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"wrote {len(files)} files; open {args.out / 'index.html'}", file=sys.stderr)
    return EXIT_OK
