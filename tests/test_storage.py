"""The one atomic writer, output checks and run-folder names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto import storage
from impasto.errors import InputError, WeightsError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    storage.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), storage.atomic_file(target) as handle:
        handle.write(b"half of a new fi")
        raise RuntimeError("disk on fire")
    assert target.read_text() == '{\n "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_writes_are_complete_and_readable_by_others(tmp_path: Path) -> None:
    storage.write_text(tmp_path / "a.txt", "ünïcode\n")
    storage.save_torch({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "ünïcode\n"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert torch.equal(storage.load_torch(tmp_path / "w.pt", "w.pt", "weights")["w"], torch.ones(2))


def test_torch_files_never_run_code(tmp_path: Path) -> None:
    torch.save({"f": Path("x")}, tmp_path / "evil.pt")  # an object that only unpickling rebuilds
    with pytest.raises(WeightsError, match="never unpickled"):
        storage.load_torch(tmp_path / "evil.pt", "evil.pt", "model file")


def test_output_checks(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(b"x")
    (tmp_path / "folder.mp4").mkdir()
    assert storage.check_output_path(tmp_path / "o.mp4", [source], (".mp4",)) == tmp_path / "o.mp4"
    # Missing folders are made by the write, not by the check.
    assert storage.check_output_path(tmp_path / "new" / "dir" / "o.mp4", [], (".mp4",)).name == "o.mp4"
    assert not (tmp_path / "new").exists()
    for path, inputs, phrase in [
        (tmp_path / "o.gif", [], "must end in .mp4"),
        (source / "o.mp4", [], "in.mp4 is not a folder"),
        (tmp_path / "folder.mp4", [], "is a directory"),
        (source, [source], "same file as an input"),
    ]:
        with pytest.raises(InputError, match=phrase):
            storage.check_output_path(path, inputs, (".mp4",))


def test_names_of_run_files(tmp_path: Path) -> None:
    assert storage.job_path(tmp_path / "out.png") == tmp_path / "out.job.json"
    assert storage.job_path(tmp_path) == tmp_path / "job.json"
    for i in (1, 50, 12345):
        (tmp_path / storage.snapshot_name(i)).write_bytes(b"")
    (tmp_path / "iter_x.png").write_bytes(b"")
    assert sorted(storage.snapshots_in(tmp_path)) == [1, 50, 12345]
    assert storage.snapshot_iteration("iter_00050.png") == 50 and storage.snapshot_iteration("out.png") is None


def test_read_json_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{\n  oops")
    with pytest.raises(InputError, match=r"bad.json: not valid JSON .*line 2"):
        storage.read_json(tmp_path / "bad.json")
