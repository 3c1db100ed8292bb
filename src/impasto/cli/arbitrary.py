"""``impasto train-arbitrary``: the any-painting network (Ghiasi et al. 2017) from the command line."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from impasto.cli.jobs import run_job
from impasto.cli.options import OUTPUT_FOLDERS, add_device, add_json, add_quiet
from impasto.config import ArbitraryConfig, TrainPrecision, choices
from impasto.jobs import ArbitraryJob

EXAMPLES = """\
examples:
  # a first run on the CPU at small crops, held-out loss every 50 iterations into a log
  impasto train-arbitrary --data photos/ --paintings paintings/ -o arbitrary.pt \\
      --crop-size 128 --style-crop-size 128 --batch-size 4 --iterations 400 --validate-every 50 --log train.jsonl

  # continue it, longer, on a GPU (the same settings; --resume picks up the checkpoint arbitrary.pt.ckpt)
  impasto train-arbitrary --data photos/ --paintings paintings/ -o arbitrary.pt \\
      --crop-size 128 --style-crop-size 128 --batch-size 4 --iterations 40000 --resume --device cuda --workers 8

  # continue a model on a machine without its checkpoint (its iterations go on; Adam starts afresh)
  impasto train-arbitrary --data photos/ --paintings paintings/ -o more.pt \
      --crop-size 128 --style-crop-size 128 --batch-size 4 --iterations 40000 --init-from arbitrary.pt

  # the run as its job file recorded it (arbitrary.job.json, beside the model; seed included)
  impasto run arbitrary.job.json

  impasto apply --model arbitrary.pt --style-image painting.jpg photo.jpg -o out.jpg --strength 0.8
"""


# The integer settings of the optimisation group: option, ArbitraryConfig field, meaning.
INTEGERS = (
    ("--iterations", "iterations", "training iterations"),
    ("--batch-size", "batch_size", "photos per iteration, each with one painting"),
    ("--crop-size", "crop_size", "square photo crops in px"),
    # Not --style-size, the paintings' long side elsewhere: here their shorter side, cropped square.
    ("--style-crop-size", "style_crop_size", "square painting crops in px, each painting first scaled to this shorter "
     "side; larger = bigger brush strokes"),
    ("--seed", "seed", "seed of the initialisation and the batch order"),
    ("--workers", "workers", "processes decoding photos ahead; 0 = in the training process, best on a CPU"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-arbitrary", help="train the any-painting network (Ghiasi et al. 2017)",
                       description="Train one network that stylises a photo with any painting in one pass: a style "
                       "predictor reads the painting's VGG-19 statistics, conditional instance normalisation "
                       "applies them (Ghiasi et al. 2017).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = ArbitraryConfig()
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="folder of training photos (.jpg, .png, .webp)")
    p.add_argument("--paintings", type=Path, required=True, metavar="DIR",
                   help="folder of paintings (a slice is held out by name)")
    p.add_argument("-o", "--output", type=Path, required=True, help=f"the model file to write (.pt); {OUTPUT_FOLDERS}")
    g = p.add_argument_group("network")
    g.add_argument("--width", type=int, default=d.width,
                   help="the network's channels in its first layer (default: %(default)s)")
    g.add_argument("--blocks", type=int, default=d.blocks, help="residual blocks (default: %(default)s)")
    g.add_argument("--kernel", type=int, default=d.kernel,
                   help="size of the first and last convolutions (default: %(default)s)")
    g.add_argument("--init-from", type=Path, metavar="MODEL.pt",
                   help="start from a model of the same width, blocks and kernel: a multi-style model gives its "
                        "convolutions and its mean style for every painting; an arbitrary-style model is continued "
                        "where it stopped (without a checkpoint: Adam starts afresh)")
    g = p.add_argument_group("objective")
    for name, what in (("content_weight", "weight of the content term"), ("style_weight", "weight of the style term"),
                       ("tv_weight", "total-variation weight"),
                       ("grid_weight", "weight against the pattern repeating at the upsampling factor"),
                       ("droplet_weight", "weight against droplets, dark ovals at the same places in every output")):
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name),
                       help=f"{what} (default: %(default)g)")
    g = p.add_argument_group("optimisation")
    for option, name, what in INTEGERS:
        metavar = option[2:].replace("-", "_").upper()
        g.add_argument(option, type=int, default=getattr(d, name), dest=name, metavar=metavar,
                       help=f"{what} (default: %(default)s)")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate,
                   help="Adam's learning rate; with --resume it replaces the checkpoint's (default: %(default)g)")
    g.add_argument("--minutes", type=float, help="end after this many minutes of training and write the model "
                   "(default: no limit)")
    add_device(g, d.device)
    g.add_argument("--precision", choices=choices(TrainPrecision), default=d.precision,
                   help="auto: bf16 autocast on CPUs with native bf16 and on CUDA (default: %(default)s)")
    g = p.add_argument_group("validation and checkpoints")
    for kind in ("photos", "paintings"):
        name = "holdout_percent" if kind == "photos" else "painting_holdout_percent"
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name),
                       help=f"percent of the {kind} held out by a hash of their names (default: %(default)g)")
    for name, what in (("validation_photos", "held-out photos in the validation loss"),
                       ("validation_paintings", "held-out paintings in the validation loss, each with every photo"),
                       ("validate_every", "validate every N iterations; 0 = never"),
                       ("checkpoint_every", "save a checkpoint every N iterations; 0 = never")):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name),
                       metavar="N" if name.endswith("every") else None, help=f"{what} (default: %(default)s)")
    g.add_argument("--checkpoint", type=Path, metavar="FILE", help="checkpoint file (default: OUTPUT + .ckpt)")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint, batch for batch")
    g.add_argument("--log", type=Path, metavar="FILE",
                   help="append every held-out evaluation to this JSON-lines file")
    g = p.add_argument_group("messages")
    add_json(g)
    add_quiet(g)
    p.set_defaults(run=run_train_arbitrary)


def run_train_arbitrary(args: argparse.Namespace) -> int:
    names = {f.name for f in dataclasses.fields(ArbitraryConfig)}
    config = ArbitraryConfig(**{k: v for k, v in vars(args).items() if k in names})
    job = ArbitraryJob(args.data, args.paintings, args.output, config, args.checkpoint, args.resume, args.log,
                       args.init_from)
    return run_job(job, quiet=args.quiet, as_json=args.json)
