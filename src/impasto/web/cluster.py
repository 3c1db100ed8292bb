"""The studio's queue on a Ray cluster (``impasto serve --ray``): several jobs at once.

:class:`RayQueue` takes the place of the local :class:`~impasto.web.worker.Worker` in the server.
A thread of the server, the dispatcher, claims queued jobs from the store, oldest first, up to
``jobs`` at once, and submits each as a Ray task, :func:`run_job`. The task runs wherever Ray
places it; it opens the same store in the data folder, which every node sees on a shared file
system, and does for its job what the local worker does (:func:`impasto.web.worker.run_one`):
it runs it through :func:`impasto.jobs.run`, writes progress rows and previews as it goes, reads
the job's row for a cancel before every iteration and records how the job ended. The page, the
live stream and cancel therefore work as they do with the local worker.

Faults. A task is never run twice (``max_retries=0``): the job was queued once, and a second run
could not take up where the first stopped. When a task's worker process or node dies, the
dispatcher marks its job failed with one line, as the local worker's death does, and the queue
goes on. The server's stop asks the running jobs to stop through their rows (:meth:`Store.request_stop`):
after their current iteration they end interrupted, keeping their best image. It waits a few
seconds for them, cancels the tasks left, marks their jobs interrupted and leaves the cluster; a
Ray instance that the server started for itself ends with it.

Ray is imported only when a queue connects, never by ``import impasto.web.cluster``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impasto.errors import ImpastoError, InputError
from impasto.web.store import DATABASE, INTERRUPTED, ROLLBACK, RUNNING, WAL, Store
from impasto.web.worker import IDLE_POLL_SECONDS

log = logging.getLogger("impasto.studio")

# The longest the dispatcher waits on running tasks before it looks at the queue and the stop.
POLL_SECONDS = 0.25
# How long the server's stop waits for the running jobs to end their iteration and record it.
STOP_SECONDS = 3.0
# How often the jobs at once follow the cluster's CPUs (nodes join and leave) when not given.
SLOTS_SECONDS = 5.0
STOPPED = "the server stopped while this job ran"


@dataclass(frozen=True)
class RayOptions:
    """Where and how the jobs run: ``address`` the cluster's (``auto``, ``HOST:PORT``), or None
    for a Ray instance started on this machine, on the loopback address, for this server alone;
    ``jobs`` at once (None: as many as the cluster's CPUs hold, ``cpus`` a job); ``cpus`` the
    CPUs each job asks of Ray, which are also its PyTorch threads."""

    address: str | None = None
    jobs: int | None = None
    cpus: int = 1

    @property
    def journal(self) -> str:
        """The store's journal mode: a cluster's nodes may be other machines (see :mod:`impasto.web.store`)."""
        return ROLLBACK if self.address else WAL

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a Ray instance on this machine"
        at_once = f"{self.jobs} at once" if self.jobs else "as many at once as its CPUs hold"
        return f"{where}, {at_once}, {self.cpus} CPU{'s' if self.cpus > 1 else ''} each"


def connect(options: RayOptions) -> Any:
    """Join the cluster (or start a Ray instance on this machine) for the server, its workers'
    output going to the server's log; the ``ray`` module. A missing ``ray`` package or a cluster
    that answers nothing is one InputError line."""
    from impasto.batch import _connect, _import_ray

    ray = _import_ray(local=options.address is None)
    if ray.is_initialized():
        return ray
    if not sys.stderr.isatty():
        # Ray colours the workers' lines (read as each line is relayed); a log file wants none.
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        _connect(ray, options.address, log_to_driver=True)
    finally:
        # ray.init makes SIGTERM end the process at once; the server's own handler must answer
        # it, so that the running jobs are asked to stop and keep their best images.
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return ray


def run_job(data: str, job_id: str, preview_seconds: float, threads: int) -> None:
    """A Ray task: run the studio's claimed job ``job_id``, whose store is in the folder ``data``,
    as the local worker does, and record how it ended. Raises InputError when this node does not
    see the data folder (the dispatcher makes that the job's failure)."""
    import torch

    from impasto.web.worker import run_one

    folder = Path(data)
    # Not Store(folder) at once: that would make an empty store on a node that does not share it.
    store = Store(folder, journal=None) if (folder / DATABASE).is_file() else None
    job = store.get(job_id) if store is not None else None
    if store is None or job is None:
        raise InputError(f"the node that ran it does not see the studio's data folder {data}: it must be on a "
                         "file system every node shares, at the same path")
    if job.status != RUNNING:  # it ended meanwhile: a restarted server marked it
        return
    torch.set_num_threads(threads)
    _log_to_stderr()
    run_one(store, job, preview_seconds, _ServerStop(store, job_id))


class _ServerStop:
    """The server's request to stop, as :func:`~impasto.web.worker.run_one`'s stop flag: the
    job's own row says so (no process of the server's is reachable from another node)."""

    def __init__(self, store: Store, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    def is_set(self) -> bool:
        return self.store.stop_requested(self.job_id)


def _log_to_stderr() -> None:
    """The local worker's log lines, which Ray relays to the server's log."""
    studio = logging.getLogger("impasto.studio")
    if not studio.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("impasto studio worker: %(message)s"))
        studio.addHandler(handler)
        studio.setLevel(logging.INFO)
        studio.propagate = False


class RayQueue:
    """The server's handle on its jobs running on Ray (the module's docstring tells how); the
    same methods as :class:`~impasto.web.worker.Worker`'s."""

    def __init__(self, data: Path, preview_seconds: float, options: RayOptions) -> None:
        self.data = data
        self.preview_seconds = preview_seconds
        self.options = options
        self.store = Store(data, options.journal)
        self.ray: Any = None
        self._remote: Any = None
        # Each running job's task, by its reference: the dispatcher's, then (after it ends) the stop's.
        self.running: dict[Any, str] = {}
        self._slots, self._slots_seen = 0, -math.inf
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None  # the jobs run in Ray's worker processes, perhaps on other machines

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closing.is_set()

    def status(self) -> dict[str, Any]:
        """What ``GET /api/status`` says of the queue."""
        return {"alive": self.alive, "pid": None,
                "ray": {"address": self.options.address or "local", "jobs": self._slots,
                        "running": len(self.running), "cpus_per_job": self.options.cpus}}

    def start(self) -> None:
        self.ray = connect(self.options)
        self._remote = self.ray.remote(run_job).options(num_cpus=self.options.cpus, max_retries=0)
        self.slots()
        self._thread = threading.Thread(target=self._dispatch, name="impasto-ray-dispatch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the dispatcher a job is queued. Called on the event loop: it never blocks."""
        self._wake.set()

    def slots(self) -> int:
        """The jobs that may run at once: ``jobs``, or the cluster's CPUs over a job's."""
        if self.options.jobs is not None:
            self._slots = self.options.jobs
        elif time.monotonic() - self._slots_seen >= SLOTS_SECONDS:
            cpus = self.ray.cluster_resources().get("CPU", 0)
            self._slots, self._slots_seen = int(cpus // self.options.cpus), time.monotonic()
        return self._slots

    def _dispatch(self) -> None:
        looked = -math.inf
        while not self._closing.is_set():
            try:
                # The queue is read when a job is queued, when a job ends, and every second.
                if self._wake.is_set() or time.monotonic() - looked >= IDLE_POLL_SECONDS:
                    self._wake.clear()
                    looked = time.monotonic()
                    self._launch()
                if self._collect():
                    looked = -math.inf
            except Exception:
                # The cluster may be gone for a moment (its head restarting): keep trying.
                log.exception("the Ray queue failed; trying again in a second")
                self._closing.wait(IDLE_POLL_SECONDS)

    def _launch(self) -> None:
        """Claim queued jobs, oldest first, and submit each as a task, until every slot is taken."""
        while len(self.running) < self.slots() and not self._closing.is_set():
            job = self.store.claim_next()
            if job is None:
                return
            try:
                ref = self._remote.remote(os.fspath(self.data), job.id, self.preview_seconds, self.options.cpus)
            except Exception as exc:
                self.store.fail_running(f"it could not be sent to the Ray cluster ({type(exc).__name__})",
                                        job_ids=[job.id])
                raise
            self.running[ref] = job.id
            log.info("job %s (%s) sent to Ray", job.id, job.mode)

    def _collect(self) -> bool:
        """Wait a moment for tasks to end and settle those that did; True when some did."""
        if not self.running:
            self._wake.wait(IDLE_POLL_SECONDS)
            return False
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_SECONDS)
        if ready:
            # Every task ended by now, the first included.
            ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        for ref in ready:
            self._settle(ref, self.running.pop(ref))
        return bool(ready)

    def _settle(self, ref: Any, job_id: str) -> None:
        """A task ended: its job recorded its own end, unless the task failed or its worker died,
        which is then the job's failure, one line."""
        errors = self.ray.exceptions
        try:
            self.ray.get(ref)
            message = "its Ray task ended without recording how the job ended"
        except errors.RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            if isinstance(cause, ImpastoError):
                message = str(cause)
            else:
                log.error("job %s: its Ray task failed: %s", job_id, exc)
                message = f"internal error ({type(cause).__name__}) in its Ray task; see the server's log"
        except errors.RayError as exc:
            # The worker process was killed, ran out of memory, or its node left the cluster.
            message = f"the Ray worker running it died ({type(exc).__name__}); the job was not finished"
        if self.store.fail_running(message, job_ids=[job_id]):
            log.error("job %s failed: %s", job_id, message)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Ask the running jobs to stop, wait up to ``timeout`` seconds for them to end their
        iteration and keep their best image, then cancel the tasks left and leave the cluster:
        a server stops within seconds whatever it runs."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.ray is None:
            return
        running = dict(self.running)
        try:
            if running:
                self.store.request_stop(running.values())
                ready, left = self.ray.wait(list(running), num_returns=len(running), timeout=timeout)
                for ref in ready:
                    self._settle(ref, running.pop(ref))
                for ref in left:
                    self.ray.cancel(ref, force=True)
                if left:  # killed within a moment; then the hidden files of their writes can go
                    self.ray.wait(left, num_returns=len(left), timeout=1.0)
                self.store.fail_running(STOPPED, INTERRUPTED, job_ids=running.values())
        finally:
            self.ray.shutdown()
