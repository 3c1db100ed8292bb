"""Benchmark: the held-out loss of multi-style model files, computed as their training records it
(``training.validation``), for versions that predate that record — not a test.

Each model file is scored by the multi-style trainer's own validation
(``fast.multistyle.train.held_out_loss``: the trainer built from the file's recorded settings,
its weights taken up as ``--init-from`` does, then ``validate``): the first ``previews``
held-out photos of --data (``Photos(data, holdout_percent)``, centre crops at ``crop_size``),
each under every style, the paintings at
``style_size``; the terms of each style's objective (the paper's, plus the lattice term at the
file's ``grid_weight``), averaged over the styles; VGG-19 and the network in the precision the
training ran in (``training.precision``). Where the file records an evaluation at its own
iteration (files since the held-out curve was recorded), that row is printed beside it.

``--like FILE`` scores every file under FILE's settings and precision instead (one objective for
the whole history: the shipped grid weight for versions trained without the lattice term).
``git:COMMIT:PATH`` names a committed version (extracted with ``git show``); ``--history PATH``
every committed version of PATH, oldest first.

    python bench/heldout_history.py src/impasto/models/multistyle/paper_fig3.pt
    python bench/heldout_history.py --history src/impasto/models/multistyle/paper_fig3.pt --json history.json
    python bench/heldout_history.py git:bf4b9fe:src/impasto/models/multistyle/paper_fig3.pt \\
        --like src/impasto/models/multistyle/paper_fig3.pt

Prints describe_cpu() and a Markdown table (losses in the paper's units), and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from impasto.fast.multistyle.model import MultiStyleModel, read_multistyle
from impasto.fast.multistyle.train import held_out_loss
from impasto.runtime import describe_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_worth import PAINTINGS, PHOTOS

REPO = Path(__file__).resolve().parents[1]
TERMS = ("content", "style", "grid", "total")


def git_versions(path: str) -> list[str]:
    """``git:COMMIT:PATH`` for every commit that changed ``path``, oldest first."""
    log = subprocess.run(["git", "log", "--format=%h", "--", path], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    return [f"git:{commit}:{path}" for commit in reversed(log)]


def model_file(spec: str, scratch: Path) -> Path:
    """The file a spec names: a path, or ``git:COMMIT:PATH`` written to ``scratch``."""
    if not spec.startswith("git:"):
        return Path(spec)
    _, commit, path = spec.split(":", 2)
    out = scratch / f"{commit}_{Path(path).name}"
    out.write_bytes(subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True,
                                   check=True).stdout)
    return out


def painting_files(model: MultiStyleModel, folder: Path) -> list[Path]:
    """Each style's painting by its recorded file name, else ``<name>.jpg``, in ``folder``."""
    return [folder / str(s.training.get("painting") or f"{s.name}.jpg") for s in model.styles]


def recorded_at(model: MultiStyleModel, iteration: int) -> dict[str, Any] | None:
    """The file's own held-out row at ``iteration``, if it records one."""
    rows = [r for r in model.training.get("validation") or [] if r.get("iteration") == iteration]
    return rows[-1] if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="multi-style model files, or git:COMMIT:PATH")
    parser.add_argument("--history", metavar="PATH", help="also every committed version of PATH, oldest first")
    parser.add_argument("--like", type=Path, help="score every file under this model file's settings and precision")
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="instead of the training's precision")
    parser.add_argument("--data", type=Path, default=PHOTOS, help="the training's photo folder")
    parser.add_argument("--paintings", type=Path, default=PAINTINGS, help="the folder of the styles' paintings")
    parser.add_argument("--json", type=Path, default=Path("heldout_history.json"), help="the JSON to write")
    args = parser.parse_args()
    specs = [*(git_versions(args.history) if args.history else []), *args.models]
    if not specs:
        parser.error("give model files or --history PATH")
    like = read_multistyle(args.like) if args.like is not None else None
    print(f"CPU: {describe_cpu()}; held-out loss as the training records it"
          + (f", all under {args.like}'s settings" if like else "") + "\n")
    print("| model | iteration | precision | grid weight | content | style | grid | total | recorded total "
          "| seconds |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for spec in specs:
            model = read_multistyle(model_file(spec, Path(scratch)), spec)
            start = time.perf_counter()
            row = held_out_loss(model, painting_files(model, args.paintings), args.data, like, args.precision)
            took = time.perf_counter() - start
            recorded = recorded_at(model, row["iteration"]) if like is None and args.precision is None else None
            results.append({"model": spec, "held_out": row, "recorded": recorded, "seconds": round(took, 1)})
            cells = [spec, f"{row['iteration']:,}", row["precision"], f"{row['grid_weight']:g}",
                     *(f"{row.get(t, 0.0):.5g}" for t in TERMS),
                     f"{recorded['total']:.5g}" if recorded else "–", f"{took:.0f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
