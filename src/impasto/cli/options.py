"""Options that several commands share, defined once so that an option name means one thing in
every command (the table in docs/cli.md)."""

from __future__ import annotations

import argparse

QUIET_HELP = "print nothing but errors: no progress bar, no summary"
JSON_HELP = ("print the result as one JSON object on stdout: the files written and the summary the job file "
             "records (seconds, seed, losses, ...); messages and progress stay on stderr")
OUTPUT_FOLDERS = "missing folders are made"
DEVICE_HELP = "auto (the first GPU if there is one, else the CPU), cpu, cuda or cuda:N (default: %(default)s)"


def add_quiet(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def add_json(p: argparse.ArgumentParser | argparse._ArgumentGroup, help_text: str = JSON_HELP) -> None:
    p.add_argument("--json", action="store_true", help=help_text)


def add_device(p: argparse.ArgumentParser | argparse._ArgumentGroup, default: str) -> None:
    p.add_argument("--device", default=default, metavar="DEVICE", help=DEVICE_HELP)


def listed(values: tuple[object, ...] | list[object]) -> str:
    """A default list as a user types it: ``relu1_1 relu2_1``, ``0.02 0.1``."""
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
