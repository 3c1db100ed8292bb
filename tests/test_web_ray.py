"""``impasto serve --ray``: the studio's queue on a real Ray cluster on this machine (a head node
and a second node, one CPU each, on the loopback address). Two jobs run at once; a transfer shows
its progress and previews and stops on cancel with its best image; SIGTERM stops the server within
seconds, its running job interrupted; a new server keeps every finished job; a job whose Ray worker
is killed fails with one line and the next one runs. Besides, in this process: the store's stop
request, a Ray task's run of a job, and the CLI's refusals."""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import torch

from impasto import images
from impasto.cli import main
from impasto.config import TransferConfig, to_dict
from impasto.errors import InputError
from impasto.web import store
from impasto.web.cluster import run_job
from impasto.web.store import Store
from studio_server import Server

# Ray must bind its services to the loopback address alone: this, read when ray is imported (here
# and by the servers started below, which inherit it), keeps its single-machine mode.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
LOOPBACK = "127.0.0.1"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs the cluster extra (ray): pip install -e '.[cluster]'")
needs_proc = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(),
                                reason="finds the Ray worker processes in /proc (Linux)")
STOP_SECONDS = 10.0
# From the photo, so that a stopped run has a picture to keep at once.
LONG = {"size": "64", "iterations": "5000", "init": "content"}


def _png(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    images.to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _submit(server: Server, data: dict[str, str], photo: bytes, painting: bytes | None = None) -> dict[str, Any]:
    files = {"content": ("p.png", photo)}
    if painting is not None:
        files["style"] = ("s.png", painting)
    response = server.post("/api/jobs", data=data, files=files)
    assert response.status_code == 201, response.text
    return response.json()


def _ended(job: dict[str, Any]) -> bool:
    return job["status"] not in ("queued", "running")


def _sigterm(server: Server) -> int:
    """SIGTERM the server; its exit code, failing when it still runs after STOP_SECONDS."""
    assert server.process is not None
    start = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log = server.log.read_text()
        raise AssertionError(f"the server still runs {STOP_SECONDS} s after SIGTERM: {log}") from None
    print(f"the server stopped {time.monotonic() - start:.1f} s after SIGTERM")
    return code


def _image(server: Server, link: str) -> bytes:
    response = httpx.get(server.url + link, timeout=30)
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), response.text
    return response.content


def _journal(data: Path) -> str:
    db = sqlite3.connect(data / store.DATABASE)
    try:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        db.close()


def _tasks() -> list[int]:
    """The Ray worker processes running a job (Ray titles a worker by its task: ray::run_job)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::run_job"):
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real Ray cluster on this machine: a head node and a second node, one CPU each, on the
    loopback address; shut down (every process of every node) at the end of the module."""
    from ray.cluster_utils import Cluster

    started = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK})
    try:
        started.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        started.wait_for_nodes(timeout=60)
        yield started
    finally:
        started.shutdown()


@pytest.fixture(scope="module")
def photo(content64: torch.Tensor) -> bytes:
    return _png(content64)


@pytest.fixture(scope="module")
def painting(style64: torch.Tensor) -> bytes:
    return _png(style64)


# --- on a cluster ----------------------------------------------------------------------------


@pytest.mark.slow
@needs_ray
def test_jobs_run_at_once_stream_cancel_stop_and_survive_a_restart(cluster: Any, tmp_path: Path, photo: bytes,
                                                                   painting: bytes) -> None:
    data = tmp_path / "data"
    server = Server(data, "--ray", cluster.address).start()
    try:
        ray = server.get("/api/status")["worker"]["ray"]
        assert (ray["address"], ray["jobs"]) == (cluster.address, 2)  # one job a CPU, two nodes
        assert _journal(data) == "delete"  # the nodes of a cluster may be other machines
        # A long transfer takes one node; the two fast jobs run on the other meanwhile.
        long = _submit(server, LONG, photo, painting)
        fast = [_submit(server, {"mode": "fast", "style_name": "starry_night"}, photo) for _ in range(2)]
        for job in fast:
            done = server.wait(job["id"], _ended, timeout=120)
            assert (done["status"], done["result"], done["message"]) == ("done", True, ""), done
            _image(server, done["links"]["result"])
        running = server.get(f"/api/jobs/{long['id']}")
        assert running["status"] == "running", running

        live = server.wait(long["id"], lambda j: j["progress"]["step"] >= 3 and j["preview"] >= 1)
        rows = server.get(live["links"]["history"])["rows"]
        assert len(rows) >= 3 and rows[0]["step"] == 1 and "total" in rows[0]
        _image(server, live["links"]["preview"])
        assert server.post(live["links"]["cancel"]).status_code == 200
        cancelled = server.wait(long["id"], _ended, timeout=60)
        assert cancelled["status"] == "cancelled" and cancelled["result"], cancelled
        assert cancelled["message"].startswith("cancelled after ") and "best image so far is kept" in (
            cancelled["message"]), cancelled
        kept = _image(server, cancelled["links"]["result"])

        # SIGTERM with a job running: it ends interrupted and the server is gone within seconds.
        stopped = _submit(server, LONG, photo, painting)
        server.wait(stopped["id"], lambda j: j["progress"]["step"] >= 1)
        assert _sigterm(server) in (0, -signal.SIGTERM)
    finally:
        server.stop(signal.SIGKILL)
    log = server.log.read_text()
    assert "Traceback" not in log, log

    again = Server(data).start()  # the local worker: what Ray recorded is the store's
    try:
        assert _journal(data) == "wal"
        jobs = {j["id"]: j for j in again.get("/api/jobs")["jobs"]}
        assert [jobs[j["id"]]["status"] for j in fast] == ["done", "done"]
        assert jobs[long["id"]]["status"] == "cancelled"
        assert _image(again, jobs[long["id"]]["links"]["result"]) == kept
        # Asked to stop through its row, the run ended its iteration and kept its best image.
        interrupted = jobs[stopped["id"]]
        assert (interrupted["status"], interrupted["message"], interrupted["result"]) == (
            "interrupted", "the server stopped; the best image so far is kept", True), interrupted
        _image(again, interrupted["links"]["result"])
        assert again.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    finally:
        again.stop(signal.SIGKILL)


@pytest.mark.slow
@needs_ray
@needs_proc
def test_a_ray_worker_killed_mid_job_fails_that_job_and_the_next_one_runs(cluster: Any, tmp_path: Path,
                                                                          photo: bytes, painting: bytes) -> None:
    server = Server(tmp_path / "data", "--ray", cluster.address, "--ray-jobs", "1").start()
    try:
        long = _submit(server, LONG, photo, painting)
        short = _submit(server, {"size": "64", "iterations": "2", "seed": "1"}, photo, painting)
        server.wait(long["id"], lambda j: j["progress"]["step"] >= 1)
        assert server.get(f"/api/jobs/{short['id']}")["status"] == "queued"  # one job at a time
        (worker,) = _tasks()
        os.kill(worker, signal.SIGKILL)

        failed = server.wait(long["id"], _ended, timeout=60)
        assert failed["status"] == "failed" and not failed["result"], failed
        assert failed["message"].startswith("the Ray worker running it died (")
        assert failed["message"].endswith("); the job was not finished") and "\n" not in failed["message"]
        folder = tmp_path / "data" / "jobs" / long["id"]
        assert not list(folder.glob(".*.tmp")) and not (folder / "result.png").exists()

        done = server.wait(short["id"], _ended, timeout=120)
        assert (done["status"], done["progress"]["step"], done["seed"]) == ("done", 2, 1), done
        _image(server, done["links"]["result"])
        assert _sigterm(server) in (0, -signal.SIGTERM)
    finally:
        server.stop(signal.SIGKILL)


# --- in this process -------------------------------------------------------------------------


def _queue(jobs: Store, content: torch.Tensor, style: torch.Tensor, config: TransferConfig) -> str:
    job_id = jobs.new_id()
    folder = jobs.folder(job_id)
    folder.mkdir()
    images.save_image(content, folder / store.CONTENT)
    images.save_image(style, folder / store.STYLE)
    settings = {"config": to_dict(config), "content_size": [content.shape[-1], content.shape[-2]]}
    jobs.create(job_id, "optimise", settings, content_name="photo", style_label="painting", max_queue=10)
    return job_id


def test_a_stop_request_outranks_a_cancel_and_reaches_running_jobs_only(tmp_path: Path, content64: torch.Tensor,
                                                                        style64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    first, second, queued = (_queue(jobs, content64, style64, TransferConfig(size=64)) for _ in range(3))
    for _ in range(2):
        assert jobs.claim_next() is not None
    jobs.request_cancel(first)
    jobs.request_stop([first, second, queued])
    assert jobs.stop_requested(first) and jobs.stop_requested(second) and jobs.cancel_requested(second)
    jobs.request_cancel(second)  # a cancel after the stop leaves it a stop: the job ends interrupted
    assert jobs.stop_requested(second)
    assert not jobs.stop_requested(queued) and not jobs.cancel_requested(queued)
    # Ending chosen jobs leaves the other running ones as they are.
    assert jobs.fail_running("gone", job_ids=[second, queued]) == 1
    assert [jobs.get(i).status for i in (first, second, queued)] == ["running", "failed", "queued"]


def test_the_store_keeps_its_journal_mode_unless_told(tmp_path: Path) -> None:
    Store(tmp_path, store.ROLLBACK)
    Store(tmp_path, journal=None)  # as a Ray task opens it
    assert _journal(tmp_path) == "delete"
    Store(tmp_path)
    assert _journal(tmp_path) == "wal"


@pytest.fixture
def studio_log() -> Iterator[None]:
    """The studio's logger as it was: a task in this process gives it a worker's handler."""
    import logging

    logger = logging.getLogger("impasto.studio")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers, logger.level, logger.propagate = handlers, level, propagate


@pytest.mark.slow
def test_a_ray_task_stopped_by_the_server_ends_interrupted_with_its_best_image(
        tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor, studio_log: None) -> None:
    jobs = Store(tmp_path)
    job_id = _queue(jobs, content64, style64, TransferConfig(size=64, iterations=5000, init="content", seed=1))
    assert jobs.claim_next() is not None
    threads = torch.get_num_threads()
    # run_job as Ray runs it, in this process.
    task = threading.Thread(target=run_job, args=(os.fspath(tmp_path), job_id, 0.0, threads))
    task.start()
    try:
        deadline = time.monotonic() + 120
        while jobs.get(job_id).step < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        jobs.request_stop([job_id])
        task.join(60)
    job = jobs.get(job_id)
    assert (job.status, job.result) == (store.INTERRUPTED, True), job
    assert job.message == "the server stopped; the best image so far is kept"
    assert (tmp_path / "jobs" / job_id / store.RESULT).is_file()


def test_a_node_that_does_not_see_the_data_folder_fails_the_job_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not see the studio's data folder .*every node shares"):
        run_job(os.fspath(tmp_path / "elsewhere"), "0123456789abcdef", 0.5, 1)
    assert not (tmp_path / "elsewhere").exists()  # nothing made on the node
    Store(tmp_path / "own")  # a node's own folder at that path: a store, but not the server's
    with pytest.raises(InputError, match="does not see the studio's data folder"):
        run_job(os.fspath(tmp_path / "own"), "0123456789abcdef", 0.5, 1)


@pytest.mark.parametrize(("args", "message"), [
    (["--ray-jobs", "2"], "--ray-jobs, --ray-cpus: only with --ray"),
    (["--ray", "--ray-jobs", "0"], "--ray-jobs: must be at least 1, got 0"),
    (["--ray", "--ray-cpus", "0"], "--ray-cpus: must be at least 1, got 0"),
], ids=["jobs without ray", "no jobs", "no cpus"])
def test_serve_refuses_bad_ray_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                       message: str) -> None:
    assert main(["serve", "--data-dir", str(tmp_path / "data"), *args]) == 2
    assert capsys.readouterr().err.strip() == f"impasto: error: {message}"


def test_ray_without_the_cluster_extra_says_how_to_install_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray raises ImportError
    assert main(["serve", "--data-dir", str(tmp_path / "data"), "--ray"]) == 2
    assert capsys.readouterr().err.strip() == ("impasto: error: --ray needs the cluster extra: "
                                                "pip install 'impasto[cluster]'")
