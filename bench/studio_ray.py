"""Benchmark: the studio's queue on Ray, several jobs at once, against one at a time (not a test).

N transfers (default 4, 128 px, 100 iterations, one scale, seed 1) are queued at once to a real
``impasto serve`` three ways, each on a fresh data folder, and timed from the first submission
to the last job's end:

* the local worker (the default): one job at a time, with every core's PyTorch threads;
* ``--ray ADDRESS --ray-jobs 1``: one job at a time on a Ray cluster of two nodes, one CPU each,
  both on this machine (``ray.cluster_utils.Cluster``, loopback address);
* ``--ray ADDRESS``: as many at once as the cluster's CPUs hold, two, one thread each.

Before the timing, each server runs one fast job per slot, so that its worker processes have
started and imported PyTorch (a server does that once). Every worker runs at niceness 0 (Ray's
own default is 15), so that other work on the machine weighs on each run alike.

    python bench/studio_ray.py                     # about 3 minutes on 2 cores
    python bench/studio_ray.py --jobs 2 --iterations 40

Prints a Markdown table: wall seconds, jobs a minute, the mean of the jobs' own seconds (first
iteration to last), and the speed-up over the local worker.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Ray on loopback alone, reporting no usage statistics, its workers at niceness 0; read when ray
# is imported, here and by the servers, which inherit them.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_worker_niceness", "0")
sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1] / "tests"))  # the tests' server helper

from impasto import examples, images
from studio_server import Server

LOOPBACK = "127.0.0.1"


def _png(path: Path, side: int) -> bytes:
    buffer = io.BytesIO()
    images.to_pil(images.resize_long_side(images.load_image(path), side)).save(buffer, format="PNG")
    return buffer.getvalue()


def _ended(job: dict[str, Any]) -> bool:
    return job["status"] not in ("queued", "running")


def timed(server: Server, args: argparse.Namespace, slots: int) -> tuple[float, list[float]]:
    """Warm the server's workers, then queue the transfers; wall seconds and each job's seconds."""
    photo, painting = _png(examples.PHOTO, args.size), _png(examples.painting("starry_night"), args.size)
    warm = [server.post("/api/jobs", data={"mode": "fast", "style_name": "starry_night"},
                        files={"content": ("p.png", photo)}).json() for _ in range(slots)]
    for job in warm:
        server.wait(job["id"], _ended, timeout=600)
    settings = {"size": str(args.size), "iterations": str(args.iterations), "scales": "1", "seed": "1"}
    start = time.perf_counter()
    queued = [server.post("/api/jobs", data=settings, files={"content": ("p.png", photo),
                                                               "style": ("s.png", painting)}).json()
              for _ in range(args.jobs)]
    ended = [server.wait(job["id"], _ended, timeout=3600) for job in queued]
    wall = time.perf_counter() - start
    assert all(job["status"] == "done" for job in ended), [job["message"] for job in ended]
    return wall, [job["progress"]["seconds"] for job in ended]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK})
    rows = []
    try:
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes(timeout=60)
        runs = [("local worker, one at a time", (), 1),
                ("Ray, 2 nodes × 1 CPU, one at a time", ("--ray", cluster.address, "--ray-jobs", "1"), 1),
                ("Ray, 2 nodes × 1 CPU, two at once", ("--ray", cluster.address), 2)]
        with tempfile.TemporaryDirectory() as scratch:
            for i, (name, extra, slots) in enumerate(runs):
                server = Server(Path(scratch) / f"data{i}", *extra).start()
                try:
                    wall, seconds = timed(server, args, slots)
                finally:
                    server.stop(signal.SIGTERM)
                rows.append((name, wall, seconds))
                print(f"{name}: {wall:.1f} s", file=sys.stderr)
    finally:
        cluster.shutdown()
    reference = rows[0][1]
    print(f"{args.jobs} transfers, {args.size} px, {args.iterations} iterations, queued at once\n")
    print("| run | wall s | jobs a minute | a job's own s (mean) | speed-up |")
    print("|---|---|---|---|---|")
    for name, wall, seconds in rows:
        print(f"| {name} | {wall:.1f} | {60 * args.jobs / wall:.2f} | {sum(seconds) / len(seconds):.1f} | "
              f"{reference / wall:.2f}× |")


if __name__ == "__main__":
    main()
