"""``impasto train-arbitrary``: the any-painting network (Ghiasi et al. 2017) from the command line."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from impasto.cli.jobs import run_job
from impasto.config import ArbitraryConfig, TrainPrecision, choices
from impasto.jobs import ArbitraryJob

EXAMPLES = """\
examples:
  # a first run on the CPU at small crops, held-out loss every 50 iterations into a log
  impasto train-arbitrary --data ../shared/data/photos --paintings ../shared/data/paintings -o arbitrary.pt \\
      --crop-size 128 --style-size 128 --batch-size 4 --iterations 400 --validate-every 50 --log train.jsonl

  # continue it, longer, on a GPU (the same settings; --resume picks up the checkpoint arbitrary.pt.ckpt)
  impasto train-arbitrary --data ../shared/data/photos --paintings ../shared/data/paintings -o arbitrary.pt \\
      --crop-size 128 --style-size 128 --batch-size 4 --iterations 40000 --resume --device cuda --workers 8

  # continue a model on a machine without its checkpoint (its iterations go on; Adam starts afresh)
  impasto train-arbitrary --data ../shared/data/photos --paintings ../shared/data/paintings -o more.pt \
      --crop-size 128 --style-size 128 --batch-size 4 --iterations 40000 --init-from arbitrary.pt

  # the run as its job file recorded it (arbitrary.job.json, beside the model; seed included)
  impasto run arbitrary.job.json

  impasto apply --model arbitrary.pt --style-image painting.jpg photo.jpg -o out.jpg --strength 0.8
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-arbitrary", help="train the any-painting network (Ghiasi et al. 2017)",
                       description="Train one network that stylises a photo with any painting in one pass: a style "
                       "predictor reads the painting's VGG-19 statistics, conditional instance normalisation "
                       "applies them (Ghiasi et al. 2017). Defaults come from ArbitraryConfig.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = ArbitraryConfig()
    p.add_argument("--data", type=Path, required=True, help="folder of training photos")
    p.add_argument("--paintings", type=Path, required=True, help="folder of paintings (a slice is held out by name)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the model file to write (.pt)")
    g = p.add_argument_group("network")
    g.add_argument("--width", type=int, default=d.width, help="channels of the first layer (default: %(default)s)")
    g.add_argument("--blocks", type=int, default=d.blocks, help="residual blocks (default: %(default)s)")
    g.add_argument("--kernel", type=int, default=d.kernel, help="edge convolutions' size (default: %(default)s)")
    g.add_argument("--init-from", type=Path, metavar="MODEL.pt",
                   help="start from a model of the same width, blocks and kernel: a multi-style model gives its "
                        "convolutions and its mean style for every painting; an arbitrary-style model is continued "
                        "where it stopped (without a checkpoint: Adam starts afresh)")
    g = p.add_argument_group("objective")
    for name in ("content_weight", "style_weight", "tv_weight"):
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name),
                       help="default: %(default)s")
    g = p.add_argument_group("optimisation")
    for name in ("iterations", "batch_size", "crop_size", "style_size", "seed", "workers"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="default: %(default)s")
    g.add_argument("--lr", type=float, default=d.learning_rate, dest="learning_rate",
                   help="with --resume it replaces the checkpoint's (default: %(default)s)")
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    g.add_argument("--precision", choices=choices(TrainPrecision), default=d.precision, help="default: %(default)s")
    g = p.add_argument_group("validation and checkpoints")
    for name in ("holdout_percent", "painting_holdout_percent"):
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name),
                       help="held out by a hash of the file names (default: %(default)s)")
    for name in ("validation_photos", "validation_paintings", "validate_every", "checkpoint_every"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="default: %(default)s")
    g.add_argument("--checkpoint", type=Path, help="checkpoint file (default: OUTPUT + .ckpt)")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint, batch for batch")
    g.add_argument("--log", type=Path, help="append every held-out evaluation to this JSON-lines file")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train_arbitrary)


def run_train_arbitrary(args: argparse.Namespace) -> int:
    names = {f.name for f in dataclasses.fields(ArbitraryConfig)}
    config = ArbitraryConfig(**{k: v for k, v in vars(args).items() if k in names})
    job = ArbitraryJob(args.data, args.paintings, args.output, config, args.checkpoint, args.resume, args.log,
                       args.init_from)
    return run_job(job, quiet=args.quiet)
