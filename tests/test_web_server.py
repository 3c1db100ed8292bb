"""``impasto serve`` as a process: finished jobs survive a server that is killed, the job it was
running is marked interrupted, queued jobs run after the restart, and a stop is clean."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest
import torch

from impasto import images
from impasto.cli import main
from studio_server import Server, wait_gone


def _png(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    images.to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_restart_keeps_finished_jobs(tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> None:
    data = tmp_path / "data"
    photo, painting = _png(content64), _png(style64)
    server = Server(data).start()
    try:
        fast = server.post("/api/jobs", data={"mode": "fast", "style_name": "starry_night"},
                           files={"content": ("p.png", photo)})
        assert fast.status_code == 201, fast.text
        done = server.wait(fast.json()["id"], lambda j: j["status"] == "done")
        before = httpx_bytes(server, done["links"]["result"])
        long = server.post("/api/jobs", data={"size": "64", "iterations": "5000"},
                           files={"content": ("p.png", photo), "style": ("s.png", painting)}).json()
        queued = server.post("/api/jobs", data={"size": "64", "iterations": "2", "seed": "1"},
                             files={"content": ("p.png", photo), "style": ("s.png", painting)}).json()
        server.wait(long["id"], lambda j: j["progress"]["step"] >= 2)
        worker = server.get("/api/status")["worker"]["pid"]
    finally:
        # Killed, not stopped: nothing of the server's shutdown runs.
        server.stop(signal.SIGKILL)
    wait_gone(worker)  # the orphaned worker notices at its next iteration and leaves

    again = Server(data).start()
    try:
        after = again.get(f"/api/jobs/{done['id']}")
        assert after["status"] == "done" and httpx_bytes(again, after["links"]["result"]) == before
        interrupted = again.get(f"/api/jobs/{long['id']}")
        assert interrupted["status"] == "interrupted"
        assert interrupted["message"] == "the server stopped while this job ran"
        assert interrupted["progress"]["step"] >= 2 and "preview" in interrupted["links"]
        finished = again.wait(queued["id"], lambda j: j["status"] == "done")
        assert finished["seed"] == 1 and finished["progress"]["step"] == 2
        listed = [j["id"] for j in again.get("/api/jobs")["jobs"]]
        assert listed == [queued["id"], long["id"], fast.json()["id"]]
        worker = again.get("/api/status")["worker"]["pid"]
    finally:
        # A graceful stop: uvicorn shuts down, then ends by the signal it caught, as a process should.
        assert again.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    wait_gone(worker, timeout=5)


def httpx_bytes(server: Server, path: str) -> bytes:
    import httpx2

    response = httpx2.get(server.url + path, timeout=30)
    assert response.status_code == 200
    return response.content


def test_serve_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    cases = [
        (["--port", "70000"], "--port: must lie in [1, 65535]"),
        (["--data-dir", str(tmp_path / "file")], "exists and is not a folder"),
        (["--examples", str(tmp_path / "none")], "examples folder not found"),
        (["--max-queue", "0"], "--max-queue: must be at least 1"),
        (["--preview-seconds", "0"], "--preview-seconds: must lie in"),
        (["--worker-nice", "40"], "--worker-nice: must lie in [0, 19]"),
    ]
    for args, phrase in cases:
        assert main(["serve", "--data-dir", str(tmp_path / "d"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("impasto: error: ") and phrase in err and err.count("\n") == 1
