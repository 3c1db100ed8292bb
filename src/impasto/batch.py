"""Batches: many jobs run on this machine's cores or on a Ray cluster, the finished ones skipped.

A batch is a list of tasks (:class:`Task`), each a job as its job file records it
(``jobs.to_record``), the key the ledger knows it by (a hash of that record) and a label for
messages. :func:`plan_job_files`, :func:`plan_photos` (photos and videos × styles, fast ``apply``
jobs) and :func:`plan_manifest` (a CSV file) make them. :func:`run` runs every task through
:func:`impasto.jobs.run` in worker processes: a :class:`LocalPool` on this machine, or a
:class:`RayCluster`. Only the process that runs the batch (the driver) keeps the
:class:`Ledger`, a SQLite file in the output folder; a task it records as done whose files all
still exist is skipped when the batch runs again.

A video becomes segments stylised in parallel and a join that needs them all
(:mod:`impasto.video.segments`): a task starts once every task it needs (``Task.needs``) is done,
and fails without running when one of them fails. Once the join is done its segments' files are
gone, and a task that only finished tasks need is not run again.

Faults:

* a job that fails as a job can (an ``ImpastoError``: an unreadable photo, a missing painting)
  fails alone, its one-line error recorded and reported; it is not tried again in this run;
* a worker process that dies mid-job (killed, out of memory, its node gone) or an ``OSError``
  (a full disk, a network file system that went away) has its job tried again, up to
  ``attempts`` times in all: by Ray's own task retries on a cluster, on a fresh process pool
  here;
* outputs are written as every job writes them (``storage.atomic_file``): whole or not at all,
  at the job's own paths. Two attempts of one job write the same files, and being seeded (a
  transfer without a seed runs with seed 0 in a batch), the same pixels, so neither can leave a
  different or a second file; what a killed attempt leaves (a hidden temporary file) is
  removed when the batch ends;
* Ctrl-C asks the jobs in flight to stop as it stops a single job (a transfer keeps its best
  image so far; such a job is recorded as cancelled, never as done), records every job that
  finished, and returns a summary marked interrupted.

This module imports neither torch nor Ray itself (though ``import impasto`` brings torch): the
workers import what the jobs need, and Ray is imported only for a :class:`RayCluster`.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import shlex
import signal
import sqlite3
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from impasto.errors import ImpastoError, InputError

if TYPE_CHECKING:
    from types import TracebackType

    from impasto.config import ApplyConfig
    from impasto.events import Callback
    from impasto.jobs import Job

LEDGER_NAME = ".impasto-batch.sqlite"
DEFAULT_ATTEMPTS = 3
MANIFEST_COLUMNS = ("content", "style", "output", "kind", "options")
MANIFEST_KINDS = ("apply", "transfer")
# How long jobs asked to stop (Ctrl-C) on a Ray cluster may take to answer before the driver
# gives up on them; a transfer stops after its current iteration, seconds at most.
RAY_CANCEL_SECONDS = 60.0
# The longest the driver keeps the ends of jobs before writing them to the ledger.
LEDGER_SECONDS = 1.0
# Jobs in flight for each worker (local pool) or CPU (Ray): one running, one waiting its turn.
IN_FLIGHT = 2
RAY_INSTALL = "--ray needs the cluster extra: pip install 'impasto[cluster]'"

State = Literal["done", "failed", "cancelled"]
# A task that ended, how, and after how many tries (None: the executor does not know).
Ended = tuple["Task", "Settled", "int | None"]
Settle = Callable[[list[Ended]], None]


@dataclass(frozen=True)
class Task:
    """One job of a batch. ``text`` is its job file's contents as compact JSON (``record``: as
    a dict, what a worker runs), ``key`` the hash of that text (the ledger's key), ``label`` how
    messages name it, ``files`` the files it writes at names known beforehand: its main output
    and its job file, and ``needs`` the keys of the tasks of the batch that must be done before
    it runs (a video's segments, before their join).

    The driver holds every task of a batch from the start: as text, a photo's task takes 1.5 KB,
    where its record's dicts took 2.1 KB."""

    key: str
    label: str
    text: str
    files: tuple[Path, ...]
    needs: tuple[str, ...] = ()

    @property
    def record(self) -> dict[str, Any]:
        return json.loads(self.text)


@dataclass(frozen=True)
class Settled:
    """How one attempt of a task ended: ``state``, the one-line error of a failure (or what a
    cancelled job kept), the files written and the seconds the job took."""

    state: State
    error: str | None = None
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0


def task(job: Job, label: str, needs: Sequence[Task] = ()) -> Task:
    """The task running ``job`` once the ``needs`` are done: a transfer without a seed gets
    seed 0, so that every attempt of it (and every rerun of the batch) computes the same image."""
    from impasto import jobs

    if isinstance(job, jobs.TransferJob) and job.config.seed is None:
        job = dataclasses.replace(job, config=dataclasses.replace(job.config, seed=0))
    # Paths in the record are absolute, so the key names the same files from any folder.
    text = json.dumps(jobs.to_record(job), sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    main = job.target
    return Task(key, label, text, (main.absolute(), job.job_file.absolute()), tuple(t.key for t in needs))


# --- planning --------------------------------------------------------------------------------


def plan_job_files(paths: Sequence[Path], *, segments: int | None = None,
                   segment_frames: int | None = None) -> list[Task]:
    """A task for each job file, a folder standing for the ``*.json`` files in it (a video's
    ``apply`` job: its segments and their join, :func:`split`); each job writes where its job
    file says. A file that is not a job file is one InputError line."""
    from impasto import jobs

    _check_split(segments, segment_frames)
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise InputError(f"{path}: no job files (*.json) in this folder")
            files += found
        else:
            files.append(path)
    return _distinct([t for f in files for t in split(jobs.load(f), os.fsdecode(f), segments=segments,
                                                      segment_frames=segment_frames)])


@dataclass(frozen=True)
class Style:
    """A style of a photos × styles batch: its ``name`` in the outputs' names, and the settings
    of ``impasto apply`` that give it."""

    name: str
    config: ApplyConfig


def apply_style(style: str | None = None, model: Path | None = None, paintings: Sequence[Path] = (),
                weights: Sequence[float] | None = None, *, size: int | None = None, strength: float = 1.0,
                backend: str = "auto", style_size: int | None = None) -> Style:
    """One style as ``impasto apply`` takes it: ``style`` a shipped style or a mix of them
    (``a:0.7,b:0.3``); ``model`` a model file (``style`` then names a style inside it);
    ``paintings`` paintings mixed by ``weights`` and read at long side ``style_size`` for the
    any-painting network (``model``, or the installed one). Named in the outputs' names by the
    style (``a-0.7+b-0.3``), the model file and the paintings."""
    from impasto.config import ApplyConfig
    from impasto.style_spec import SHIPPED_ARBITRARY

    common: dict[str, Any] = {"size": size, "strength": strength, "backend": backend}
    parts = [model.stem] if model is not None else []
    if paintings:
        config = ApplyConfig(os.fspath(model.absolute()) if model is not None else SHIPPED_ARBITRARY,
                             style_images=tuple(p.absolute() for p in paintings),
                             style_weights=tuple(weights) if weights else None, mix=style, style_size=style_size,
                             **common)
        parts += [p.stem for p in paintings]
    elif model is not None:
        config = ApplyConfig(os.fspath(model.absolute()), mix=style, **common)
    elif style is not None:
        config = ApplyConfig(style, **common)
    else:
        raise InputError("batch: photos need a style: --style NAME, --styles NAME ..., --model FILE or "
                         "--style-image PAINTING")
    if style is not None:
        parts.append(_file_name(style, "--style"))
    return Style("+".join(parts), config)


def styles(names: Sequence[str], *, size: int | None = None, strength: float = 1.0,
           backend: str = "auto") -> list[Style]:
    """Several styles, each its own outputs (``impasto batch --styles``): shipped styles or
    mixes of them. Two styles of one name would write the same files: one InputError line."""
    found = [apply_style(n, size=size, strength=strength, backend=backend) for n in names]
    seen = Counter(s.name for s in found)
    twice = next((name for name, count in seen.items() if count > 1), None)
    if twice is not None:
        raise InputError(f"--styles: {twice!r} is named twice; its outputs would be the same files")
    return found


def _file_name(spec: str, option: str) -> str:
    """A style's spec as part of a file name: ``a:0.7,b:0.3`` → ``a-0.7+b-0.3``."""
    name = spec.strip().replace(",", "+").replace(":", "-")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise InputError(f"{option}: {spec!r} is not a style's name (a model file goes with --model)")
    return name


def plan_photos(photos: Sequence[Path], chosen: Sequence[Style], output: Path, *, segments: int | None = None,
                segment_frames: int | None = None) -> list[Task]:
    """An ``apply`` task for each photo (a folder standing for the photos and videos in it) in
    each style, written to ``output/PHOTO_STYLE.png``; for each video, segment tasks and their
    join, written to ``output/VIDEO_STYLE.mp4`` (:func:`video_tasks`)."""
    from impasto.jobs import ApplyJob
    from impasto.video.io import is_video

    _check_split(segments, segment_frames)
    tasks: list[Task] = []
    for photo in _photos(photos):
        for style in chosen:
            if is_video(photo):
                tasks += video_tasks(photo, style, output, segments=segments, segment_frames=segment_frames)
            else:
                tasks.append(task(ApplyJob((photo.absolute(),), (output / f"{photo.stem}_{style.name}.png").absolute(),
                                           style.config), f"{photo.name} × {style.name}"))
    return _distinct(tasks)


def video_tasks(video: Path, style: Style, output: Path, *, segments: int | None = None,
                segment_frames: int | None = None, overlap: int | None = None) -> list[Task]:
    """A clip in one style, written to ``output/VIDEO_STYLE.mp4``, in segments (:func:`split`)."""
    from impasto.jobs import ApplyJob

    job = ApplyJob((video.absolute(),), (output / f"{video.stem}_{style.name}.mp4").absolute(), style.config)
    return split(job, f"{video.name} × {style.name}", segments=segments, segment_frames=segment_frames,
                 overlap=overlap)


def split(job: Job, label: str, *, segments: int | None = None, segment_frames: int | None = None,
          overlap: int | None = None) -> list[Task]:
    """The tasks of ``job``. An ``apply`` job of one video into a video file: a task for each
    segment of ``segment_frames`` frames (or of ``segments`` equal ones; default
    ``video.segments.DEFAULT_SEGMENT_FRAMES``), each after a warm-up of ``overlap`` key intervals
    (default ``video.segments.OVERLAP_KEYS``), and the join that needs them; one task when the
    clip makes one segment (a short clip, or one whose frames cannot be counted: that task says
    what is wrong with it). Any other job: its one task."""
    from impasto.jobs import ApplyJob, VideoJoinJob, VideoSegmentJob
    from impasto.video import segments as cut
    from impasto.video.io import OUTPUT_SUFFIXES, check_video_output, is_video
    from impasto.video.temporal import DEFAULT_INTERVAL

    _check_split(segments, segment_frames)
    if not isinstance(job, ApplyJob) or len(job.inputs) != 1 or not is_video(job.inputs[0]) \
            or not job.inputs[0].is_file() or job.output.suffix.lower() not in OUTPUT_SUFFIXES:
        return [task(job, label)]
    source, target, config = job.inputs[0].absolute(), job.output.absolute(), job.config
    check_video_output(target, source)  # refused now, not after every segment is done
    total = cut.frame_count(source)
    length = cut.segment_length(total, DEFAULT_INTERVAL, segments, segment_frames)
    lead = (cut.OVERLAP_KEYS if overlap is None else overlap) * DEFAULT_INTERVAL if config.temporal else 0
    parts = cut.plan(total, length, lead)
    if len(parts) < 2:
        return [task(job, label)]
    work = cut.work_folder(target)
    pieces = [task(VideoSegmentJob(source, cut.segment_path(work, p.index), p.start, p.stop, p.lead, config),
                   f"{label}, frames {p.start}–{p.stop - 1 if p.stop is not None else 'end'}") for p in parts]
    return [*pieces, task(VideoJoinJob(source, tuple(t.files[0] for t in pieces), target, config), label,
                          needs=pieces)]


def _check_split(segments: int | None, segment_frames: int | None) -> None:
    """Refuse a bad split before any work, whether or not a video is among the inputs."""
    _check_positive(segments, "--segments")
    _check_positive(segment_frames, "--segment-frames")
    if segments is not None and segment_frames is not None:
        raise InputError("--segments and --segment-frames: one or the other")


def _photos(paths: Sequence[Path]) -> list[Path]:
    from impasto.images import IMAGE_SUFFIXES
    from impasto.video.io import VIDEO_SUFFIXES

    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"{path}: no photos or videos ({', '.join(suffixes)}) in this folder")
            files += found
        elif not path.exists():
            raise InputError(f"{path}: {'video' if path.suffix.lower() in VIDEO_SUFFIXES else 'photo'} not found")
        elif path.suffix.lower() not in suffixes:
            raise InputError(f"{path}: not a photo or a video ({', '.join(suffixes)}); job files and manifests go "
                             "without --style")
        else:
            files.append(path)
    return files


def plan_manifest(path: Path, output: Path, *, segments: int | None = None,
                  segment_frames: int | None = None) -> list[Task]:
    """A task for each row of a CSV manifest (docs/cluster.md; a video's row: its segments and
    their join, :func:`split`): ``content`` (a photo or a video), ``style``
    (apply: a shipped style or mix, a ``.pt`` model file, or a painting for the any-painting
    network; transfer: a painting), ``output`` (relative to ``output``), and optionally
    ``kind`` (apply, the default, or transfer) and ``options`` (the job's settings, ``NAME=VALUE``
    separated by spaces, as its config names them: ``size=256 iterations=100``). Paths of inputs
    are relative to the manifest's folder. Any problem is one InputError line naming the line
    and the column."""
    from impasto.storage import one_line

    _check_split(segments, segment_frames)
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: spreadsheets write a byte-order mark
    except FileNotFoundError:
        raise one_line(os.fsdecode(path), "manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise one_line(os.fsdecode(path), f"cannot read the manifest ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    missing = [c for c in MANIFEST_COLUMNS[:3] if c not in columns]
    if unknown or missing:
        problem = f"unknown column {unknown[0]!r}" if unknown else f"no {missing[0]!r} column"
        raise InputError(f"{path}: {problem} (columns: content, style, output, and optionally kind, options)")
    tasks = []
    for row in reader:
        label = f"{path}, line {reader.line_num}"
        tasks += split(_manifest_job(row, label, path.parent, output), label, segments=segments,
                       segment_frames=segment_frames)
    if not tasks:
        raise InputError(f"{path}: no jobs in the manifest")
    return _distinct(tasks)


def _manifest_job(row: dict[str | None, Any], label: str, inputs: Path, output: Path) -> Job:
    from impasto.config import ApplyConfig, TransferConfig, from_dict
    from impasto.images import IMAGE_SUFFIXES
    from impasto.jobs import ApplyJob, TransferJob
    from impasto.style_spec import SHIPPED_ARBITRARY

    if row.get(None):
        raise InputError(f"{label}: more fields than the header names")
    cells = {c: (row.get(c) or "").strip() for c in MANIFEST_COLUMNS}
    for column in MANIFEST_COLUMNS[:3]:
        if not cells[column]:
            raise InputError(f"{label}: no {column}")
    kind = cells["kind"] or "apply"
    if kind not in MANIFEST_KINDS:
        raise InputError(f"{label}: kind {kind!r} is not one of {', '.join(MANIFEST_KINDS)}")
    content, target = inputs / cells["content"], output / cells["output"]
    settings = _options(cells["options"], label)
    if kind == "transfer":
        config = from_dict(TransferConfig, settings, f"{label}: options")
        return TransferJob(content.absolute(), ((inputs / cells["style"]).absolute(),), target.absolute(), config)
    style = cells["style"]
    if "style" in settings or "style_images" in settings:
        raise InputError(f"{label}: options: the style is the style column's")
    suffix = Path(style).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        settings |= {"style": SHIPPED_ARBITRARY, "style_images": [os.fspath((inputs / style).absolute())]}
    elif suffix == ".pt":
        settings["style"] = os.fspath((inputs / style).absolute())
    else:
        settings["style"] = style
    config = from_dict(ApplyConfig, settings, f"{label}: options")
    return ApplyJob((content.absolute(),), target.absolute(), config)


def _options(cell: str, label: str) -> dict[str, Any]:
    """``size=256 preserve_color=true precision=fp32`` as settings: each value read as JSON
    where it is JSON (numbers, true, false, lists), else as text."""
    try:
        items = shlex.split(cell)
    except ValueError as exc:
        raise InputError(f"{label}: options: {exc}") from None
    settings: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InputError(f"{label}: options: {item!r} is not NAME=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        settings[name.replace("-", "_")] = value
    return settings


def _distinct(tasks: list[Task]) -> list[Task]:
    """``tasks``, refused when two of them would write the same file."""
    writers: dict[Path, Task] = {}
    for t in tasks:
        other = writers.setdefault(t.files[0], t)
        if other is not t:
            raise InputError(f"{t.label}: writes {t.files[0]}, as {other.label} does; give each job its own output")
    return tasks


# --- the ledger ------------------------------------------------------------------------------


class Ledger:
    """What the batches of one output folder did, in ``OUT/.impasto-batch.sqlite``: a row for
    each task (by key) with its label, state, the error line of a failure, the files written,
    attempts and seconds. Only the driver writes it, in transactions, so a batch stopped at any
    moment leaves every row whole."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS tasks (key TEXT PRIMARY KEY, label TEXT NOT NULL, kind TEXT, "
              "state TEXT NOT NULL, error TEXT, outputs TEXT NOT NULL, attempts INTEGER, seconds REAL, "
              "finished REAL NOT NULL)")

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder}: the output must be a folder (it holds the batch's ledger)")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LEDGER_NAME
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            with self._db:
                self._db.execute(self.SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: cannot use this ledger ({exc}); move it away to start afresh") from None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._db.close()

    def finished(self, key: str) -> bool:
        """Whether the task ``key`` is recorded as done and every file it wrote still exists."""
        row = self._db.execute("SELECT state, outputs FROM tasks WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] == "done" and all(Path(p).exists() for p in json.loads(row[1]))

    def record(self, ended: Iterable[Ended]) -> None:
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(t.key, t.label, t.record.get("kind"), settled.state, settled.error, json.dumps(settled.outputs),
                  attempts, round(settled.seconds, 3), now) for t, settled, attempts in ended])

    def rows(self) -> list[dict[str, Any]]:
        """Every row, oldest first, as dicts (``outputs`` a list)."""
        cursor = self._db.execute("SELECT key, label, kind, state, error, outputs, attempts, seconds FROM tasks "
                                  "ORDER BY finished, rowid")
        names = [d[0] for d in cursor.description]
        return [{**dict(zip(names, row, strict=True)), "outputs": json.loads(row[5])} for row in cursor]


# --- running ---------------------------------------------------------------------------------


def usable_cores() -> int:
    """The cores this process may run on (a container's or a job scheduler's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LocalPool:
    """Worker processes on this machine: ``workers`` of them (default: the usable cores divided
    by ``threads``), each running one job at a time with ``threads`` PyTorch threads. Many small
    jobs run fastest one thread each; one big job at a time fastest with every thread."""

    workers: int | None = None
    threads: int = 1
    attempts: int = DEFAULT_ATTEMPTS

    def __post_init__(self) -> None:
        _check_positive(self.workers, "--workers")
        _check_positive(self.threads, "--threads")
        _check_positive(self.attempts, "--attempts")

    def processes(self, jobs: int) -> int:
        """The workers started for ``jobs`` jobs: no more than there are jobs."""
        return max(1, min(self.workers or usable_cores() // self.threads, jobs))

    def describe(self, jobs: int) -> str:
        return f"a local pool of {_count(self.processes(jobs), 'worker')} × {_count(self.threads, 'thread')}"


@dataclass(frozen=True)
class RayCluster:
    """Jobs as Ray tasks: on the cluster at ``address`` (``auto``: the one this machine is part
    of; ``HOST:PORT``: its head node), or None: a Ray instance started on this machine for the
    batch, on the loopback address. Each job asks for ``threads`` CPUs and runs with as many
    PyTorch threads. Every node must see the inputs and outputs at the same paths."""

    address: str | None = None
    threads: int = 1
    attempts: int = DEFAULT_ATTEMPTS

    def __post_init__(self) -> None:
        _check_positive(self.threads, "--threads")
        _check_positive(self.attempts, "--attempts")

    def describe(self, jobs: int) -> str:
        return f"Ray at {self.address}" if self.address else "a local Ray instance"


Executor = LocalPool | RayCluster


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_positive(value: int | None, option: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InputError(f"{option}: must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Summary:
    """What a batch did: the ``total`` of tasks; those ``skipped`` (done before); each task that
    ended in this run with how (``ended``, in the order they ended); whether Ctrl-C
    ``interrupted`` it; its ``seconds``; where it ran and the ledger's path."""

    total: int
    skipped: tuple[str, ...]
    ended: tuple[tuple[str, Settled], ...]
    interrupted: bool
    seconds: float
    executor: str
    ledger: Path

    def _labels(self, state: State) -> list[str]:
        return [label for label, s in self.ended if s.state == state]

    @property
    def done(self) -> list[str]:
        return self._labels("done")

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [(label, s.error or "failed") for label, s in self.ended if s.state == "failed"]

    @property
    def cancelled(self) -> list[str]:
        return self._labels("cancelled")

    @property
    def not_started(self) -> int:
        return self.total - len(self.skipped) - len(self.ended)

    @property
    def complete(self) -> bool:
        return len(self.done) + len(self.skipped) == self.total

    def describe(self) -> str:
        """The summary for a person: the counts, then a line for each failed job."""
        counts = [f"{len(self.done)} done", f"{len(self.skipped)} skipped (done before)", f"{len(self.failed)} failed"]
        if self.cancelled or self.not_started:
            counts += [f"{len(self.cancelled)} cancelled", f"{self.not_started} not started"]
        head = "interrupted: " if self.interrupted else ""
        lines = [f"{head}{', '.join(counts)} of {self.total} jobs in {self.seconds:.1f} s on {self.executor}"]
        lines += [f"failed: {label}: {error}" for label, error in self.failed]
        if self.interrupted or self.failed:
            lines.append("run the same command again to finish: jobs done are skipped")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """What ``impasto batch --json`` prints."""
        return {"kind": "batch", "complete": self.complete, "interrupted": self.interrupted, "total": self.total,
                "done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed),
                "cancelled": len(self.cancelled), "not_started": self.not_started,
                "seconds": round(self.seconds, 3), "executor": self.executor, "ledger": os.fspath(self.ledger),
                "failures": [{"job": label, "error": error} for label, error in self.failed],
                "jobs": [{"job": label, "state": s.state, "error": s.error, "outputs": list(s.outputs),
                          "seconds": round(s.seconds, 3)} for label, s in self.ended]}


def run(tasks: Sequence[Task], folder: Path, executor: Executor | None = None, *,
        on_event: Callback | None = None) -> Summary:
    """Run the tasks not already done (by ``folder``'s ledger) on ``executor`` (default: a
    local pool on every usable core), recording each as it ends; ``on_event`` gets an
    ``impasto.events.Event`` each time a task ends (``step`` tasks of ``total`` ended or
    skipped). Returns the summary; Ctrl-C ends the run early with ``interrupted`` set."""
    executor = executor or LocalPool()
    start = time.perf_counter()
    with Ledger(folder) as ledger:
        done = _done(tasks, ledger)
        pending = [t for t in tasks if t.key not in done]
        skipped = tuple(t.label for t in tasks if t.key in done)
        queue = _Queue(pending, done)
        book = _Book(ledger, len(tasks), len(skipped), on_event, start, queue)
        interrupted = False
        try:
            if pending:
                interrupted = (_run_ray if isinstance(executor, RayCluster) else _run_local)(queue, executor,
                                                                                            book.settle)
        finally:
            book.flush()
            _sweep(tasks)
    return Summary(len(tasks), skipped, tuple(book.ended), interrupted, time.perf_counter() - start,
                   executor.describe(len(pending)), ledger.path)


def _done(tasks: Sequence[Task], ledger: Ledger) -> set[str]:
    """The tasks not to run: those done whose files are all there, and those that only such
    tasks need (a joined video's segments, whose files the join removed)."""
    done = {t.key for t in tasks if ledger.finished(t.key)}
    users: dict[str, list[str]] = {}
    for t in tasks:
        for need in t.needs:
            users.setdefault(need, []).append(t.key)
    return done | {key for key, those in users.items() if done.issuperset(those)}


class _Queue:
    """The tasks to start, in the batch's order, each once every task it ``needs`` is done: a
    video's join waits for its own segments, not for the rest of the batch. The executors take
    from the front and put a task to try again back there."""

    def __init__(self, tasks: Sequence[Task], done: set[str]) -> None:
        keys = {t.key for t in tasks} | done
        strays = [t.label for t in tasks if not keys.issuperset(t.needs)]
        if strays:
            raise ValueError(f"{strays[0]}: needs a task that is not in the batch")
        self.size = len(tasks)
        self.done = set(done)
        self.ready = deque(t for t in tasks if self.done.issuperset(t.needs))
        self.waiting = [t for t in tasks if not self.done.issuperset(t.needs)]
        self.labels = {t.key: t.label for t in tasks}

    def __bool__(self) -> bool:
        return bool(self.ready)

    def popleft(self) -> Task:
        return self.ready.popleft()

    def appendleft(self, t: Task) -> None:
        self.ready.appendleft(t)

    def take_all(self) -> list[Task]:
        """Every task ready to start, taken off the queue."""
        taken = list(self.ready)
        self.ready.clear()
        return taken

    def ended(self, ended: Sequence[Ended]) -> list[Ended]:
        """Note how tasks ended: the tasks waiting on those done that have all they need become
        ready; those waiting on one that failed fail (returned). A task waiting on one that was
        cancelled stays waiting: it has not started."""
        self.done |= {t.key for t, settled, _ in ended if settled.state == "done"}
        failed = {t.key for t, settled, _ in ended if settled.state == "failed"}
        blocked = [w for w in self.waiting if failed.intersection(w.needs)]
        released = [w for w in self.waiting if w not in blocked and self.done.issuperset(w.needs)]
        self.waiting = [w for w in self.waiting if w not in blocked and w not in released]
        self.ready.extend(released)
        return [(w, Settled("failed", f"not run: it needs {self.labels[next(k for k in w.needs if k in failed)]}, "
                         "which failed"), 0) for w in blocked]


class _Book:
    """The driver's account of the tasks that end: the ledger, the summary, the progress events,
    and the queue, which releases the tasks that waited on them."""

    def __init__(self, ledger: Ledger, total: int, skipped: int, on_event: Callback | None, start: float,
                 queue: _Queue) -> None:
        self.ledger, self.total, self.skipped, self.on_event, self.start = ledger, total, skipped, on_event, start
        self.queue = queue
        self.ended: list[tuple[str, Settled]] = []
        self.unrecorded: list[Ended] = []
        self.recorded = time.perf_counter()

    def flush(self) -> None:
        if self.unrecorded:
            self.ledger.record(self.unrecorded)
            self.unrecorded = []
        self.recorded = time.perf_counter()

    def settle(self, ended: list[Ended]) -> None:
        if not ended:
            return
        # A task that fails takes with it, unrun, those waiting on it (and those waiting on them).
        blocked = self.queue.ended(ended)
        while blocked:
            ended = [*ended, *blocked]
            blocked = self.queue.ended(blocked)
        # A commit waits for the disk (3-20 ms), longer than a small job takes: the ledger gets
        # what ended at most every LEDGER_SECONDS, and at the end. A driver killed meanwhile
        # loses those rows, and the next run does their jobs again, writing the same files.
        self.unrecorded += ended
        if time.perf_counter() - self.recorded >= LEDGER_SECONDS:
            self.flush()
        # The account first, then the events: a callback that raises (Ctrl-C) leaves it whole.
        before = len(self.ended)
        self.ended += [(t.label, settled) for t, settled, _ in ended]
        if self.on_event is not None:
            from impasto.events import Event

            for step in range(before + 1, len(self.ended) + 1):
                self.on_event(Event(self.skipped + step, self.total, time.perf_counter() - self.start, {}))


def attempt(record: dict[str, Any], label: str, threads: int | None = None, stop: Any = None) -> Settled:
    """Run one task's job in this process: a worker's part. An ``ImpastoError`` is the job's
    failure, returned; an ``OSError`` propagates, for the executor to try the job again, and so
    does any other exception (a bug), for the executor to report."""
    from impasto import jobs
    from impasto.events import CancelToken

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        outcome = jobs.run(jobs.from_record(record, label), cancel=CancelToken(stop) if stop is not None else None)
    except jobs.JobInterrupted as stopped:
        return Settled("cancelled", str(stopped), seconds=time.perf_counter() - start)
    except ImpastoError as exc:
        return Settled("failed", str(exc), seconds=time.perf_counter() - start)
    return Settled("done" if outcome.complete else "cancelled", None if outcome.complete else outcome.summary,
                   tuple(os.fspath(p) for p in outcome.outputs), time.perf_counter() - start)


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _sweep(tasks: Iterable[Task]) -> None:
    """Remove what killed attempts left: ``storage.atomic_file`` writes a hidden temporary file
    beside its target (``.NAME.*.tmp``) and renames it over the target at the end, so an attempt
    killed before the rename leaves that file behind, and nothing else; the video writers do the
    same with their own hidden names (``video.io.partial_files``)."""
    from impasto.video.io import is_video, partial_files

    for t in tasks:
        for path in t.files:
            for left in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
                left.unlink(missing_ok=True)
            for left in partial_files(path) if is_video(path) else ():
                left.unlink(missing_ok=True)


# --- the local pool --------------------------------------------------------------------------

# The stop flag of a local pool's worker process: a process pool hands such a flag to its
# workers only when they start (``_start_worker``), not with each job.
_worker_stop: Any = None


def _start_worker(threads: int, stop: Any) -> None:
    global _worker_stop
    # Ctrl-C in a terminal reaches every process of its group: the driver alone answers it, and
    # asks the jobs in flight to stop through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_stop = stop
    import torch

    torch.set_num_threads(threads)


def _pool_attempt(record: dict[str, Any], label: str) -> Settled:
    return attempt(record, label, stop=_worker_stop)


def _run_local(queue: _Queue, pool: LocalPool, settle: Settle) -> bool:
    return _LocalRun(queue, pool, settle)()


class _LocalRun:
    """A batch on a process pool (spawned: the driver may hold threads and a forked torch is
    unsafe). Two jobs a worker are in flight, so that a worker finds its next job queued while
    the driver records the last one. A worker that dies takes with it the pool and at most those
    jobs: each is tried again on a fresh pool, and fails after ``attempts`` tries. Pools whose
    workers die before any job ends (workers that cannot start), ``attempts`` of them in a row,
    fail every job left rather than start pool after pool."""

    def __init__(self, queue: _Queue, pool: LocalPool, settle: Settle) -> None:
        import multiprocessing

        self.queue = queue
        self.pool, self.settle = pool, settle
        self.workers = pool.processes(queue.size)
        self.context = multiprocessing.get_context("spawn")
        self.stop = self.context.Event()
        self.tries: Counter[str] = Counter()
        self.running: dict[Future[Settled], Task] = {}
        # Jobs that ended in a worker (rather than with it) since the pool started.
        self.answered = 0

    def __call__(self) -> bool:
        barren = 0
        while self.queue:
            if barren >= self.pool.attempts:
                why = f"the worker processes died before any job ended ({barren} fresh pools)"
                self.settle([(t, Settled("failed", why), self.tries[t.key]) for t in self.queue.take_all()])
                break
            self.answered = 0
            with ProcessPoolExecutor(self.workers, mp_context=self.context, initializer=_start_worker,
                                     initargs=(self.pool.threads, self.stop)) as executor:
                try:
                    self._feed(executor)
                except KeyboardInterrupt:
                    # The jobs in flight stop after their current step; those that finish are recorded.
                    self.stop.set()
                    self._collect(wait(self.running).done)
                    executor.shutdown(cancel_futures=True)
                    return True
            barren = 0 if self.answered else barren + 1
        return False

    def _feed(self, executor: ProcessPoolExecutor) -> None:
        """Keep every worker busy until the queue is empty or the pool breaks."""
        broken = False
        while self.running or (self.queue and not broken):
            while self.queue and not broken and len(self.running) < IN_FLIGHT * self.workers:
                t = self.queue.popleft()
                try:
                    self.running[executor.submit(_pool_attempt, t.record, t.label)] = t
                except BrokenProcessPool:
                    self.queue.appendleft(t)
                    broken = True
            if self.running:
                broken |= self._collect(wait(self.running, return_when=FIRST_COMPLETED).done)

    def _collect(self, futures: Iterable[Future[Settled]]) -> bool:
        """Settle the tasks of ``futures``, putting back those to try again; True when the pool broke."""
        broken = False
        ended: list[Ended] = []
        for future in futures:
            t = self.running.pop(future)
            self.tries[t.key] += 1
            try:
                settled = future.result()
            except BrokenProcessPool:
                broken = True
                ended += self._again(t, "its worker process died")
                continue
            except OSError as exc:
                ended += self._again(t, _line(exc))
                self.answered += 1
                continue
            except Exception as exc:
                settled = Settled("failed", f"internal error: {_line(exc)}")
            self.answered += 1
            ended.append((t, settled, self.tries[t.key]))
        self.settle(ended)
        return broken

    def _again(self, t: Task, why: str) -> list[Ended]:
        """Nothing, ``t`` back in the queue; or, its tries spent, its failure."""
        if self.tries[t.key] < self.pool.attempts:
            self.queue.appendleft(t)
            return []
        return [(t, Settled("failed", f"{why} (tried {self.tries[t.key]} times)"), self.tries[t.key])]


# --- Ray -------------------------------------------------------------------------------------


def _import_ray(local: bool) -> Any:
    if local and "ray" not in sys.modules:
        # A Ray instance for this batch alone serves this machine alone: Ray's single-machine
        # mode (its default on macOS and Windows) keeps every one of its services on the
        # loopback address, out of the network's reach, and it reports no usage statistics.
        # Ray reads both when it is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError(RAY_INSTALL) from None
    return ray


def _connect(ray: Any, address: str | None, *, log_to_driver: bool = False) -> None:
    """``ray.init`` for the batch, its messages kept to errors (the progress bar and the summary
    are the CLI's); a cluster that cannot be reached is one InputError line. ``log_to_driver``:
    the workers' output goes to this process's (the studio's server log)."""
    quiet = {"logging_level": "ERROR", "log_to_driver": log_to_driver}
    try:
        if address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, SystemExit) as exc:
        # Ray exits (SystemExit) when a cluster's address answers nothing for minutes.
        where = f"--ray {address}" if address else "--ray"
        raise InputError(f"{where}: cannot connect to a Ray cluster ({_line(exc)})") from None


def _run_ray(queue: _Queue, cluster: RayCluster, settle: Settle) -> bool:
    """The tasks as Ray tasks: a worker that dies is Ray's to replace and its task Ray's to run
    again (``max_retries``), and so is an OSError (``retry_exceptions``); a job's own failure
    comes back as a result and is never retried. Ctrl-C cancels the tasks in flight."""
    ray = _import_ray(local=cluster.address is None)
    started = not ray.is_initialized()
    if started:
        _connect(ray, cluster.address)
    try:
        remote = ray.remote(attempt).options(num_cpus=cluster.threads, max_retries=cluster.attempts - 1,
                                             retry_exceptions=[OSError])
        # Submitted a few per CPU at a time, so that a batch of a million jobs costs the head node
        # a window of them, not a million pending tasks.
        window = IN_FLIGHT * max(1, int(ray.cluster_resources().get("CPU", 1) // cluster.threads))
        running: dict[Any, Task] = {}
        try:
            while queue or running:
                while queue and len(running) < window:
                    t = queue.popleft()
                    running[remote.remote(t.record, t.label, cluster.threads)] = t
                ray.wait(list(running), num_returns=1)
                # Every task ended by now, the first included, recorded together (which releases
                # the tasks that waited on them into the queue).
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                settle([(running.pop(ref), _ray_result(ray, ref, cluster.attempts), None) for ref in ready])
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref)
            if running:
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=RAY_CANCEL_SECONDS)
                settle([(running.pop(ref), _ray_result(ray, ref, cluster.attempts), None) for ref in ready])
            return True
    finally:
        if started:
            ray.shutdown()
    return False


def _ray_result(ray: Any, ref: Any, attempts: int) -> Settled:
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return Settled("cancelled", "cancelled")
    except ray.exceptions.RayTaskError as exc:
        # The job's exception itself: an OSError Ray tried again, or a bug.
        cause = exc.cause if exc.cause is not None else exc
        what = _line(cause) if isinstance(cause, OSError) else f"internal error: {_line(cause)}"
        return Settled("failed", what)
    except ray.exceptions.RayError as exc:
        return Settled("failed", f"its worker or node died (tried {attempts} times; {type(exc).__name__})")
