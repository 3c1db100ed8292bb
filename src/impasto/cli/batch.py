"""``impasto batch``: many jobs on this machine's cores or a Ray cluster (``impasto.batch``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from impasto.cli.exits import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from impasto.cli.jobs import print_json
from impasto.cli.options import OUTPUT_FOLDERS, add_json, add_painting_size, add_quiet
from impasto.cli.progress import ProgressBar
from impasto.config import Backend, choices

if TYPE_CHECKING:
    from impasto.batch import Task

EXAMPLES = """\
examples:
  impasto batch photos/ --styles starry_night the_scream -o stylised/      # each photo in each style
  impasto batch photos/ --style-image painting.jpg --size 512 -o stylised/  # any painting
  impasto batch photos/ --model scream.pt -o stylised/                      # a network from impasto train
  impasto batch clip.mp4 --style starry_night -o stylised/ --segments 8     # a video, 8 segments in parallel
  impasto batch jobs/ -o runs/                        # the job files in jobs/ (*.json), each writing where it says
  impasto batch manifest.csv -o out/                  # content,style,output[,kind,options] rows
  impasto batch photos/ --style starry_night -o stylised/ --ray           # on a Ray instance on this machine
  impasto batch photos/ --style starry_night -o stylised/ --ray=auto      # on the Ray cluster this machine is part of
  impasto batch photos/ --style starry_night -o stylised/ --ray HEAD:6379 # on the cluster whose head is HEAD

Run the same command again to finish a batch that was interrupted or had failures: the ledger in the
output folder (.impasto-batch.sqlite) skips the jobs done. Exit codes: 0 every job done, 1 some jobs
failed (each named in the summary), 2 the batch could not start, 130 interrupted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run many jobs on this machine's cores or a Ray cluster, skipping those done",
                       description="Run many jobs: job files, photos and videos × styles (fast apply jobs; a video "
                       "in segments stylised in parallel, then joined) or the rows of a CSV manifest; on a pool "
                       "of worker processes here, or on Ray. A ledger in the output folder records each job's "
                       "end, so a rerun skips the jobs done.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                   help="job files or folders of them (*.json); with a style option, photos, videos or folders of "
                   "them; or one manifest (.csv)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="the output folder: photos × styles write PHOTO_STYLE.png (videos VIDEO_STYLE.mp4) here, "
                   "a manifest's outputs are relative to it, and it keeps the ledger (job files write where they "
                   f"say); {OUTPUT_FOLDERS}")
    g = p.add_argument_group("photos × styles: one style as `impasto apply` takes it, or several with --styles")
    g.add_argument("--styles", nargs="+", metavar="NAME",
                   help="several styles, each writing its own outputs: shipped styles (see `impasto styles`) or "
                   "mixes NAME:WEIGHT,NAME:WEIGHT")
    g.add_argument("--style", help="a shipped style or a mix NAME:WEIGHT,NAME:WEIGHT; with --model MULTI.pt, the "
                   "style or mix inside that file")
    g.add_argument("--model", type=Path, help="a model file written by `impasto train`")
    g.add_argument("--style-image", type=Path, action="append", dest="style_images", metavar="PAINTING",
                   help="a painting for the any-painting network (the installed one, or --model); repeat to mix "
                   "several")
    g.add_argument("--style-blend", type=float, nargs="+", metavar="W", dest="style_weights",
                   help="weights of the --style-images, one each (normalised to sum 1; default equal)")
    add_painting_size(g)
    g.add_argument("--size", type=int, help="resize each photo to this long side first (default: as it is)")
    g.add_argument("--strength", type=float, default=1.0,
                   help="multi-style and any-painting networks: 0 = the photo, 1 = the full style (default: "
                   "%(default)g)")
    g.add_argument("--backend", choices=choices(Backend), default="auto",
                   help="what runs the network (default: %(default)s)")
    g = p.add_argument_group("videos (given, in a manifest or in a job file): segments stylised in parallel, then "
                             "joined (docs/video.md)")
    split = g.add_mutually_exclusive_group()
    split.add_argument("--segments", type=int, metavar="N",
                       help="split each video into N segments (rounded to whole key intervals)")
    split.add_argument("--segment-frames", type=int, metavar="F",
                       help="split each video into segments of F frames (default: 120, five seconds at 24 fps)")
    g = p.add_argument_group("where the jobs run")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on Ray (needs impasto[cluster]): ADDRESS is the head node's HOST:PORT, or auto for the "
                   "cluster this machine is part of; without it, a Ray instance on this machine. Put it after "
                   "the inputs, or write --ray=ADDRESS")
    g.add_argument("--workers", type=int,
                   help="local pool: worker processes (default: the usable cores divided by --threads)")
    g.add_argument("--threads", type=int, default=1,
                   help="PyTorch threads of each job; on Ray, the CPUs each job asks for (default: %(default)s)")
    g.add_argument("--attempts", type=int, default=3,
                   help="tries of a job whose worker process dies or hits a file system error; a job's own error "
                   "(an unreadable photo) is never tried again (default: %(default)s)")
    g = p.add_argument_group("messages")
    add_json(g, "print the summary as one JSON object on stdout: counts, each failure's error, and each job's "
             "state and files; the progress bar and messages stay on stderr")
    add_quiet(g)
    p.set_defaults(run=run_batch)


def run_batch(args: argparse.Namespace) -> int:
    from impasto import batch

    if args.ray is not None:
        if args.workers is not None:
            from impasto.errors import InputError

            raise InputError("--workers: for the local pool; on Ray, --threads sets each job's share of the CPUs")
        executor: batch.Executor = batch.RayCluster(args.ray or None, args.threads, args.attempts)
    else:
        executor = batch.LocalPool(args.workers, args.threads, args.attempts)
    tasks = _plan(args)
    bar = None if args.quiet else ProgressBar("job")
    try:
        summary = batch.run(tasks, args.output, executor, on_event=bar)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(summary.describe(), file=sys.stderr)
    if args.json:
        print_json(summary.to_dict())
    if summary.interrupted:
        return EXIT_CANCELLED
    # Some jobs failed, each named in the summary; the others ran.
    return EXIT_FAILED if summary.failed else EXIT_OK


def _plan(args: argparse.Namespace) -> list[Task]:
    from impasto import batch
    from impasto.errors import InputError
    from impasto.style_spec import style_size_without_paintings

    inputs: list[Path] = args.inputs
    settings = {"size": args.size, "strength": args.strength, "backend": args.backend}
    split = {"segments": args.segments, "segment_frames": args.segment_frames}
    one = args.style is not None or args.model is not None or bool(args.style_images)
    if args.styles:
        if one:
            raise InputError("--styles: instead of --style, --model and --style-image, not with them")
        if args.style_size is not None:
            raise style_size_without_paintings()
        return batch.plan_photos(inputs, batch.styles(args.styles, **settings), args.output, **split)
    if one:
        chosen = batch.apply_style(args.style, args.model, args.style_images or (), args.style_weights,
                                   style_size=args.style_size, **settings)
        return batch.plan_photos(inputs, [chosen], args.output, **split)
    if (args.size is not None or args.strength != 1.0 or args.backend != "auto" or args.style_weights
            or args.style_size is not None):
        raise InputError("--size, --strength, --backend, --style-blend and --style-size: for photos × styles (with "
                         "--style, --styles, --model or --style-image); a job file or a manifest sets its own")
    manifests = [p for p in inputs if p.suffix.lower() == ".csv"]
    if manifests:
        if len(inputs) > 1:
            raise InputError(f"{manifests[0]}: a manifest goes alone, without other inputs")
        return batch.plan_manifest(manifests[0], args.output, **split)
    return batch.plan_job_files(inputs, **split)
