"""``impasto transfer-video`` (Gatys et al. for video, temporally consistent after Ruder et al.
2016) and ``impasto video-metrics`` (the warping error of Lai et al. 2018)."""

from __future__ import annotations

import argparse
from pathlib import Path

from impasto.cli.exits import EXIT_OK
from impasto.cli.jobs import print_json, run_job
from impasto.cli.transfer import add_transfer_arguments, config_from_args
from impasto.config import DEFAULT_TEMPORAL_WEIGHT, FlowMethod, VideoTransferConfig, choices
from impasto.errors import InputError
from impasto.jobs import TransferVideoJob

TRANSFER_EXAMPLES = """\
examples:
  # small and quick: 256 px, 50 L-BFGS iterations a frame, one scale, from the photo
  impasto transfer-video clip.mp4 starry_night.jpg -o clip_starry.mp4 --size 256 --iterations 50 --scales 1 \\
      --init content

  # stopped? the same command continues after the last finished frame (kept in clip_starry.frames/)
  # the job file beside the video repeats the run, seed included
  impasto run clip_starry.job.json -o again.mp4

  # each frame on its own, for comparison (it flickers)
  impasto transfer-video clip.mp4 starry_night.jpg -o flicker.mp4 --no-temporal --size 256 --init content
"""

METRICS_EXAMPLES = """\
examples:
  impasto video-metrics clip.mp4 clip_starry.mp4
  impasto video-metrics clip.mp4 clip_starry.mp4 --json > clip_starry.metrics.json   # with the per-frame series
"""


def register(sub: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("transfer-video", help="Gatys et al. style transfer for a video, without flicker "
                       "(Ruder et al. 2016)",
                       description="Repaint every frame of a video: the first as `impasto transfer` would, each "
                       "later one starting from the previous result warped by optical flow and held to it where "
                       "the flow is reliable (Ruder, Dosovitskiy & Brox 2016). Finished frames are kept in "
                       "OUTPUT's name + .frames/ until the video is written; the same command resumes.",
                       epilog=TRANSFER_EXAMPLES, formatter_class=formatter)
    add_transfer_arguments(p, still=False)
    g = p.add_argument_group("video")
    g.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                   help="warped initialisation and temporal loss; --no-temporal: every frame on its own "
                   "(default: on)")
    g.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT,
                   help="weight of the temporal loss (default: %(default)g)")
    g.add_argument("--flow", choices=choices(FlowMethod), default="dis",
                   help="optical flow method (default: %(default)s)")
    p.set_defaults(run=run_transfer_video)
    p = sub.add_parser("video-metrics", help="warping error of a stylised video (Lai et al. 2018)",
                       description="The warping error of STYLISED against ORIGINAL: the mean squared difference "
                       "(RGB in [0, 1], summed over channels) between each stylised frame and the next one "
                       "warped back onto it by the optical flow of the original frames, over the pixels that "
                       "the forward-backward check finds visible in both (Lai et al., ECCV 2018). Flow: OpenCV's "
                       "DIS (preset medium) by default. Lower is steadier.",
                       epilog=METRICS_EXAMPLES, formatter_class=formatter)
    p.add_argument("original", type=Path, help="the source video")
    p.add_argument("stylised", type=Path, help="the stylised video (same number of frames)")
    p.add_argument("--flow", choices=choices(FlowMethod), default="dis",
                   help="optical flow method (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout, with the "
                   "per-frame series, instead of the one line")
    p.set_defaults(run=run_metrics)


def run_transfer_video(args: argparse.Namespace) -> int:
    if args.output is None:
        raise InputError("-o OUTPUT: the video to write is needed")
    config = VideoTransferConfig(config_from_args(args), args.temporal, args.temporal_weight, args.flow)
    job = TransferVideoJob(args.content, tuple(args.styles), args.output, config)
    return run_job(job, quiet=args.quiet, as_json=args.json)


def run_metrics(args: argparse.Namespace) -> int:
    from impasto.video.metrics import video_warping_error

    error = video_warping_error(args.original, args.stylised, args.flow)
    if args.json:
        print_json(error.to_dict())
    else:
        print(f"warping error {error.mean:.6f} over {len(error.per_frame)} frame pairs (flow: {error.method})")
    return EXIT_OK
