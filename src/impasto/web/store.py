"""The studio's jobs on disk: one SQLite table of jobs (and one of their iterations) plus a folder
of image files per job, all under the server's ``--data-dir`` folder.

The server process and the worker process each open their own connections (a new one per
operation, so any thread may call any method); SQLite's write-ahead log lets the web page read
while the worker writes. The write-ahead log needs every process on one machine (its index is
shared memory), so a store whose jobs run on other machines, in a folder they share, uses the
rollback journal instead (:data:`ROLLBACK`), which needs only the file system's locks. Image
files are written by :mod:`impasto.storage`'s atomic writer, so a reader never sees half a file;
the job row says which files exist.

A job's id is drawn here (random hex); the folder of a job is ``jobs/<id>`` and its files have
fixed names, so nothing a client sends ever becomes a path.

A job's ``cancel`` column asks its run to stop: :data:`CANCEL` when a user cancels it (it ends
cancelled), :data:`STOP` when the server stops (it ends interrupted). The run reads it before
every iteration wherever it runs: in the local worker, or in a Ray worker on another machine
that opens this store on a shared file system (:mod:`impasto.web.cluster`).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE = "queued", "running", "done"
CANCELLED, FAILED, INTERRUPTED = "cancelled", "failed", "interrupted"
STATUSES = (QUEUED, RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED)
FINISHED = frozenset({DONE, CANCELLED, FAILED, INTERRUPTED})
# The values of a job's cancel column: nothing asked, a user's cancel, the server's stop.
CANCEL, STOP = 1, 2

# The job table's file, in the data folder, and its journal modes: the write-ahead log (readers
# and a writer do not wait on each other) where every process is on one machine, else the
# rollback journal.
DATABASE = "studio.sqlite3"
WAL, ROLLBACK = "wal", "delete"
# The files of a job's folder.
CONTENT, STYLE, PREVIEW, RESULT, HISTORY = "content.png", "style.png", "preview.png", "result.png", "history.json"
# Region K's mask and painting (spatial control), K = 1, 2, …
REGION_MASK, REGION_STYLE = "region_{}_mask.png", "region_{}_style.png"

_ID = re.compile(r"^[0-9a-f]{16}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    settings TEXT NOT NULL,
    content_name TEXT NOT NULL DEFAULT '',
    style_label TEXT NOT NULL DEFAULT '',
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    losses TEXT NOT NULL DEFAULT '{}',
    eta REAL,
    preview INTEGER NOT NULL DEFAULT 0,
    result INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS iterations (
    job TEXT NOT NULL,
    step INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (job, step)
);
"""


class QueueFull(Exception):
    """The queue holds as many waiting jobs as it may."""


@dataclass(frozen=True)
class Job:
    """One row of the job table. ``preview`` counts the preview images written (0: none yet);
    ``result`` says whether ``result.png`` holds an image (the finished one, or the best so far
    of a cancelled or interrupted run)."""

    seq: int
    id: str
    mode: str
    status: str
    created: float
    started: float | None
    finished: float | None
    settings: dict[str, Any] = field(repr=False)
    content_name: str
    style_label: str
    step: int
    total: int
    seconds: float
    losses: dict[str, float]
    eta: float | None
    preview: int
    result: bool
    cancel: bool
    message: str

    @property
    def finished_state(self) -> bool:
        return self.status in FINISHED


def is_job_id(text: str) -> bool:
    """Whether ``text`` has the form of an id this store draws (checked before any lookup)."""
    return bool(_ID.match(text))


class Store:
    """The job table and job folders under ``root``; ``journal`` the journal mode to set
    (:data:`WAL` or :data:`ROLLBACK`), or None to keep the file's."""

    def __init__(self, root: Path, journal: str | None = WAL) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.root / DATABASE
        with self._connect() as db:
            if journal is not None:
                assert journal in (WAL, ROLLBACK)
                db.execute(f"PRAGMA journal_mode={journal}")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- files -------------------------------------------------------------------------------

    def new_id(self) -> str:
        return secrets.token_hex(8)

    def folder(self, job_id: str) -> Path:
        if not is_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.jobs_dir / job_id

    # --- the table ---------------------------------------------------------------------------

    def create(self, job_id: str, mode: str, settings: Mapping[str, Any], *, content_name: str, style_label: str,
               max_queue: int) -> Job:
        """Queue a job whose input files are already in its folder; QueueFull when ``max_queue``
        jobs already wait (checked in the same transaction as the insert)."""
        with self._transaction() as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()[0]
            if waiting >= max_queue:
                raise QueueFull(waiting)
            db.execute(
                "INSERT INTO jobs (id, mode, status, created, settings, content_name, style_label) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, mode, QUEUED, time.time(), json.dumps(settings), content_name, style_label),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        if not is_job_id(job_id):
            return None
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def recent(self, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def waiting(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()[0])

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after it...; None unless queued."""
        if job.status != QUEUED:
            return None
        with self._connect() as db:
            ahead = db.execute("SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?", (QUEUED, job.seq)).fetchone()
        return int(ahead[0]) + 1

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when none waits)."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status = ?, started = ? WHERE id = ?", (RUNNING, time.time(), row["id"]))
        return self.get(row["id"])

    def record_progress(self, job_id: str, rows: list[dict[str, Any]], progress: Mapping[str, Any], *,
                        preview: bool = False, result: bool = False) -> None:
        """Store new iteration rows and the latest progress (step, total, seconds, losses, eta);
        ``preview``: a new preview image was written; ``result``: the result file exists."""
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO iterations (job, step, row) VALUES (?, ?, ?)",
                           [(job_id, r["step"], json.dumps(r)) for r in rows])
            db.execute(
                "UPDATE jobs SET step = ?, total = ?, seconds = ?, losses = ?, eta = ?, preview = preview + ?, "
                "result = MAX(result, ?) WHERE id = ?",
                (progress.get("step", 0), progress.get("total", 0), progress.get("seconds", 0.0),
                 json.dumps(progress.get("losses", {})), progress.get("eta"), int(preview), int(result), job_id),
            )

    def finish(self, job_id: str, status: str, message: str = "", *, result: bool = False,
               settings: Mapping[str, Any] | None = None) -> None:
        """Record how a job ended; ``settings`` replaces the stored ones (the run's resolved seed)."""
        assert status in FINISHED
        with self._connect() as db:
            db.execute("UPDATE jobs SET status = ?, finished = ?, message = ?, result = MAX(result, ?), eta = NULL, "
                       "settings = COALESCE(?, settings) WHERE id = ?",
                       (status, time.time(), message, int(result), None if settings is None else json.dumps(settings),
                        job_id))

    def fail_running(self, message: str, status: str = FAILED, job_ids: Iterable[str] | None = None) -> int:
        """End every running job (or those of ``job_ids`` still running) as ``status``; returns
        how many were. Called only when no worker runs them, so the hidden temporary file of a
        write a worker was killed in can go: the atomic writer leaves the target as it was."""
        assert status in FINISHED
        with self._transaction() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
            if job_ids is not None:
                wanted = set(job_ids)
                ids = [i for i in ids if i in wanted]
            db.executemany("UPDATE jobs SET status = ?, finished = ?, eta = NULL, message = ? WHERE id = ?",
                           [(status, time.time(), message, i) for i in ids])
        for job_id in ids:
            for leftover in self.folder(job_id).glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
        return len(ids)

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one at once, a running one when the worker next looks (after
        its current iteration). A finished job stays as it is."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET status = ?, finished = ?, message = ? WHERE id = ? AND status = ?",
                       (CANCELLED, time.time(), "cancelled before it started", job_id, QUEUED))
            # MAX: a stop the server asked already stays one (the job ends interrupted).
            db.execute("UPDATE jobs SET cancel = MAX(cancel, ?) WHERE id = ? AND status = ?", (CANCEL, job_id, RUNNING))
        return self.get(job_id)

    def request_stop(self, job_ids: Iterable[str]) -> None:
        """Ask the runs of these jobs, if still running, to stop because the server stops:
        after their current iteration, keeping the best image so far, they end interrupted."""
        with self._transaction() as db:
            db.executemany("UPDATE jobs SET cancel = ? WHERE id = ? AND status = ?",
                           [(STOP, i, RUNNING) for i in job_ids])

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job's run should stop (a user's cancel or the server's stop); True for a
        job that is gone."""
        return self._cancel(job_id) != 0

    def stop_requested(self, job_id: str) -> bool:
        """Whether the server asked the job's run to stop (:meth:`request_stop`)."""
        return self._cancel(job_id) == STOP

    def _cancel(self, job_id: str) -> int:
        with self._connect() as db:
            row = db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return CANCEL if row is None else int(row["cancel"])

    def recover(self) -> int:
        """At start-up: jobs a stopped server left running are marked interrupted (their last
        preview stays); queued jobs stay queued and run again. Returns the jobs marked."""
        return self.fail_running("the server stopped while this job ran", status=INTERRUPTED)

    def iterations(self, job_id: str, after: int = 0) -> list[dict[str, Any]]:
        """The job's iteration rows with step > ``after``, in order."""
        with self._connect() as db:
            rows = db.execute("SELECT row FROM iterations WHERE job = ? AND step > ? ORDER BY step",
                              (job_id, after)).fetchall()
        return [json.loads(r["row"]) for r in rows]


def _job(row: sqlite3.Row) -> Job:
    return Job(
        seq=row["seq"], id=row["id"], mode=row["mode"], status=row["status"], created=row["created"],
        started=row["started"], finished=row["finished"], settings=json.loads(row["settings"]),
        content_name=row["content_name"], style_label=row["style_label"], step=row["step"], total=row["total"],
        seconds=row["seconds"], losses=json.loads(row["losses"]), eta=row["eta"], preview=row["preview"],
        result=bool(row["result"]), cancel=bool(row["cancel"]), message=row["message"],
    )
