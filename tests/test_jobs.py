"""Jobs and job files: every run writes one beside its outputs, ``impasto run`` repeats it bit
for bit, Ctrl-C at any moment keeps -o untouched or writes the best image at the requested size,
and a bad job file is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from impasto import events, jobs
from impasto.cli import main
from impasto.config import TransferConfig
from impasto.gatys import api

FAST = ["--size", "64", "--iterations", "5", "--quiet"]
# Two scales, 32 px then 64 px: 4 iterations, then 5.
TWO_SCALES = ["--size", "64", "--scales", "2", "--min-scale-size", "32", "--coarse-iterations", "4",
              "--iterations", "5", "--seed", "0", "--quiet"]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("seed", [["--seed", "7"], []], ids=["seeded", "seed drawn"])
def test_run_repeats_a_transfer_bit_for_bit(tmp_path: Path, small_pair, capsys, seed: list[str]) -> None:
    content, style = small_pair
    first, again = tmp_path / "first.png", tmp_path / "again.png"
    code, err = run(capsys, "transfer", content, style, "-o", first, *FAST, *seed)
    assert code == 0, err
    record = json.loads((tmp_path / "first.job.json").read_text())
    assert record["kind"] == "transfer" and isinstance(record["config"]["seed"], int)
    assert record["job"]["content"] == str(content.absolute()) and record["result"]["complete"]
    code, err = run(capsys, "run", tmp_path / "first.job.json", "-o", again, "--quiet")
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()
    assert json.loads((tmp_path / "again.job.json").read_text())["config"] == record["config"]


def test_run_dir_job_file_and_history_record_the_seed(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    code, err = run(capsys, "transfer", content, style, "--run-dir", tmp_path / "run", *FAST)
    assert code == 0, err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    job = jobs.load(tmp_path / "run" / "job.json")
    assert isinstance(job, jobs.TransferJob) and job.config.seed == history["config"]["seed"] is not None
    assert job.run_dir == (tmp_path / "run").absolute() and job.snapshot_every == 10


def test_ctrl_c_while_the_first_targets_are_computed_leaves_the_output_untouched(
    tmp_path: Path, small_pair, capsys, monkeypatch
) -> None:
    content, style = small_pair

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "targets", interrupted)
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == f"impasto: interrupted before the first iteration; {out} left untouched"
    assert out.read_bytes() == b"previous result"
    assert not (tmp_path / "out.job.json").exists()


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = events.History.__call__

    def interrupt(self: events.History, event: events.Iteration) -> None:
        original(self, event)
        if event.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(events.History, "__call__", interrupt)


def test_ctrl_c_during_a_coarse_scale_writes_it_upsampled_and_says_so(
    tmp_path: Path, small_pair, capsys, monkeypatch
) -> None:
    content, style = small_pair
    _interrupt_at(monkeypatch, 2)
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == (f"impasto: interrupted; best image after 2 iterations saved to {out} "
                           "(from the 32 px scale, upsampled to 64x48)")
    assert Image.open(out).size == (64, 48)
    assert json.loads((tmp_path / "out.job.json").read_text())["result"]["complete"] is False


def test_ctrl_c_during_the_final_scale_writes_its_best_image(tmp_path: Path, small_pair, capsys,
                                                              monkeypatch) -> None:
    content, style = small_pair
    _interrupt_at(monkeypatch, 6)
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == f"impasto: interrupted; best image after 6 iterations saved to {out}"
    assert Image.open(out).size == (64, 48)


def test_job_records_round_trip() -> None:
    job = jobs.TransferJob(Path("a.jpg"), (Path("b.jpg"), Path("c.jpg")), Path("out.png"),
                           TransferConfig(size=96, style_blend=(2.0, 1.0), seed=3), snapshot_every=5)
    again = jobs.from_record(json.loads(json.dumps(jobs.to_record(job))))
    assert again == jobs.TransferJob(Path("a.jpg").absolute(), (Path("b.jpg").absolute(), Path("c.jpg").absolute()),
                                     Path("out.png").absolute(), job.config, snapshot_every=5)


BAD_JOBS = {
    "not json": ("{", "not valid JSON"),
    "not a job": (json.dumps({"kind": "transfer"}), "not an impasto job file"),
    "newer version": (json.dumps({"format": "impasto-job", "version": 99, "kind": "transfer"}), "version 99"),
    "unknown kind": (json.dumps({"format": "impasto-job", "version": 1, "kind": "paint"}), "kind 'paint'"),
    "unknown field": (json.dumps({"format": "impasto-job", "version": 1, "kind": "transfer",
                                  "job": {"content": "a.jpg", "styles": ["b.jpg"], "colour": 1}}), "job.colour"),
    "wrong type": (json.dumps({"format": "impasto-job", "version": 1, "kind": "transfer",
                               "job": {"content": "a.jpg", "styles": "b.jpg"}}), "job.styles"),
    "bad setting": (json.dumps({"format": "impasto-job", "version": 1, "kind": "transfer",
                                "job": {"content": "a.jpg", "styles": ["b.jpg"], "output": "o.png"},
                                "config": {"size": "big"}}), "config.size"),
    "unknown setting": (json.dumps({"format": "impasto-job", "version": 1, "kind": "apply",
                                    "job": {"inputs": ["a.jpg"], "output": "o.png"},
                                    "config": {"style": "x", "speed": 3}}), "'speed'"),
}


@pytest.mark.parametrize("case", list(BAD_JOBS))
def test_bad_job_files_are_one_line_and_exit_2(tmp_path: Path, capsys, case: str) -> None:
    text, phrase = BAD_JOBS[case]
    path = tmp_path / "job.json"
    path.write_text(text)
    code, err = run(capsys, "run", path)
    assert code == 2 and err.count("\n") == 1 and err.startswith("impasto: error: ") and phrase in err, err
    code, err = run(capsys, "run", tmp_path / "missing.json")
    assert code == 2 and "job file not found" in err


def test_run_repeats_an_apply_job(tmp_path: Path, small_pair, capsys) -> None:
    import torch

    from impasto.fast.model import save_model
    from impasto.fast.network import Architecture, TransformNet

    content, _ = small_pair
    torch.manual_seed(0)
    save_model(TransformNet(Architecture(4, 1)), tmp_path / "tiny.pt", "tiny", {})
    code, err = run(capsys, "apply", "--model", tmp_path / "tiny.pt", content, "-o", tmp_path / "a.png", "--quiet")
    assert code == 0, err
    job = jobs.load(tmp_path / "a.job.json")
    assert isinstance(job, jobs.ApplyJob) and job.config.style == str((tmp_path / "tiny.pt").absolute())
    code, err = run(capsys, "run", tmp_path / "a.job.json", "-o", tmp_path / "b.png", "--quiet")
    assert code == 0, err
    assert (tmp_path / "b.png").read_bytes() == (tmp_path / "a.png").read_bytes()
