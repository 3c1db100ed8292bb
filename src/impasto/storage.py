"""Files in and out, in one place: atomic writes, safe loads, output checks and run-folder names.

Every file impasto writes goes through :func:`atomic_file`: the bytes land in a hidden temporary
file beside the target, are flushed to disk, and replace the target with one rename, so a
reader never sees half a file and a failed or interrupted write leaves any existing file as it
was. Torch files are read with ``weights_only=True``: a model or checkpoint is data, never code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from impasto.errors import InputError, WeightsError

if TYPE_CHECKING:
    from torch import Tensor

PathLike = str | os.PathLike[str]

# Snapshots and training previews are named by their iteration: iter_00050.png.
SNAPSHOT_PATTERN = re.compile(r"^iter_(\d+)\.png$")
JOB_SUFFIX = ".job.json"
# The files of a run folder (``impasto transfer --run-dir``).
RUN_OUTPUT, RUN_HISTORY, RUN_JOB = "output.png", "history.json", "job.json"
# The job file of ``impasto report``, whose folder is a run folder: RUN_JOB there is the transfer's
# (``impasto run`` repeats the run, its report included), which the report's must not replace.
REPORT_JOB = "report.job.json"


def one_line(label: str, problem: str) -> InputError:
    """An InputError whose message stays on one line whatever a file name or library says; its
    ``field`` is the label (the studio labels an upload by its form field)."""
    problem = problem.replace("\r", " ").replace("\n", " ")
    return InputError(f"{label}: {problem}".replace("\r", " ").replace("\n", " "), field=label, problem=problem)


@contextmanager
def atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """A binary handle whose contents replace ``path`` only when the block ends without error."""
    out = Path(path)
    tmp = ""
    # Missing folders are made here, at the first write, so that a job refused at its start
    # leaves none behind (check_output_path only checks that they can be made).
    make_folder(out.parent)
    try:
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp", delete=False) as f:
            tmp = f.name
            yield f
            f.flush()
            os.fsync(f.fileno())
        # NamedTemporaryFile creates files readable by the owner only; keep an existing file's mode
        # or give the one an ordinary new file would have.
        os.chmod(tmp, out.stat().st_mode & 0o777 if out.exists() else 0o644)
        os.replace(tmp, out)
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


def write_text(path: PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def save_torch(obj: object, path: PathLike) -> None:
    """``torch.save`` atomically."""
    import torch  # here, not above: the commands that read no model file start without torch

    with atomic_file(path) as f:
        torch.save(obj, f)


def reason(exc: BaseException) -> str:
    """An exception's message as a short single line, for messages that must stay on one line."""
    text = str(exc)
    if "Weights only load failed" in text:
        # torch's message is many lines with terminal escapes; what it means fits in a few words.
        return "it holds objects other than tensors and plain data, which are never unpickled"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]


def load_torch(path: Path, label: str, what: str) -> Any:
    """``torch.load(weights_only=True)`` on the CPU; any failure becomes one WeightsError line."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch.load raises a zoo of exception types for damaged or foreign files; all mean the same.
        raise WeightsError(f"{label}: cannot read {what} ({reason(exc)})") from None


def sha256_of(path: PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_json(path: PathLike, what: str = "JSON file") -> Any:
    """Parsed JSON; a missing, unreadable or malformed file is one InputError line."""
    label = os.fsdecode(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise one_line(label, f"{what} not found") from None
    except json.JSONDecodeError as exc:
        raise one_line(label, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise one_line(label, f"cannot read {what} ({exc})") from None


def check_output_path(path: PathLike, inputs: Sequence[PathLike] = (), suffixes: Sequence[str] = ()) -> Path:
    """Check that ``path`` can be written as a file ending in one of ``suffixes`` (any, if none)
    before a long job starts, and that it is none of the ``inputs``; return it as a Path. Its
    folder may be missing: the write makes it."""
    label = os.fsdecode(path)
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise one_line(label, f"output must end in {', '.join(suffixes)}")
    if out.is_dir():
        raise one_line(label, "is a directory, not a file")
    check_folder(out.parent, label)
    for source in inputs:
        if _same_file(out, Path(source)):
            raise one_line(label, "output path is the same file as an input; choose another name")
    return out


def check_folder(folder: PathLike, label: str | None = None) -> Path:
    """Check that ``folder`` is a folder or can be made one (the nearest part of it that exists
    is a folder); return it as a Path. Missing folders are made by the first write into them
    (:func:`atomic_file`) or by :func:`make_folder`."""
    path = Path(folder)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise one_line(label or os.fsdecode(folder), f"{existing} is not a folder")
    return path


def make_folder(folder: PathLike) -> Path:
    """``folder``, made with every missing parent (an output's folder: ``-o new/dir/out.png``)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    # Hard links and case-insensitive file systems resolve to different paths for one file.
    return a.exists() and b.exists() and os.path.samefile(a, b)


def job_path(output: PathLike) -> Path:
    """Where a run's re-runnable job file goes: beside its output, ``out.png`` → ``out.job.json``;
    for an output folder, ``job.json`` inside it."""
    out = Path(output)
    return out / RUN_JOB if out.is_dir() else out.with_name(out.stem + JOB_SUFFIX)


def snapshot_name(iteration: int) -> str:
    return f"iter_{iteration:05d}.png"


def snapshot_iteration(path: PathLike) -> int | None:
    """The iteration a snapshot file holds, or None for any other file."""
    found = SNAPSHOT_PATTERN.match(Path(path).name)
    return int(found.group(1)) if found else None


def snapshots_in(folder: Path) -> dict[int, Path]:
    """The snapshot files of a folder by iteration."""
    found = {}
    for path in folder.glob("iter_*.png"):
        iteration = snapshot_iteration(path)
        if iteration is not None:
            found[iteration] = path
    return found


class Snapshots:
    """An event consumer saving the image every ``every`` iterations (and the first and last)
    into ``folder``, named by :func:`snapshot_name`. ``save`` writes one image file."""

    def __init__(self, folder: PathLike, every: int, save: Callable[[Tensor, Path], None]) -> None:
        self.folder = Path(folder)
        self.every = every
        self.save = save

    def __call__(self, event: Any) -> None:
        image = getattr(event, "image", None)
        if image is None:
            return
        step, total = event.step, event.total
        if step == 1 or step % self.every == 0 or step == total:
            # Created on the first snapshot, so that a run refused at the start leaves no folder.
            self.folder.mkdir(parents=True, exist_ok=True)
            self.save(image(), self.folder / snapshot_name(step))
