"""The worker: one process running the studio's jobs one at a time, oldest first.

A separate process so that the web server stays responsive while a transfer keeps the CPU busy
(and runs at a lower priority than the server for the same reason). Jobs go through
:func:`impasto.jobs.run`, as every other front end's do; the worker's part is only to read the
job from the store, feed the run's events to a :class:`~impasto.web.progress.LiveRecorder`, and
record how the job ended.

A run is asked to stop (after its current iteration, keeping the best image so far) when its
job's row asks for a cancel, when the server asks the worker to stop, or when the server has
died. The cancel state lives in the job's row rather than in a flag shared with the server, so a
cancel can never reach the wrong job when one job ends and the next begins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from impasto.web.store import CANCELLED, DONE, FAILED, INTERRUPTED, RESULT, Job, Store

log = logging.getLogger("impasto.studio")

# How often an idle worker looks for a queued job when not woken (the server wakes it at once).
IDLE_POLL_SECONDS = 1.0
# Lower priority than the server (nice value added), so the page answers while a job runs.
WORKER_NICENESS = 10
# A worker dying this soon after its start, this many times in a row, is not restarted again.
QUICK_DEATH_SECONDS, MAX_QUICK_DEATHS = 30.0, 3


class _Flag:
    """The cancel flag of one job, for :class:`~impasto.events.CancelToken`."""

    def __init__(self, store: Store, job_id: str, stop: Any) -> None:
        self.store, self.job_id, self.stop = store, job_id, stop
        self.server_gone = False

    def set(self) -> None:
        self.store.request_cancel(self.job_id)

    def is_set(self) -> bool:
        if self.stop.is_set():
            return True
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():
            self.server_gone = True
            return True
        return self.store.cancel_requested(self.job_id)


def main(data: Path, preview_seconds: float, stop: Any, wake: Any, niceness: int = WORKER_NICENESS) -> None:
    """The worker process: run queued jobs until ``stop`` is set or the server is gone."""
    logging.basicConfig(level=logging.INFO, format="impasto studio worker: %(message)s")
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    store = Store(data)
    parent = multiprocessing.parent_process()
    while not stop.is_set() and (parent is None or parent.is_alive()):
        job = store.claim_next()
        if job is None:
            wake.wait(IDLE_POLL_SECONDS)
            wake.clear()
            continue
        if not run_one(store, job, preview_seconds, stop):
            return


def run_one(store: Store, job: Job, preview_seconds: float, stop: Any) -> bool:
    """Run one claimed job and record its end; False when the server is gone (then nothing is
    recorded: the next server marks the job interrupted)."""
    from impasto import jobs
    from impasto.errors import ImpastoError
    from impasto.events import CancelToken
    from impasto.web.progress import LiveRecorder

    flag = _Flag(store, job.id, stop)
    folder = store.folder(job.id)
    library_job, remaining = build(store, job)
    recorder = LiveRecorder(store, job.id, preview_seconds, remaining)
    log.info("job %s (%s) started", job.id, job.mode)
    try:
        outcome = jobs.run(library_job, on_event=recorder, cancel=CancelToken(flag))
    except jobs.JobInterrupted:
        outcome = None
    except ImpastoError as exc:
        store.finish(job.id, FAILED, str(exc).replace(f"{folder}{os.sep}", ""))
        return True
    except Exception as exc:
        # Any other failure is a bug; the page gets one line, the server's log the traceback.
        log.exception("job %s failed", job.id)
        store.finish(job.id, FAILED, f"internal error ({type(exc).__name__}); see the server's log")
        return True
    if flag.server_gone:
        return False
    recorder.flush()
    _finish(store, job, outcome, stop.is_set())
    return True


def build(store: Store, job: Job) -> tuple[Any, Any]:
    """The library job of a studio job, and the time-left model of its run (pixels left after
    a step), None for fast jobs, which report no steps."""
    from impasto.config import KEEP, ApplyConfig, RegionSpec, TransferConfig, from_dict
    from impasto.gatys.schedule import plan
    from impasto.jobs import ApplyJob, TransferJob
    from impasto.web.progress import remaining_pixels
    from impasto.web.store import CONTENT, HISTORY, STYLE

    folder = store.folder(job.id)
    settings = job.settings
    if job.mode == "fast":
        config = from_dict(ApplyConfig, settings["config"])
        if (folder / STYLE).is_file():  # an uploaded painting, for the arbitrary-style network
            config = dataclasses.replace(config, style_images=(folder / STYLE,))
        return ApplyJob((folder / CONTENT,), folder / RESULT, config), None
    config = from_dict(TransferConfig, settings["config"])
    width, height = settings["content_size"]
    schedule = [(s.size, s.iterations) for s in plan(config)]
    aspect = min(width, height) / max(width, height)
    regions = tuple(RegionSpec(folder / r["mask"], None if r["style"] == KEEP else folder / r["style"])
                    for r in settings.get("regions", ()))
    # With regions the painting is optional (the rest stays the photo); without, a missing file
    # is the job's one-line failure, naming it.
    styles = () if regions and not (folder / STYLE).is_file() else (folder / STYLE,)
    transfer_job = TransferJob(folder / CONTENT, styles, folder / RESULT, config, history=folder / HISTORY,
                               regions=regions)
    return transfer_job, lambda step: remaining_pixels(schedule, aspect, step)


def _finish(store: Store, job: Job, outcome: Any, stopping: bool) -> None:
    folder = store.folder(job.id)
    has_result = (folder / RESULT).is_file()
    settings = None
    if outcome is not None and getattr(outcome.result, "config", None) is not None:
        from impasto.config import to_dict

        # The run's config, with the seed it drew, so that the page shows what can be repeated.
        settings = {**job.settings, "config": to_dict(outcome.result.config)}
    if outcome is not None and outcome.complete:
        if job.mode == "fast":
            store.record_progress(job.id, [], {"step": 1, "total": 1, "seconds": time.time() - (job.started or 0)})
        store.finish(job.id, DONE, "", result=has_result, settings=settings)
        log.info("job %s done", job.id)
        return
    kept = "; the best image so far is kept" if has_result else ""
    if not has_result and outcome is not None and job.mode != "fast":
        kept = ", before the picture formed: no image to keep"
    if stopping:
        store.finish(job.id, INTERRUPTED, f"the server stopped{kept}", result=has_result, settings=settings)
    else:
        when = "before the first iteration" if outcome is None else f"after {store.get(job.id).step} iterations"
        store.finish(job.id, CANCELLED, f"cancelled {when}{kept}", result=has_result, settings=settings)
    log.info("job %s stopped", job.id)


class Worker:
    """The server's handle on the worker process: started with the server, restarted if it dies
    (its running job is then marked failed), stopped with the server (its running job ends as
    interrupted, keeping the best image so far)."""

    def __init__(self, data: Path, preview_seconds: float, niceness: int = WORKER_NICENESS) -> None:
        self.data = data
        self.preview_seconds = preview_seconds
        self.niceness = niceness
        self.started = 0.0
        # spawn, not fork: the server has threads, and torch must not inherit a forked state.
        self.context = multiprocessing.get_context("spawn")
        self.stop_event = self.context.Event()
        self.wake_event = self.context.Event()
        self.process: BaseProcess | None = None
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="impasto-worker-watch", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        self.process = self.context.Process(
            target=main, args=(self.data, self.preview_seconds, self.stop_event, self.wake_event, self.niceness),
            name="impasto-studio-worker", daemon=True,
        )
        self.started = time.monotonic()
        self.process.start()

    def _supervise(self) -> None:
        failures = 0
        while not self._closing.wait(1.0):
            process = self.process
            if process is None or process.is_alive() or self._closing.is_set():
                continue
            code = process.exitcode
            Store(self.data).fail_running(f"the worker process stopped unexpectedly (exit code {code})")
            # One that dies at once again and again cannot start (a broken install): stop trying.
            failures = failures + 1 if time.monotonic() - self.started < QUICK_DEATH_SECONDS else 1
            if failures >= MAX_QUICK_DEATHS:
                log.error("the worker process keeps stopping at start (exit code %s); jobs stay queued", code)
                return
            log.error("the worker process stopped (exit code %s); starting another", code)
            self._spawn()

    def wake(self) -> None:
        if not self._closing.is_set():
            self.wake_event.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the worker to stop, wait up to ``timeout`` seconds, then end it."""
        self._closing.set()
        self.stop_event.set()
        self.wake_event.set()
        process = self.process
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if self._watch is not None:
            self._watch.join(2)
        # If it had to be ended mid-job, the job is interrupted rather than left running.
        Store(self.data).fail_running("the server stopped while this job ran", status=INTERRUPTED)
        # Released now rather than at exit, where the resource tracker would report them leaked.
        self.process = None
        del self.stop_event, self.wake_event

