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

The server talks to the worker through one pipe per worker process: a byte wakes it when a job
is queued, and closing the pipe asks it to stop. Nothing else is shared between the two, because
a process killed while it waits on a shared ``multiprocessing`` Event leaves the Event's
condition counting a sleeper that will never wake: the next ``set()`` (a wake, or the server's
stop) then blocks for ever. Writing to or closing a pipe never waits on the other end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
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


class _ServerLink:
    """The worker's end of its pipe from the server: a byte wakes it, the end of the pipe (the
    server closed it, or died) asks it to stop. ``is_set`` makes it the stop flag of
    :func:`run_one`."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.stopping = False

    def wait(self, timeout: float) -> None:
        """Return when woken, asked to stop, or after ``timeout`` seconds; wakes are used up."""
        try:
            while self.pipe.poll(timeout):
                self.pipe.recv_bytes()
                timeout = 0
        except (EOFError, OSError):
            self.stopping = True

    def is_set(self) -> bool:
        if not self.stopping:
            self.wait(0)
        return self.stopping


class _Flag:
    """The cancel flag of one job, for :class:`~impasto.events.CancelToken`."""

    def __init__(self, store: Store, job_id: str, stop: Any) -> None:
        self.store, self.job_id, self.stop = store, job_id, stop
        self.server_gone = False

    def set(self) -> None:
        self.store.request_cancel(self.job_id)

    def is_set(self) -> bool:
        # The server's death first: it also ends the pipe, which would read as a request to stop,
        # and a job the server did not stop is left for the next server to mark.
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():
            self.server_gone = True
            return True
        if self.stop.is_set():
            return True
        return self.store.cancel_requested(self.job_id)


def main(data: Path, preview_seconds: float, server: Connection, niceness: int = WORKER_NICENESS) -> None:
    """The worker process: run queued jobs until the server closes ``server`` or is gone."""
    # Ctrl-C in a terminal signals the whole process group. The server asks this process to stop
    # through the pipe instead, so that the running job ends interrupted with its best image
    # rather than dying mid-iteration (and being taken by the server for a crashed worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="impasto studio worker: %(message)s")
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    store = Store(data)
    link = _ServerLink(server)
    parent = multiprocessing.parent_process()
    while not link.is_set() and (parent is None or parent.is_alive()):
        job = store.claim_next()
        if job is None:
            link.wait(IDLE_POLL_SECONDS)
            continue
        if not run_one(store, job, preview_seconds, link):
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


def _ended(exitcode: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that ended it)."""
    return f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"


class Worker:
    """The server's handle on the worker process: started with the server, restarted if it dies
    (its running job is then marked failed), stopped with the server (its running job ends as
    interrupted, keeping the best image so far).

    Each worker process gets a new pipe (the module's docstring says why a pipe). ``_lock``
    orders the three threads that use it: the event loop's wakes, the watcher that replaces a
    dead worker, and the shutdown's stop, so that no write reaches a closed pipe and no worker is
    started once the stop has begun."""

    def __init__(self, data: Path, preview_seconds: float, niceness: int = WORKER_NICENESS) -> None:
        self.data = data
        self.preview_seconds = preview_seconds
        self.niceness = niceness
        self.started = 0.0
        # spawn, not fork: the server has threads, and torch must not inherit a forked state.
        self.context = multiprocessing.get_context("spawn")
        self.process: BaseProcess | None = None
        self._pipe: Connection | None = None
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def status(self) -> dict[str, Any]:
        """What ``GET /api/status`` says of the worker."""
        return {"alive": self.alive, "pid": self.pid}

    def start(self) -> None:
        with self._lock:
            self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="impasto-worker-watch", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        """Start a worker process with a new pipe; called holding ``_lock``."""
        if self._pipe is not None:
            self._pipe.close()
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=main, args=(self.data, self.preview_seconds, reader, self.niceness),
            name="impasto-studio-worker", daemon=True,
        )
        self.started = time.monotonic()
        process.start()
        # The reading end now lives in the worker only, so that a write to a dead worker fails at
        # once; and writes never block, so that a worker that reads nothing cannot hold the server
        # (a full pipe already holds a wake).
        reader.close()
        os.set_blocking(writer.fileno(), False)
        self.process, self._pipe = process, writer

    def _supervise(self) -> None:
        failures = 0
        while not self._closing.wait(1.0):
            process = self.process
            if process is None or process.is_alive():
                continue
            if self._closing.is_set():  # ended by stop(), which marks its job interrupted
                return
            how = _ended(process.exitcode)
            Store(self.data).fail_running(f"the worker process stopped ({how}); the job was not finished")
            # One that dies at once again and again cannot start (a broken install): stop trying.
            failures = failures + 1 if time.monotonic() - self.started < QUICK_DEATH_SECONDS else 1
            if failures >= MAX_QUICK_DEATHS:
                log.error("the worker process keeps stopping at start (%s); jobs stay queued", how)
                return
            with self._lock:
                if self._closing.is_set():  # a stop began meanwhile: no new worker to leave behind
                    return
                log.error("the worker process stopped (%s); starting another", how)
                self._spawn()

    def wake(self) -> None:
        """Tell the worker a job is queued. Called on the event loop: it never blocks."""
        with self._lock:
            if self._pipe is None or self._closing.is_set():
                return
            # Broken pipe: the worker has died, and its successor looks at the queue when it starts.
            # Would block: the pipe is full of wakes already.
            with contextlib.suppress(OSError):
                self._pipe.send_bytes(b"w")

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop, wait up to ``timeout`` seconds (a running job ends its iteration
        and keeps its best image), then end it: a server stops within seconds whatever it runs."""
        with self._lock:
            self._closing.set()
            process, pipe = self.process, self._pipe
            self._pipe = None
        if pipe is not None:
            pipe.close()  # the worker reads the pipe's end as the request to stop
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        if self._watch is not None:
            self._watch.join(2)
        # If it had to be ended mid-job, the job is interrupted rather than left running.
        Store(self.data).fail_running("the server stopped while this job ran", status=INTERRUPTED)
