"""Options that several commands share, defined once so that an option name means one thing in
every command (the table in docs/cli.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from impasto.config import PAINTING_SIDE
from impasto.profiles import OUTPUT_PROFILES

QUIET_HELP = "print nothing but errors: no progress bar, no summary"
JSON_HELP = ("print the result as one JSON object on stdout: the files written and the summary the job file "
             "records (seconds, seed, losses, ...); messages and progress stay on stderr")
OUTPUT_FOLDERS = "missing folders are made"
DEVICE_HELP = "auto (the first GPU if there is one, else the CPU), cpu, cuda or cuda:N (default: %(default)s)"
OUTPUT_PROFILE_HELP = ("the output image's colour profile, embedded: source = the photo's own (none for a photo "
                       "without one, which is sRGB), srgb, or an ICC profile's file (default: %(default)s)")
BIT_DEPTH_HELP = ("bits a channel of the output image: 8, or 16 for .png and .tiff (default: the photo's, 16 for a "
                  "16-bit photo written as PNG or TIFF, else 8)")
QUALITY_HELP = "JPEG and WebP quality, from 1 to 100 (default: %(default)s)"


def add_quiet(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def add_json(p: argparse.ArgumentParser | argparse._ArgumentGroup, help_text: str = JSON_HELP) -> None:
    p.add_argument("--json", action="store_true", help=help_text)


def add_device(p: argparse.ArgumentParser | argparse._ArgumentGroup, default: str) -> None:
    p.add_argument("--device", default=default, metavar="DEVICE", help=DEVICE_HELP)


def add_output_settings(p: argparse.ArgumentParser | argparse._ArgumentGroup, profile: str, quality: int) -> None:
    """How output images are written: colour profile, bits a channel, JPEG/WebP quality."""
    p.add_argument("--output-profile", default=profile, metavar="source|srgb|FILE.icc", help=OUTPUT_PROFILE_HELP)
    p.add_argument("--bit-depth", type=int, choices=(8, 16), help=BIT_DEPTH_HELP)
    p.add_argument("--quality", type=int, default=quality, metavar="Q", help=QUALITY_HELP)


def add_painting_size(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--style-size", type=int, metavar="PX", help="the --style-images' long side when "
                        f"their style is read: larger paints larger strokes (default: {PAINTING_SIDE}, where "
                        "`impasto transfer` holds a painting at its default size)")


def absolute_profile(profile: str) -> str:
    """``--output-profile`` as a job file records it: a profile's file by its absolute path."""
    return profile if profile in OUTPUT_PROFILES else os.fspath(Path(profile).absolute())


def listed(values: tuple[object, ...] | list[object]) -> str:
    """A default list as a user types it: ``relu1_1 relu2_1``, ``0.02 0.1``."""
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
