"""``impasto serve`` when its worker process dies: the job it ran is reported failed, a new
worker takes the next job, and the server still stops within seconds on SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import torch

from impasto import images
from studio_server import Server, wait_gone

STOP_SECONDS = 10.0


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
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log = server.log.read_text()
        raise AssertionError(f"the server still runs {STOP_SECONDS} s after SIGTERM: {log}") from None


@pytest.mark.slow
def test_a_worker_killed_mid_job_fails_that_job_and_the_next_one_runs(
        tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> None:
    photo, painting = _png(content64), _png(style64)
    server = Server(tmp_path / "data").start()
    try:
        long = _submit(server, {"size": "64", "iterations": "5000"}, photo, painting)
        short = _submit(server, {"size": "64", "iterations": "2", "seed": "1"}, photo, painting)
        server.wait(long["id"], lambda j: j["progress"]["step"] >= 1)
        worker = server.get("/api/status")["worker"]["pid"]
        os.kill(worker, signal.SIGKILL)

        failed = server.wait(long["id"], _ended, timeout=60)
        assert failed["status"] == "failed", failed
        assert failed["message"] == "the worker process stopped (signal 9); the job was not finished"
        assert not failed["result"]
        assert httpx.get(server.url + failed["links"]["self"] + "/result", timeout=30).status_code == 404
        # A write the worker was killed in leaves nothing behind: no temporary file, no result.
        folder = tmp_path / "data" / "jobs" / long["id"]
        assert not list(folder.glob(".*.tmp")) and not (folder / "result.png").exists()

        done = server.wait(short["id"], _ended)
        assert (done["status"], done["progress"]["step"], done["seed"]) == ("done", 2, 1), done
        result = httpx.get(server.url + done["links"]["self"] + "/result", timeout=30)
        assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
        replacement = server.get("/api/status")["worker"]["pid"]
        assert replacement != worker

        assert _sigterm(server) in (0, -signal.SIGTERM)
    finally:
        server.stop(signal.SIGKILL)
    wait_gone(replacement, timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["worker-sigterm", "worker-sigkill"])
def test_sigterm_right_after_the_idle_worker_died_stops_the_server(
        tmp_path: Path, content64: torch.Tensor, how: signal.Signals) -> None:
    server = Server(tmp_path / "data").start()
    try:
        # One quick job first, so that the worker is past its start and waits for the next one:
        # a worker killed there is the case that once left the server unable to stop.
        fast = _submit(server, {"mode": "fast", "style_name": "starry_night"}, _png(content64))
        assert server.wait(fast["id"], _ended)["status"] == "done"
        worker = server.get("/api/status")["worker"]["pid"]
        os.kill(worker, how)
        wait_gone(worker, timeout=10)
        assert _sigterm(server) in (0, -signal.SIGTERM)
        log = server.log.read_text()
    finally:
        server.stop(signal.SIGKILL)
    assert "Traceback" not in log, log
