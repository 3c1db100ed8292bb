"""The studio's worker and store, in this process: jobs run through the library, a cancel stops
within one iteration keeping the best image, progress and previews are throttled, restarts keep
finished jobs, and the time left is estimated from pixels."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from impasto import evaluate, images
from impasto.config import ApplyConfig, TransferConfig, to_dict
from impasto.events import Event
from impasto.storage import read_json
from impasto.style_spec import SHIPPED_ARBITRARY
from impasto.web import store
from impasto.web.progress import LiveRecorder, remaining_pixels, time_left
from impasto.web.store import Store
from impasto.web.worker import run_one


def _queue(jobs: Store, content: torch.Tensor, style: torch.Tensor | None, mode: str, config) -> str:
    job_id = jobs.new_id()
    folder = jobs.folder(job_id)
    folder.mkdir()
    images.save_image(content, folder / store.CONTENT)
    if style is not None:
        images.save_image(style, folder / store.STYLE)
    settings = {"config": to_dict(config), "content_size": [content.shape[-1], content.shape[-2]]}
    jobs.create(job_id, mode, settings, content_name="photo", style_label="painting", max_queue=10)
    return job_id


def _run_next(jobs: Store, preview_seconds: float = 0.0) -> store.Job:
    job = jobs.claim_next()
    assert job is not None and job.status == store.RUNNING
    assert run_one(jobs, job, preview_seconds, threading.Event())
    ended = jobs.get(job.id)
    assert ended is not None
    return ended


@pytest.mark.slow
def test_a_transfer_runs_to_the_end(tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    job_id = _queue(jobs, content64, style64, "optimise", TransferConfig(size=64, iterations=4, seed=3))
    job = _run_next(jobs)
    assert (job.status, job.step, job.total, job.result, job.message) == (store.DONE, 4, 4, True, "")
    rows = jobs.iterations(job_id)
    assert [r["step"] for r in rows] == [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert job.losses["total"] == rows[-1]["total"]
    folder = jobs.folder(job_id)
    result = images.load_image(folder / store.RESULT)
    assert result.shape[-2:] == content64.shape[-2:]
    # Every iteration was flushed (preview_seconds 0): one preview per iteration, the last one kept.
    assert job.preview == 4 and (folder / store.PREVIEW).is_file()
    # The library wrote its re-runnable job file and history beside the result.
    assert read_json(folder / "result.job.json")["config"]["seed"] == 3
    assert len(read_json(folder / store.HISTORY)["history"]) == 4


def _run_cancelling_at(jobs: Store, job_id: str, step: int) -> tuple[store.Job, list[int]]:
    """Run the next job while another thread asks to cancel ``job_id`` once it has reached
    ``step``; the job as it ended, and the step at which the cancel was asked."""
    seen: list[int] = []

    def cancel() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = jobs.get(job_id)
            if job is not None and job.step >= step:
                seen.append(job.step)
                jobs.request_cancel(job_id)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=cancel)
    watcher.start()
    job = _run_next(jobs)
    watcher.join()
    return job, seen


@pytest.mark.slow
def test_cancel_stops_within_one_iteration_and_keeps_the_best_image(tmp_path: Path, content64: torch.Tensor,
                                                                    style64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    # Five iterations at 32 px, then the final scale: a cancel there keeps its best image.
    config = TransferConfig(size=64, scales=2, min_scale_size=32, coarse_iterations=5, iterations=500, seed=0)
    job_id = _queue(jobs, content64, style64, "optimise", config)
    job, seen = _run_cancelling_at(jobs, job_id, 15)
    rows = jobs.iterations(job_id)
    assert job.status == store.CANCELLED and job.result
    # The flag is read before every iteration: at most the one under way when it was set still runs.
    assert seen and len(rows) <= seen[0] + 1 < 500
    assert job.message == f"cancelled after {len(rows)} iterations; the best image so far is kept"
    # The kept image is the best iterate: its loss (float32, as saved in 8 bits) is near the lowest
    # loss the run reported and far below where it started.
    folder = jobs.folder(job_id)
    kept = evaluate(folder / store.RESULT, folder / store.CONTENT, folder / store.STYLE,
                    TransferConfig(size=64)).total.item()
    final = [r["total"] for r in rows if r["scale"] == 1]
    assert kept < 0.5 * final[0]
    assert kept == pytest.approx(min(final), rel=0.2)


@pytest.mark.slow
def test_a_cancel_before_the_picture_formed_keeps_no_image(tmp_path: Path, content64: torch.Tensor,
                                                           style64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    config = TransferConfig(size=64, scales=2, min_scale_size=32, coarse_iterations=300, iterations=5, seed=0)
    job_id = _queue(jobs, content64, style64, "optimise", config)
    job, _ = _run_cancelling_at(jobs, job_id, 2)
    assert job.status == store.CANCELLED and not job.result
    assert job.message == f"cancelled after {job.step} iterations, before the picture formed: no image to keep"
    assert not (jobs.folder(job_id) / store.RESULT).exists()


def test_a_fast_job_writes_its_result(tmp_path: Path, content64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    job_id = _queue(jobs, content64, None, "fast", ApplyConfig(style="starry_night", size=64))
    job = _run_next(jobs)
    assert (job.status, job.step, job.total, job.result) == (store.DONE, 1, 1, True)
    assert images.load_image(jobs.folder(job_id) / store.RESULT).shape[-2:] == content64.shape[-2:]


def test_a_fast_job_with_an_uploaded_painting_runs_the_installed_arbitrary_network(
        tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    full = _queue(jobs, content64, style64, "fast", ApplyConfig(style=SHIPPED_ARBITRARY))
    assert _run_next(jobs).status == store.DONE
    none = _queue(jobs, content64, style64, "fast", ApplyConfig(style=SHIPPED_ARBITRARY, strength=0.0))
    assert _run_next(jobs).status == store.DONE
    painted, photo = (images.load_image(jobs.folder(i) / store.RESULT) for i in (full, none))
    # Strength 0 is the photo (up to PNG rounding); the painting's network changes it.
    assert (photo - images.load_image(jobs.folder(none) / store.CONTENT)).abs().max() <= 1 / 255
    assert (painted - photo).abs().mean() > 0.02


def test_a_failing_job_ends_failed_with_one_line(tmp_path: Path, content64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    job_id = _queue(jobs, content64, None, "optimise", TransferConfig(size=64, iterations=2))
    job = _run_next(jobs)  # no style file in its folder
    assert job.status == store.FAILED and "\n" not in job.message
    assert str(tmp_path) not in job.message and job.message.startswith(store.STYLE)
    assert not job.result and jobs.get(job_id) == job


def test_a_restart_keeps_finished_jobs_and_marks_running_ones_interrupted(tmp_path: Path,
                                                                          content64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    config = TransferConfig(size=64, iterations=2)
    done, running, waiting = (_queue(jobs, content64, content64, "optimise", config) for _ in range(3))
    jobs.claim_next()
    jobs.finish(done, store.DONE, result=True)
    jobs.claim_next()
    again = Store(tmp_path)  # a new server on the same folder
    assert again.recover() == 1
    states = {j.id: (j.status, j.result) for j in again.recent()}
    assert states == {done: (store.DONE, True), running: (store.INTERRUPTED, False), waiting: (store.QUEUED, False)}
    assert again.get(running).message == "the server stopped while this job ran"
    assert again.position(again.get(waiting)) == 1
    assert [j.id for j in again.recent()] == [waiting, running, done]


def test_cancel_reaches_only_its_own_job(tmp_path: Path, content64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    first, second = (_queue(jobs, content64, content64, "optimise", TransferConfig(size=64)) for _ in range(2))
    jobs.claim_next()
    assert jobs.request_cancel(first).status == store.RUNNING and jobs.cancel_requested(first)
    assert not jobs.cancel_requested(second)
    assert jobs.request_cancel(second).status == store.CANCELLED
    assert jobs.claim_next() is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_previews_and_progress_are_throttled(tmp_path: Path, content64: torch.Tensor) -> None:
    jobs = Store(tmp_path)
    job_id = _queue(jobs, content64, content64, "optimise", TransferConfig(size=64))
    clock = _Clock()
    renders: list[int] = []

    def event(step: int) -> Event:
        from impasto.events import Iteration

        def image() -> torch.Tensor:
            renders.append(step)
            return torch.full((1, 3, 40, 40), step / 20)

        return Iteration(step=step, total=20, seconds=0.1 * step, losses={"total": 1.0 / step}, scale=0, scales=1,
                         height=40, width=40, evaluations=1, image=image)

    recorder = LiveRecorder(jobs, job_id, every=0.5, clock=clock)
    for step in range(1, 21):
        recorder(event(step))
        clock.now += 0.2
    # Steps 1, 4, 7, ... (0.6 s apart), and the last.
    assert renders == [1, 4, 7, 10, 13, 16, 19, 20]
    assert [r["step"] for r in jobs.iterations(job_id)] == list(range(1, 21))
    job = jobs.get(job_id)
    assert job.step == 20 and job.preview == len(renders) and job.losses == {"total": 1 / 20}


def test_time_left_counts_pixels_not_steps() -> None:
    # Two scales: 10 iterations at 32 px, then 10 at 64 px (4x the pixels) of a square image.
    schedule = [(32, 10), (64, 10)]
    assert remaining_pixels(schedule, 1.0, 0) == 10 * 32 * 32 + 10 * 64 * 64
    assert remaining_pixels(schedule, 1.0, 15) == 5 * 64 * 64
    assert remaining_pixels(schedule, 0.5, 20) == 0
    rows = [{"seconds": 5.0 + 0.1 * i, "height": 32, "width": 32} for i in range(5)]
    # 0.1 s per 32x32 iteration (the first row, which includes loading, left out) ...
    assert time_left(rows, remaining_pixels(schedule, 1.0, 5)) == pytest.approx(5 * 0.1 + 10 * 0.4)
    assert time_left(rows[:1], 1000.0) is None
    assert time_left(rows, 0.0) == 0.0
