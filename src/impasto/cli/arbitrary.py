"""``impasto train-arbitrary``: the any-painting network (Ghiasi et al. 2017) from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from impasto.cli.jobs import EXIT_CANCELLED, EXIT_OK
from impasto.cli.progress import ProgressBar
from impasto.config import TrainPrecision, choices
from impasto.events import Event, TrainStep
from impasto.fast.train_arbitrary import ArbitraryConfig

EXAMPLES = """\
examples:
  # a first run on the CPU at small crops, held-out loss every 50 iterations into a log
  impasto train-arbitrary --data ../shared/data/photos --paintings ../shared/data/paintings -o arbitrary.pt \\
      --crop-size 128 --style-size 128 --batch-size 4 --iterations 400 --validate-every 50 --log train.jsonl

  # continue it, longer, on a GPU (the same settings; --resume picks up the checkpoint arbitrary.pt.ckpt)
  impasto train-arbitrary --data ../shared/data/photos --paintings ../shared/data/paintings -o arbitrary.pt \\
      --crop-size 128 --style-size 128 --batch-size 4 --iterations 40000 --resume --device cuda --workers 8

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
    g = p.add_argument_group("objective")
    for name in ("content_weight", "style_weight", "tv_weight"):
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name),
                       help="default: %(default)s")
    g = p.add_argument_group("optimisation")
    for name in ("iterations", "batch_size", "crop_size", "style_size", "seed", "workers"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="default: %(default)s")
    g.add_argument("--lr", type=float, default=d.learning_rate, dest="learning_rate", help="default: %(default)s")
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


class _Log:
    """Appends the held-out losses of each validation as one JSON line (a log, not an output:
    a line per event, flushed, so a background run can be followed with ``tail -f``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainStep) and event.validation is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event.validation) + "\n")


def run_train_arbitrary(args: argparse.Namespace) -> int:
    from impasto.events import broadcast
    from impasto.fast.train_arbitrary import TrainingInterrupted, train_arbitrary
    from impasto.jobs import JobInterrupted

    names = {f.name for f in dataclasses.fields(ArbitraryConfig)}
    config = ArbitraryConfig(**{k: v for k, v in vars(args).items() if k in names})
    bar = None if args.quiet else ProgressBar("it")
    log = _Log(args.log) if args.log is not None else None
    try:
        result = train_arbitrary(args.data, args.paintings, args.output, config, checkpoint=args.checkpoint,
                                 resume=args.resume, on_event=broadcast(bar, log))
    except TrainingInterrupted as stop:
        raise JobInterrupted(f"{stop}; continue with --resume") from None
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        val = result.validation[-1]["total"] if result.validation else float("nan")
        print(f"saved {result.path} after {result.iterations} iterations in {result.seconds:.0f} s; "
              f"held-out loss {val:.4g}", file=sys.stderr)
    return EXIT_OK if result.complete else EXIT_CANCELLED
