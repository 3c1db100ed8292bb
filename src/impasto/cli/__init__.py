"""The ``impasto`` command: parse, build a config, call the library, turn errors into exit codes.

Each subcommand lives in a module of this package with a ``register(subparsers)`` function.
Every problem a user can cause ends as one line on stderr and exit code 2; a file system error
(disk full, permission) as one line and exit code 1; Ctrl-C during a job says what it kept (the
best image so far, a checkpoint) and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from impasto import __version__
from impasto.cli import arbitrary, batch, doctor, fast, figures, run, serve, transfer, video
from impasto.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from impasto.errors import ImpastoError
from impasto.jobs import JobInterrupted

# Modules adding subcommands, in the order `impasto --help` lists them.
COMMANDS = (
    transfer,
    figures,
    fast,
    arbitrary,
    run,
    batch,
    serve,
    video,
    doctor,
)

EXAMPLES = """\
examples:
  impasto transfer photo.jpg starry_night.jpg -o out.png
  impasto transfer photo.jpg a.jpg b.jpg --style-blend 0.7 0.3 --size 768 -o out.jpg
  impasto transfer photo.jpg starry_night.jpg --run-dir runs/first   # with history, snapshots, report
  impasto gallery                                                     # the paper's Fig. 3, on the examples
  impasto train starry_night.jpg --data photos/ -o starry.pt
  impasto apply --model starry.pt photo.jpg -o photo_starry.jpg
  impasto batch photos/ --style starry_night -o stylised/   # many jobs, on every core or a Ray cluster
  impasto serve                                      # the studio: paint in the browser
  impasto COMMAND --help       every option of a command, with examples
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except JobInterrupted as stop:
        print(f"impasto: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        # A file system failure outside the checks (disk full mid-write, permissions changed):
        # the atomic writers have left every file as it was.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"impasto: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impasto",
        description="Neural style transfer: repaint a photograph in the style of a painting.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser
