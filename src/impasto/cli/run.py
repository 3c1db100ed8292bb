"""``impasto run``: run a job file (what every run writes beside its outputs, or a hand-written
one; the web studio and cluster runners submit the same)."""

from __future__ import annotations

import argparse
from pathlib import Path

from impasto.cli.jobs import run_job
from impasto.cli.options import OUTPUT_FOLDERS, add_json, add_quiet
from impasto.jobs import KINDS

EXAMPLES = """\
examples:
  impasto transfer photo.jpg style.jpg -o out.png      # also writes out.job.json (seed included)
  impasto run out.job.json -o again.png                # the same run again, bit for bit on this CPU
  impasto run runs/first/job.json                      # a --run-dir run, into its folder again
  impasto run out.job.json -o again.png --json -q      # the result as JSON on stdout, for a script
"""


def register(sub: argparse._SubParsersAction) -> None:
    # The kinds named from the registry, so that a new kind shows here without an edit.
    kinds = ", ".join(KINDS)
    p = sub.add_parser("run", help="run a job file written by an earlier run (any command that writes files)",
                       description=f"Run the job a job file describes: the kind ({kinds}), its inputs, outputs "
                       "and settings, seed included.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", type=Path, help="a job file (*.job.json, or job.json in a run folder)")
    p.add_argument("-o", "--output", type=Path,
                   help="write the main output here instead (history, snapshots and run folder are then not "
                   f"written, being the original run's); {OUTPUT_FOLDERS}")
    add_json(p)
    add_quiet(p)
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from impasto import jobs

    job = jobs.load(args.job)
    if args.output is not None:
        job = jobs.with_output(job, args.output)
    return run_job(job, quiet=args.quiet, as_json=args.json)
