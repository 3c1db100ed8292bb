"""``impasto serve``: the studio, a web page to paint photos and watch the picture form."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from impasto import examples
from impasto.errors import InputError

if TYPE_CHECKING:
    from impasto.web.app import StudioSettings
    from impasto.web.cluster import RayOptions

EXAMPLES = """\
examples:
  impasto serve                                           # http://127.0.0.1:8000, jobs kept in ./studio-data
  impasto serve --examples my_paintings/                  # offer these paintings as thumbnails
  impasto serve --data-dir ~/studio --port 8080 --max-queue 4
  impasto serve --host 0.0.0.0                            # reachable from other machines: think first
  impasto serve --ray                                     # several jobs at once, on a Ray instance on this machine
  impasto serve --ray HEAD:6379 --data-dir /shared/studio # on a Ray cluster; every node sees the data folder
"""

# Uploads are smaller than what `impasto transfer` reads from disk (images.DEFAULT_MAX_PIXELS).
MAX_PIXELS = 50_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the studio: a web page to paint photos, watching the picture form",
                       description="Start the impasto studio: a web page (and its HTTP API, docs/studio.md) where "
                       "photos are repainted by the optimisation or a fast network, live, with a job queue kept "
                       "in --data-dir across restarts.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=Path("studio-data"), metavar="DIR",
                   help="folder of the job table and images; missing folders are made (default: %(default)s)")
    p.add_argument("--examples", type=Path, metavar="DIR", default=examples.STYLE,
                   help="a folder of paintings to offer as thumbnails, read in place (default: the paintings "
                   "that ship with impasto)")
    p.add_argument("--max-queue", type=int, default=8, help="jobs that may wait (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=30.0, help="largest upload (default: %(default)g MB)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"refuse uploaded images with more pixels, checked before decoding (default: {MAX_PIXELS:,})")
    p.add_argument("--max-size", type=int, default=1024, help="largest output long side (default: %(default)s px)")
    p.add_argument("--preview-seconds", type=float, default=0.5,
                   help="shortest time between two live previews (default: %(default)g s)")
    p.add_argument("--worker-nice", type=int, default=10, metavar="N",
                   help="niceness added to the worker process, so the page stays quick while a job runs "
                   "(default: %(default)s; 0: none; with --ray, Ray's workers run at Ray's own, 15)")
    g = p.add_argument_group("on a Ray cluster (the cluster extra; docs/studio.md)")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the jobs as Ray tasks, several at once: alone, on a Ray instance started on this "
                   "machine (loopback only); with ADDRESS (HOST:PORT, or auto), on that running cluster, every "
                   "node of which must see --data-dir at the same path")
    g.add_argument("--ray-jobs", type=int, metavar="N",
                   help="jobs that run at once (default: as many as the cluster's CPUs hold, followed as nodes "
                   "join and leave)")
    g.add_argument("--ray-cpus", type=int, metavar="N",
                   help="CPUs each job asks of Ray, which are also its PyTorch threads (default: 1)")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from impasto.web.app import create_app
    except ImportError as exc:
        raise InputError(f"the studio needs its extra: pip install 'impasto[web]' ({exc.name} is missing)") from None
    settings = _settings(args)
    if settings.ray is not None:
        from impasto.web.cluster import connect

        # Before the server starts, so that a missing package or an unreachable cluster is one line.
        connect(settings.ray)
        print(f"impasto studio: jobs run on {settings.ray.describe()}", file=sys.stderr)
    app = create_app(settings)
    print(f"impasto studio: http://{args.host}:{args.port}/ (jobs in {settings.data})", file=sys.stderr)
    # A short graceful shutdown: open live streams would otherwise hold the server.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


def _settings(args: argparse.Namespace) -> StudioSettings:
    from impasto.web.app import StudioSettings

    if not 0 < args.port < 65536:
        raise InputError(f"--port: must lie in [1, 65535], got {args.port}")
    for name in ("max_queue", "max_pixels"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")
    if not 0 < args.max_upload_mb <= 1024:
        raise InputError(f"--max-upload-mb: must lie in (0, 1024], got {args.max_upload_mb}")
    if not 0 < args.preview_seconds <= 60:
        raise InputError(f"--preview-seconds: must lie in (0, 60], got {args.preview_seconds}")
    if not 0 <= args.worker_nice <= 19:
        raise InputError(f"--worker-nice: must lie in [0, 19], got {args.worker_nice}")
    if args.max_size < 32:
        raise InputError(f"--max-size: must be at least 32, got {args.max_size}")
    if args.examples is not None and not args.examples.is_dir():
        raise InputError(f"{args.examples}: examples folder not found")
    if args.data_dir.exists() and not args.data_dir.is_dir():
        raise InputError(f"{args.data_dir}: exists and is not a folder")
    ray = _ray_options(args)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return StudioSettings(args.data_dir.resolve(), args.examples, args.max_queue, round(args.max_upload_mb * 1e6),
                          args.max_pixels, args.max_size, args.preview_seconds, args.worker_nice, ray)


def _ray_options(args: argparse.Namespace) -> RayOptions | None:
    from impasto.web.cluster import RayOptions

    for name in ("ray_jobs", "ray_cpus"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')}: must be at least 1, got {value}")
    if args.ray is None:
        if args.ray_jobs is not None or args.ray_cpus is not None:
            raise InputError("--ray-jobs, --ray-cpus: only with --ray")
        return None
    return RayOptions(args.ray or None, args.ray_jobs, args.ray_cpus or 1)
