"""A real ``impasto serve`` process for the studio's end-to-end tests: a free port on 127.0.0.1,
a temporary data folder, the worker at normal priority (the tests wait for it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from impasto import examples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``impasto serve`` on ``data``; ``url`` once started."""

    def __init__(self, data: Path, *extra: str) -> None:
        self.data = data
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 120.0) -> Server:
        paintings = ["--examples", str(examples.STYLE)]
        command = [sys.executable, "-m", "impasto", "serve", "--port", str(self.port), "--data-dir", str(self.data),
                   "--preview-seconds", "0.2", "--worker-nice", "0", *paintings, *self.extra]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"impasto serve exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if self.get("/api/status")["worker"]["alive"]:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"impasto serve did not start in {timeout} s: {self.log.read_text()}")

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=60, **kwargs)

    def wait(self, job_id: str, until: Any, timeout: float = 300.0) -> dict[str, Any]:
        """Poll the job until ``until(job)`` holds; return that job."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/jobs/{job_id}")
            if until(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never reached the state waited for: {job}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def wait_gone(pid: int, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A child of a killed server is re-parented; a zombie would linger as "alive" to kill(0).
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" in status.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs")


__all__ = ["Server", "free_port", "signal", "wait_gone"]
