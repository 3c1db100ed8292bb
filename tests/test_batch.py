"""Batches: a local process pool and a real (loopback) Ray cluster give the files each job gives
alone; a rerun does nothing; a bad job fails alone; a killed worker, a removed node and Ctrl-C
leave every job done exactly once or recorded as not done, and no partial file."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import training_photos
from impasto import batch, images, jobs
from impasto.cli import main
from impasto.config import ApplyConfig, TransferConfig
from impasto.errors import InputError

# Ray must bind its services to the loopback address alone: this, read when ray is imported,
# keeps its single-machine mode, and every node below is told 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
LOOPBACK = "127.0.0.1"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs the cluster extra (ray): pip install -e '.[cluster]'")
# A Ray test that takes longer than this has hung (the whole module takes about a minute).
STYLES = ("starry_night", "the_scream")
# Tiny transfers that compute the same pixels in any process: a fixed seed, and float32 with
# the direct convolution, which no per-process speed probe can change.
TINY_TRANSFER = TransferConfig(size=64, iterations=4, scales=1, seed=1, precision="fp32", convolution="direct")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The in-process references run with one thread, as the workers do, so that the same
    arithmetic gives the same bytes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    training_photos(folder, 12, 96)
    return folder


@pytest.fixture(scope="module")
def painting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from impasto import examples

    path = tmp_path_factory.mktemp("painting") / "starry.png"
    images.save_image(images.resize_long_side(images.load_image(examples.painting("starry_night")), 64), path)
    return path


def transfers(photos: Path, painting: Path, output: Path, count: int = 2) -> list[batch.Task]:
    photo_files = sorted(photos.glob("*.jpg"))[:count]
    return [batch.task(jobs.TransferJob(p, (painting,), output / f"{p.stem}_transfer.png", TINY_TRANSFER),
                       f"transfer {p.name}") for p in photo_files]


def references(tasks: list[batch.Task], folder: Path) -> dict[str, bytes]:
    """Each task's main output, made by ``jobs.run`` in this process alone, by output name."""
    made = {}
    for t in tasks:
        job = jobs.from_record(t.record)
        jobs.run(jobs.with_output(job, folder / t.files[0].name))
        made[t.files[0].name] = (folder / t.files[0].name).read_bytes()
    return made


def assert_done_once(tasks: list[batch.Task], output: Path, summary: batch.Summary,
                     expected: dict[str, bytes]) -> None:
    """Every task done, recorded once; the folder holds its outputs and job files and nothing
    else (no second copy, no temporary file), each output the bytes its job gives alone."""
    assert summary.complete and not summary.failed, summary.describe()
    with batch.Ledger(output) as ledger:
        rows = ledger.rows()
    assert sorted(r["key"] for r in rows) == sorted(t.key for t in tasks)
    assert all(r["state"] == "done" for r in rows)
    written = {p.name for p in output.iterdir()}
    names = {t.files[0].name for t in tasks} | {t.files[1].name for t in tasks} | {batch.LEDGER_NAME}
    assert written == names, written ^ names
    for name, data in expected.items():
        assert (output / name).read_bytes() == data, name


@pytest.mark.slow
def test_local_pool_writes_what_each_job_writes_alone_and_a_rerun_does_nothing(
    photos: Path, painting: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    chosen = batch.styles(STYLES)
    tasks = batch.plan_photos([photos], chosen, output) + transfers(photos, painting, output)
    assert len(tasks) == 26
    ended: list[int] = []
    summary = batch.run(tasks, output, batch.LocalPool(workers=2), on_event=lambda e: ended.append(e.step))
    assert ended == list(range(1, 27)) and summary.executor == "a local pool of 2 workers × 1 thread"
    assert_done_once(tasks, output, summary, references(tasks, tmp_path / "alone"))
    record = json.loads((output / "photo_0_starry_night.job.json").read_text())
    assert record["kind"] == "apply" and record["result"]["complete"]

    again = batch.run(tasks, output, batch.LocalPool(workers=2))
    assert not again.ended and len(again.skipped) == 26 and again.complete

    # An output deleted since: that job alone runs again.
    (output / "photo_3_the_scream.png").unlink()
    third = batch.run(tasks, output, batch.LocalPool(workers=1))
    assert [label for label, _ in third.ended] == ["photo_3.jpg × the_scream"]
    assert (output / "photo_3_the_scream.png").is_file()


@pytest.mark.slow
def test_a_corrupt_photo_fails_alone_with_its_one_line_error(photos: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("photo_0.jpg", "photo_1.jpg", "photo_2.jpg"):
        (folder / name).write_bytes((photos / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG at all")
    output = tmp_path / "out"
    code = main(["batch", str(folder), "--style", "starry_night", "-o", str(output), "--workers", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    report = json.loads(captured.out)
    assert (report["done"], report["failed"], report["complete"]) == (3, 1, False)
    failure = report["failures"][0]
    assert failure["job"] == "broken.jpg × starry_night" and "broken.jpg" in failure["error"]
    assert "\n" not in failure["error"]
    assert f"failed: broken.jpg × starry_night: {failure['error']}" in captured.err.splitlines()
    assert not (output / "broken_starry_night.png").exists()
    with batch.Ledger(output) as ledger:
        states = {r["label"]: (r["state"], r["error"]) for r in ledger.rows()}
    assert states["broken.jpg × starry_night"] == ("failed", failure["error"])

    # A rerun skips what is done and tries the failed job again (its photo may have been fixed).
    code = main(["batch", str(folder), "--style", "starry_night", "-o", str(output), "--workers", "1", "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and (report["skipped"], report["failed"], report["done"]) == (3, 1, 0)


def _children(parent: int, title: str) -> list[int]:
    """Processes whose parent is ``parent`` and whose command line starts with ``title``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if (parent == 0 or ppid == parent) and command.startswith(title):
            found.append(int(entry.name))
    return found


def _wait_for(find: Callable[[], list[int]], seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no such process appeared")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes in /proc (Linux)")
def test_a_local_worker_killed_mid_batch_has_its_jobs_tried_again(photos: Path, painting: Path,
                                                                  tmp_path: Path) -> None:
    output = tmp_path / "out"
    tasks = transfers(photos, painting, output, 3) + batch.plan_photos([photos], batch.styles(STYLES[:1]), output)
    killed: list[int] = []

    def kill_a_worker(event: Any) -> None:
        if not killed:
            # A pool worker is a spawned child of this process running multiprocessing's spawn_main.
            pid = _wait_for(lambda: [p for p in _children(os.getpid(), "") if b"spawn_main" in
                                     Path(f"/proc/{p}/cmdline").read_bytes()])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = batch.run(tasks, output, batch.LocalPool(workers=2), on_event=kill_a_worker)
    assert killed
    assert_done_once(tasks, output, summary, references(tasks, tmp_path / "alone"))
    with batch.Ledger(output) as ledger:
        assert max(r["attempts"] for r in ledger.rows()) == 2


SCRIPT_WITHOUT_MAIN_GUARD = """
import sys
from pathlib import Path
from impasto import batch, jobs
from impasto.config import ApplyConfig
out = Path(sys.argv[1])
tasks = [batch.task(jobs.ApplyJob((out / f"{i}.jpg",), out / f"{i}_out.png", ApplyConfig("starry_night")), str(i))
         for i in range(3)]
for failure in batch.run(tasks, out, batch.LocalPool(1, attempts=2)).to_dict()["failures"]:
    print(failure["job"], failure["error"])
"""


@pytest.mark.slow
def test_workers_that_cannot_start_fail_the_batch_instead_of_restarting_forever(tmp_path: Path) -> None:
    """A script without ``if __name__ == "__main__"``: each spawned worker runs the script again
    and dies before any job; after ``attempts`` such pools the jobs fail."""
    import subprocess
    import sys

    (tmp_path / "script.py").write_text(SCRIPT_WITHOUT_MAIN_GUARD)
    done = subprocess.run([sys.executable, str(tmp_path / "script.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # Two jobs in flight in each of the two pools; the third never started.
    assert sorted(done.stdout.splitlines()) == ["0 its worker process died (tried 2 times)",
                                        "1 its worker process died (tried 2 times)",
                                        "2 the worker processes died before any job ended (2 fresh pools)"]


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_and_a_rerun_finishes_it(photos: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    tasks = batch.plan_photos([photos], batch.styles(STYLES), output)

    def interrupt(event: Any) -> None:
        if event.step == 3:
            raise KeyboardInterrupt

    summary = batch.run(tasks, output, batch.LocalPool(workers=2), on_event=interrupt)
    assert summary.interrupted and not summary.complete and len(summary.done) >= 3
    assert "interrupted: " in summary.describe()
    with batch.Ledger(output) as ledger:
        done = {r["label"] for r in ledger.rows() if r["state"] == "done"}
    assert done == set(summary.done)
    # No temporary file; every image there is whole.
    assert not list(output.glob(".*.tmp"))
    for image in output.glob("*.png"):
        images.load_image(image)
    again = batch.run(tasks, output, batch.LocalPool(workers=2))
    assert again.complete and set(again.skipped) == done and len(again.done) == len(tasks) - len(done)


# --- planning and the command line -----------------------------------------------------------


def test_a_job_has_one_key_from_any_folder_and_a_transfer_gets_a_seed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = jobs.TransferJob(Path("a.jpg"), (Path("b.jpg"),), Path("out/c.png"), TransferConfig(size=64))
    absolute = jobs.TransferJob(tmp_path / "a.jpg", (tmp_path / "b.jpg",), tmp_path / "out/c.png",
                                TransferConfig(size=64, seed=0))
    assert batch.task(relative, "a").key == batch.task(absolute, "b").key
    assert batch.task(relative, "a").record["config"]["seed"] == 0
    other = dataclasses.replace(absolute, config=TransferConfig(size=64, seed=1))
    assert batch.task(other, "c").key != batch.task(absolute, "b").key
    assert batch.task(absolute, "b").files == (tmp_path / "out/c.png", tmp_path / "out/c.job.json")


def test_styles_name_the_outputs(photos: Path, tmp_path: Path) -> None:
    chosen = batch.styles(["starry_night", "starry_night:0.7,the_scream:0.3"], size=64)
    assert [s.name for s in chosen] == ["starry_night", "starry_night-0.7+the_scream-0.3"]
    assert chosen[0].config == ApplyConfig("starry_night", size=64)
    painted = batch.apply_style(paintings=[tmp_path / "a.jpg", tmp_path / "b.jpg"], weights=[3, 1], strength=0.5,
                                style_size=300)
    assert painted.name == "a+b" and painted.config.style == "arbitrary" and painted.config.style_size == 300
    assert painted.config.style_images == (tmp_path / "a.jpg", tmp_path / "b.jpg")
    assert painted.config.style_weights == (3, 1) and painted.config.strength == 0.5
    inside = batch.apply_style("the_scream", tmp_path / "multi.pt")
    assert inside.name == "multi+the_scream" and inside.config.mix == "the_scream"
    assert inside.config.style == os.fspath(tmp_path / "multi.pt")
    tasks = batch.plan_photos([photos / "photo_1.jpg", photos / "photo_2.jpg"], chosen, tmp_path / "out")
    assert [t.files[0].name for t in tasks[:2]] == ["photo_1_starry_night.png",
                                                    "photo_1_starry_night-0.7+the_scream-0.3.png"]
    with pytest.raises(InputError, match="--styles: 'a' is named twice"):
        batch.styles(["a", "a"])
    with pytest.raises(InputError, match=r"writes .*photo_1_starry_night\.png, as photo_1\.jpg × starry_night does"):
        batch.plan_photos([photos / "photo_1.jpg", photos / "photo_1.jpg"], chosen[:1], tmp_path / "out")


def test_a_manifest_gives_apply_and_transfer_jobs(tmp_path: Path, painting: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("content,style,output,kind,options\n"
                        "photo.jpg,starry_night,a/photo_starry.png,,size=64\n"
                        f"photo.jpg,{painting},b/photo.png,transfer,size=64 iterations=10 precision=fp32\n"
                        "photo.jpg,painting.jpg,c.png,apply,strength=0.5\n"
                        "photo.jpg,models/mine.pt,d.png,apply,\n", encoding="utf-8")
    tasks = batch.plan_manifest(manifest, tmp_path / "out")
    job = [jobs.from_record(t.record) for t in tasks]
    assert isinstance(job[0], jobs.ApplyJob) and job[0].config == ApplyConfig("starry_night", size=64)
    assert job[0].inputs == (tmp_path / "photo.jpg",) and job[0].output == tmp_path / "out/a/photo_starry.png"
    assert isinstance(job[1], jobs.TransferJob) and job[1].styles == (painting,)
    assert (job[1].config.size, job[1].config.iterations, job[1].config.precision, job[1].config.seed) == (
        64, 10, "fp32", 0)
    assert job[2].config.style == "arbitrary" and job[2].config.style_images == (tmp_path / "painting.jpg",)
    assert job[2].config.strength == 0.5 and job[3].config.style == os.fspath(tmp_path / "models/mine.pt")
    assert tasks[1].label == f"{manifest}, line 3"


@pytest.mark.parametrize(("text", "message"), [
    ("photo,style,output\n", "jobs.csv: unknown column 'photo' (columns: content, style, output"),
    ("content,style\n", "jobs.csv: no 'output' column"),
    ("content,style,output\n", "jobs.csv: no jobs in the manifest"),
    ("content,style,output\na.jpg,,b.png\n", "jobs.csv, line 2: no style"),
    ("content,style,output\na.jpg,x,b.png,extra\n", "jobs.csv, line 2: more fields than the header names"),
    ("content,style,output,kind\na.jpg,x,b.png,train\n", "line 2: kind 'train' is not one of apply, transfer"),
    ("content,style,output,options\na.jpg,x,b.png,size\n", "jobs.csv, line 2: options: 'size' is not NAME=VALUE"),
    ("content,style,output,options\na.jpg,x,b.png,sise=3\n", "jobs.csv, line 2: options: unknown setting 'sise'"),
    ("content,style,output,options\na.jpg,x,b.png,size=big\n", "jobs.csv, line 2: options.size: expected"),
    ("content,style,output,kind,options\na.jpg,x.jpg,b.png,transfer,iterations=-1\n", "iterations"),
    ("content,style,output\na.jpg,x,b.png\na.jpg,y,b.png\n", "jobs.csv, line 3: writes "),
], ids=["column", "no output", "empty", "no style", "extra field", "kind", "not name=value", "unknown option",
        "option type", "bad value", "same output"])
def test_a_bad_manifest_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    text: str, message: str) -> None:
    (tmp_path / "jobs.csv").write_text(text, encoding="utf-8")
    code = main(["batch", str(tmp_path / "jobs.csv"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("impasto: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/nothing/"], "nothing: no job files (*.json) in this folder"),
    (["{tmp}/missing.json"], "missing.json: job file not found"),
    (["{tmp}/bad.json"], "bad.json: not an impasto job file"),
    (["{tmp}/missing.jpg", "--style", "starry_night"], "missing.jpg: photo not found"),
    (["{tmp}/bad.json", "--style", "starry_night"], "bad.json: not a photo"),
    (["{tmp}/nothing/", "--style", "starry_night"], "nothing: no photos"),
    (["{tmp}/bad.json", "--size", "64"], "--size, --strength, --backend, --style-blend and --style-size: for photos"),
    (["{tmp}/nothing/", "--styles", "a", "--style", "b"], "--styles: instead of --style, --model and --style-image"),
    (["{tmp}/nothing/", "--styles", "a", "--style-size", "300"], "--style-size: sets the size paintings are read at"),
    (["{tmp}/bad.json", "--workers", "0"], "--workers: must be a positive integer, got 0"),
    (["{tmp}/bad.json", "--ray=auto", "--workers", "2"], "--workers: for the local pool"),
    (["{tmp}/a.csv", "{tmp}/bad.json"], "a.csv: a manifest goes alone"),
], ids=["empty folder", "missing job file", "not a job file", "missing photo", "not a photo", "no photos",
        "apply option", "styles and style", "styles and style size", "workers", "workers on ray", "manifest and more"])
def test_bad_inputs_are_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 args: list[str], message: str) -> None:
    (tmp_path / "nothing").mkdir()
    (tmp_path / "bad.json").write_text('{"kind": "transfer"}')
    (tmp_path / "a.csv").write_text("content,style,output\n")
    code = main(["batch", *(a.format(tmp=tmp_path) for a in args), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_ray_without_the_cluster_extra_says_how_to_install_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray raises ImportError
    job = jobs.ApplyJob((tmp_path / "a.jpg",), tmp_path / "a_out.png", ApplyConfig("starry_night"))
    (tmp_path / "a.job.json").write_text(json.dumps(jobs.to_record(job)))
    code = main(["batch", str(tmp_path / "a.job.json"), "-o", str(tmp_path / "out"), "--ray"])
    assert code == 2
    assert capsys.readouterr().err == f"impasto: error: {batch.RAY_INSTALL}\n"


def test_job_files_run_where_they_say(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    for name in ("photo_0", "photo_1"):
        job = jobs.ApplyJob((photos / f"{name}.jpg",), tmp_path / "made" / f"{name}.png",
                            ApplyConfig("the_scream", size=48))
        (folder / f"{name}.json").write_text(json.dumps(jobs.to_record(job)))
    code = main(["batch", str(folder), "-o", str(tmp_path / "ledger"), "--workers", "1", "-q"])
    assert code == 0 and capsys.readouterr().err == ""
    assert sorted(p.name for p in (tmp_path / "made").glob("*.png")) == ["photo_0.png", "photo_1.png"]
    assert [p.name for p in (tmp_path / "ledger").iterdir()] == [batch.LEDGER_NAME]


def test_the_ledger_refuses_a_file_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / batch.LEDGER_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(InputError, match="cannot use this ledger"), batch.Ledger(tmp_path):
        pass
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="file: the output must be a folder"):
        batch.Ledger(tmp_path / "file")


# --- Ray -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real Ray cluster on this machine: a head node and a second node, one CPU each, on the
    loopback address; shut down (every process of every node) at the end of the module."""
    import ray
    from ray.cluster_utils import Cluster

    started = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK})
    try:
        started.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        started.wait_for_nodes(timeout=60)
        yield started
    finally:
        ray.shutdown()
        started.shutdown()


@pytest.mark.slow
@needs_ray
def test_ray_writes_what_the_local_pool_writes(cluster: Any, photos: Path, painting: Path, tmp_path: Path,
                                               deadline: None) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    plan = [*batch.plan_photos(sorted(photos.glob("*.jpg"))[:5], batch.styles(STYLES), local),
            *transfers(photos, painting, local, 1)]
    summary = batch.run(plan, local, batch.LocalPool(workers=2))
    assert summary.complete
    expected = {t.files[0].name: t.files[0].read_bytes() for t in plan}
    tasks = [*batch.plan_photos(sorted(photos.glob("*.jpg"))[:5], batch.styles(STYLES), remote),
             *transfers(photos, painting, remote, 1)]
    summary = batch.run(tasks, remote, batch.RayCluster(cluster.address))
    assert summary.executor == f"Ray at {cluster.address}"
    assert_done_once(tasks, remote, summary, expected)
    # The job files differ only in their paths and timings.
    assert json.loads((remote / "photo_0_the_scream.job.json").read_text())["config"] == json.loads(
        (local / "photo_0_the_scream.job.json").read_text())["config"]


@pytest.mark.slow
@needs_ray
def test_ray_worker_killed_mid_job_is_retried_once_and_every_job_done_once(
    cluster: Any, photos: Path, painting: Path, tmp_path: Path, deadline: None
) -> None:
    output = tmp_path / "out"
    tasks = transfers(photos, painting, output, 4) + batch.plan_photos(
        sorted(photos.glob("*.jpg"))[:4], batch.styles(STYLES[:1]), output)
    killed: list[int] = []

    def kill_a_worker(event: Any) -> None:
        if not killed:
            # Ray names a worker process after the task it is running: ray::attempt.
            pid = _wait_for(lambda: _children(0, "ray::attempt"))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = batch.run(tasks, output, batch.RayCluster(cluster.address), on_event=kill_a_worker)
    assert killed
    assert_done_once(tasks, output, summary, references(tasks, tmp_path / "alone"))


@pytest.mark.slow
@needs_ray
def test_a_node_removed_mid_batch_has_its_jobs_run_elsewhere(cluster: Any, photos: Path, painting: Path,
                                                             tmp_path: Path, deadline: None) -> None:
    node = cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    cluster.wait_for_nodes(timeout=60)
    raylet = node.all_processes["raylet"][0].process.pid
    output = tmp_path / "out"
    tasks = transfers(photos, painting, output, 6)
    removed: list[bool] = []

    def remove_the_node(event: Any) -> None:
        if not removed:
            # Removed while it runs a job: one of its workers is running the batch's task.
            _wait_for(lambda: _children(raylet, "ray::attempt"))
            cluster.remove_node(node)
            removed.append(True)

    summary = batch.run(tasks, output, batch.RayCluster(cluster.address), on_event=remove_the_node)
    assert removed
    assert_done_once(tasks, output, summary, references(tasks, tmp_path / "alone"))
