"""Benchmark: `impasto batch` throughput on a local process pool and on Ray (not a test).

N photos (default 200; the first N of ../shared/data/photos where it exists, else crops of the
packaged example photo, 256 to 512 px on the long side) in one shipped fast style, run:

* one after another by ``jobs.run`` in this process, one PyTorch thread: the reference;
* by ``impasto batch`` on a local pool of W workers (W = the usable cores, one thread each);
* on a Ray cluster of one node with W CPUs, and of two nodes with W/2 CPUs each, every node on
  this machine, on the loopback address (``ray.cluster_utils.Cluster``).

Each batch writes into a fresh folder, so nothing is skipped. For each run: jobs a second,
worker-seconds a job (wall time × workers / N), the overhead a job (worker-seconds a job minus
the reference's seconds a job: starting workers, loading the network in each, scheduling and
passing results), and the scaling efficiency (jobs a second / (W × the reference's)). The
CPU seconds a job (of every process of the run: workers, Ray's services, the driver) show the
same overhead whatever else the machine is doing. Starting the Ray cluster and connecting to it
are not counted; starting its workers is.

    python bench/batch_scaling.py                  # 200 photos, a few minutes on 2 cores
    python bench/batch_scaling.py --jobs 60 --no-ray

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from impasto import batch, examples, images, jobs

SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
# Ray on loopback alone, reporting no usage statistics; read when ray is imported (lazily, below).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
LOOPBACK = "127.0.0.1"


def make_photos(folder: Path, count: int) -> list[Path]:
    """``count`` photos: the shared corpus's first ones, else crops of the example photo with
    long sides from 256 to 512 px."""
    if SHARED_PHOTOS.is_dir():
        found = sorted(p for p in SHARED_PHOTOS.iterdir() if p.suffix.lower() in images.IMAGE_SUFFIXES)[:count]
        if len(found) == count:
            return found
    photo = images.load_image(examples.PHOTO)
    height, width = photo.shape[-2:]
    generator = torch.Generator().manual_seed(0)
    paths = []
    for i in range(count):
        side = int(torch.randint(256, 513, (1,), generator=generator))
        crop_h, crop_w = int(height * 0.6), int(width * 0.6)
        top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator))
        paths.append(folder / f"crop_{i:04d}.jpg")
        images.save_image(images.resize_long_side(photo[..., top:top + crop_h, left:left + crop_w], side), paths[-1])
    return paths


def tree_cpu() -> float:
    """CPU seconds so far of this process, its children that ended, and every process below it
    still alive (pool workers, Ray's services and workers): the cost of a run whatever else
    the machine is doing, unlike its wall time. Linux (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, used = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
            + sum(seconds for pid, seconds in used.items() if below(pid)))


@dataclass(frozen=True)
class Run:
    name: str
    layout: str
    workers: int
    wall: float
    cpu: float


def in_process(tasks: list[batch.Task]) -> Run:
    """``jobs.run`` of every task in this process, one after another, one thread."""
    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), tree_cpu()
    for t in tasks:
        jobs.run(jobs.from_record(t.record, t.label))
    return Run("`jobs.run` in one process, a loop", "1 × 1", 1, time.perf_counter() - start, tree_cpu() - cpu)


def timed_batch(name: str, layout: str, workers: int, tasks: list[batch.Task], folder: Path,
                executor: batch.Executor) -> Run:
    start, cpu = time.perf_counter(), tree_cpu()
    summary = batch.run(tasks, folder, executor)
    wall, cpu = time.perf_counter() - start, tree_cpu() - cpu
    if not summary.complete or len(summary.done) != len(tasks):
        raise SystemExit(f"the batch did not finish: {summary.describe()}")
    return Run(name, layout, workers, wall, cpu)


@contextlib.contextmanager
def loopback_cluster(nodes: list[int]) -> Iterator[batch.RayCluster]:
    """A Ray cluster of ``nodes`` (CPUs each) on this machine's loopback address, this process
    connected to it, shut down on leaving. Connected here, so that a batch leaves the connection
    (and the job's workers, whose CPU time tree_cpu reads) open until it has been measured."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": nodes[0], "node_ip_address": LOOPBACK})
    try:
        for cpus in nodes[1:]:
            cluster.add_node(num_cpus=cpus, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes(timeout=60)
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        yield batch.RayCluster(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


def on_ray(name: str, tasks: list[batch.Task], folder: Path, nodes: list[int]) -> Run:
    """The batch on a loopback Ray cluster of ``nodes`` (CPUs each); its start not counted."""
    with loopback_cluster(nodes) as cluster:
        return timed_batch(name, f"{len(nodes)} × {nodes[0]}", sum(nodes), tasks, folder, cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="photos, one job each (default: %(default)s)")
    parser.add_argument("--style", default="starry_night", help="a shipped style (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=batch.usable_cores(),
                        help="local pool workers and Ray CPUs (default: the usable cores, %(default)s)")
    parser.add_argument("--no-ray", action="store_true", help="the local pool only")
    args = parser.parse_args()
    workers = args.workers
    with tempfile.TemporaryDirectory(prefix="batch_scaling_") as scratch:
        root = Path(scratch)
        (root / "photos").mkdir()
        photos = make_photos(root / "photos", args.jobs)
        chosen = batch.styles([args.style])

        def plan(folder: Path) -> list[batch.Task]:
            return batch.plan_photos(photos, chosen, folder)

        runs = [in_process(plan(root / "in_process"))]
        runs.append(timed_batch("local pool", f"1 × {workers}", workers, plan(root / "pool"), root / "pool",
                                batch.LocalPool(workers)))
        if not args.no_ray:
            runs.append(on_ray("Ray, one node", plan(root / "ray1"), root / "ray1", [workers]))
            if workers >= 2:
                half = [workers // 2, workers - workers // 2]
                runs.append(on_ray("Ray, two nodes", plan(root / "ray2"), root / "ray2", half))
        load = os.getloadavg()[0]
    reference = runs[0]
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()} kernels, {batch.usable_cores()} usable cores "
          f"({os.cpu_count()} in all), torch {torch.__version__}; {args.jobs} photos, 256-512 px, style "
          f"{args.style}, one PyTorch thread a job; load average {load:.1f} at the end\n")
    print("| run | nodes × CPUs | wall s | jobs/s | worker-s a job | CPU-s a job | overhead a job (wall, CPU) "
          "| scaling efficiency |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        rate = args.jobs / run.wall
        worker_ms = run.wall * run.workers / args.jobs * 1000
        cpu_ms = run.cpu / args.jobs * 1000
        wall_overhead = worker_ms - reference.wall / args.jobs * 1000
        cpu_overhead = cpu_ms - reference.cpu / args.jobs * 1000
        efficiency = rate / (run.workers * args.jobs / reference.wall)
        print(f"| {run.name} | {run.layout} | {run.wall:.1f} | {rate:.2f} | {worker_ms:.0f} ms | {cpu_ms:.0f} ms "
              f"| {wall_overhead:+.0f} ms, {cpu_overhead:+.0f} ms | {efficiency:.0%} |")


if __name__ == "__main__":
    main()
