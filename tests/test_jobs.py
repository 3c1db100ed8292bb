"""Jobs and job files: every run writes one beside its outputs, ``impasto run`` repeats it bit
for bit, Ctrl-C at any moment keeps -o untouched or writes the best image at the requested size,
and a bad job file is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from colour_profiles import display_p3
from conftest import training_photos
from impasto import events, images, jobs
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


def test_ctrl_c_before_the_picture_formed_leaves_the_output_untouched(
    tmp_path: Path, small_pair, capsys, monkeypatch
) -> None:
    content, style = small_pair
    _interrupt_at(monkeypatch, 1)  # the first scale runs 4 iterations: after 1 the image is still noise, blurred
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == f"impasto: interrupted before the picture formed; {out} left untouched"
    assert out.read_bytes() == b"previous result"
    assert not (tmp_path / "out.job.json").exists()


def test_ctrl_c_after_a_coarse_scale_writes_it_upsampled_and_says_so(
    tmp_path: Path, small_pair, capsys, monkeypatch
) -> None:
    content, style = small_pair
    _interrupt_at(monkeypatch, 4)  # the first scale's last iteration
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == (f"impasto: interrupted; best image after 4 iterations saved to {out} "
                           "(from the 32 px scale, upsampled to 64x48)")
    assert Image.open(out).size == (64, 48)
    assert json.loads((tmp_path / "out.job.json").read_text())["result"]["complete"] is False


def _cancel_at(step: int) -> tuple[events.CancelToken, events.Callback]:
    token = events.CancelToken()

    def cancel(event: events.Event) -> None:
        if event.step == step:
            token.cancel()

    return token, cancel


def test_a_cancel_before_the_picture_formed_writes_nothing(tmp_path: Path, small_pair) -> None:
    content, style = small_pair
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    config = TransferConfig(size=64, scales=2, min_scale_size=32, coarse_iterations=6, iterations=5, seed=0)
    token, cancel = _cancel_at(2)
    outcome = jobs.run(jobs.TransferJob(content, (style,), out, config), on_event=cancel, cancel=token)
    assert not outcome.complete and outcome.outputs == []
    assert outcome.summary == f"cancelled before the picture formed; {out} left untouched"
    assert not outcome.result.is_picture and len(outcome.result.history) == 2
    assert out.read_bytes() == b"previous result" and not (tmp_path / "out.job.json").exists()
    # Once the first scale has finished, a cancel keeps its best image, upsampled.
    token, cancel = _cancel_at(6)
    outcome = jobs.run(jobs.TransferJob(content, (style,), out, config), on_event=cancel, cancel=token)
    assert not outcome.complete and outcome.result.scales_done == 1 and out in outcome.outputs
    assert outcome.summary.startswith(f"cancelled; best image after 6 iterations saved to {out} (from the 32 px")
    assert Image.open(out).size == (64, 48)


@pytest.mark.parametrize(("init", "step", "kept"), [("noise", 2, False), ("noise", 3, True), ("content", 1, True)])
def test_a_single_scale_run_is_kept_once_half_done_or_started_from_the_photo(
        tmp_path: Path, small_pair, init: str, step: int, kept: bool) -> None:
    """With one scale (the paper's setting) a late cancel keeps its work: from noise after half
    the scale's iterations, from the photo at once."""
    content, style = small_pair
    out = tmp_path / "out.png"
    config = TransferConfig(size=64, scales=1, iterations=6, init=init, seed=0)
    token, cancel = _cancel_at(step)
    outcome = jobs.run(jobs.TransferJob(content, (style,), out, config), on_event=cancel, cancel=token)
    assert not outcome.complete and outcome.result.is_picture is kept and out.exists() is kept


def test_ctrl_c_during_the_final_scale_writes_its_best_image(tmp_path: Path, small_pair, capsys,
                                                              monkeypatch) -> None:
    content, style = small_pair
    _interrupt_at(monkeypatch, 6)
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *TWO_SCALES)
    assert code == 130
    assert err.strip() == f"impasto: interrupted; best image after 6 iterations saved to {out}"
    assert Image.open(out).size == (64, 48)


def test_init_image_starts_the_run_and_its_job_file_repeats_it(tmp_path: Path, small_pair, capsys) -> None:
    from impasto import images

    content, style = small_pair
    start, out, again = tmp_path / "start.png", tmp_path / "out.png", tmp_path / "again.png"
    images.save_image(torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 40, 60), start)
    # One tiny Adam step from a flat red image: the output is still that image.
    near = ["--size", "64", "--scales", "1", "--iterations", "1", "--optimizer", "adam", "--learning-rate", "0.001",
            "--seed", "0", "--quiet"]
    code, err = run(capsys, "transfer", content, style, "--init-image", start, "-o", out, *near)
    assert code == 0, err
    result = images.load_image(out)
    red = images.resize_to(images.load_image(start), 48, 64)
    assert result.shape[-2:] == (48, 64) and (result - red).abs().max() < 0.02
    assert json.loads((tmp_path / "out.job.json").read_text())["job"]["init_image"] == str(start.absolute())
    code, err = run(capsys, "run", tmp_path / "out.job.json", "-o", again, "--quiet")
    assert code == 0, err
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(("extra", "phrase"), [
    (["--init-image", "missing.png"], "missing.png: file not found"),
    (["--init-image", "content.png", "--init", "content"], "--init-image replaces --init"),
])
def test_a_bad_init_image_is_one_line_and_exit_2(tmp_path: Path, small_pair, capsys, monkeypatch, extra: list[str],
                                                  phrase: str) -> None:
    content, style = small_pair
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "transfer", content, style, "-o", tmp_path / "out.png", *FAST, *extra)
    assert code == 2 and err.count("\n") == 1 and err.startswith("impasto: error: ") and phrase in err, err
    assert not (tmp_path / "out.png").exists()


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


# --- train-arbitrary -------------------------------------------------------------------------

@pytest.fixture
def arbitrary_data(tmp_path: Path) -> tuple[Path, Path]:
    """Four 48 px photos and four striped paintings; at 50 % each folder has both training and
    held-out files (the split is by name)."""
    import torch

    from impasto import images
    from impasto.fast.arbitrary.model import Paintings
    from impasto.fast.training.data import Photos

    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    paintings.mkdir()
    training_photos(photos, 4, 48)
    stripes = (torch.arange(48) // 3 % 2).float().view(1, 1, 1, 48).expand(1, 1, 48, 48)
    for i in range(4):
        colour = torch.tensor([(i + 1) / 4, 0.8 - i / 5, 0.3]).view(1, 3, 1, 1)
        images.save_image(colour * (0.5 + 0.5 * stripes), paintings / f"painting_{i}.png")
    assert Photos(photos, 50.0).held_out and Paintings(paintings, 50.0).held_out
    return photos, paintings


@pytest.fixture
def one_thread():
    """Tiny batches gain nothing from threads that a busy machine oversubscribes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_arbitrary(iterations: int) -> list[str]:
    return ["--width", "4", "--blocks", "1", "--kernel", "3", "--iterations", str(iterations), "--batch-size", "1",
            "--crop-size", "32", "--style-crop-size", "32", "--holdout-percent", "50",
            "--painting-holdout-percent", "50", "--validation-photos", "1", "--validation-paintings", "1",
            "--validate-every", "1", "--checkpoint-every", "1", "--quiet"]


def network_state(path: Path) -> dict:
    from impasto.fast.arbitrary.model import read_arbitrary

    return read_arbitrary(path).network.state_dict()


def assert_same_network(a: Path, b: Path) -> None:
    import torch

    first, second = network_state(a), network_state(b)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_train_arbitrary_writes_a_job_file_that_reruns_it(tmp_path: Path, arbitrary_data, capsys,
                                                           one_thread) -> None:
    photos, paintings = arbitrary_data
    out, log = tmp_path / "arb.pt", tmp_path / "train.jsonl"
    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", out,
                    *tiny_arbitrary(2), "--log", log)
    assert code == 0, err
    assert out.is_file() and (tmp_path / "arb.pt.ckpt").is_file()
    record = json.loads((tmp_path / "arb.job.json").read_text())
    assert record["kind"] == "train-arbitrary" and record["result"]["iterations"] == 2
    assert record["result"]["complete"] and record["config"]["painting_holdout_percent"] == 50.0
    assert record["job"]["paintings"] == str(paintings.absolute()) and record["job"]["log"] == str(log.absolute())
    assert [json.loads(line)["iteration"] for line in log.read_text().splitlines()] == [1, 2]
    job = jobs.load(tmp_path / "arb.job.json")
    assert isinstance(job, jobs.ArbitraryJob) and jobs.from_record(jobs.to_record(job)) == job
    code, err = run(capsys, "run", tmp_path / "arb.job.json", "-o", tmp_path / "again.pt", "--quiet")
    assert code == 0, err
    assert_same_network(out, tmp_path / "again.pt")
    assert len(log.read_text().splitlines()) == 2  # -o leaves the original run's log alone


def test_ctrl_c_in_train_arbitrary_keeps_the_checkpoint_and_resume_continues_batch_for_batch(
    tmp_path: Path, arbitrary_data, capsys, monkeypatch, one_thread
) -> None:
    from impasto.fast.arbitrary import train as train_arbitrary

    photos, paintings = arbitrary_data
    straight = tmp_path / "straight.pt"
    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", straight,
                    *tiny_arbitrary(3))
    assert code == 0, err

    step, calls = train_arbitrary._Trainer.step, []

    def interrupted_on_the_third(self, batch):
        calls.append(self.iteration)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, batch)

    monkeypatch.setattr(train_arbitrary._Trainer, "step", interrupted_on_the_third)
    out = tmp_path / "arb.pt"
    out.write_bytes(b"previous model")
    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", out,
                    *tiny_arbitrary(3))
    assert code == 130
    assert err.strip() == (f"impasto: interrupted at iteration 2; checkpoint {out}.ckpt; continue with --resume")
    assert out.read_bytes() == b"previous model" and not (tmp_path / "arb.job.json").exists()

    monkeypatch.setattr(train_arbitrary._Trainer, "step", step)
    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", out,
                    *tiny_arbitrary(3), "--resume")
    assert code == 0, err
    assert_same_network(out, straight)
    assert jobs.load(tmp_path / "arb.job.json").resume is True

    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", out,
                    *tiny_arbitrary(4), "--resume", "--painting-holdout-percent", "25")
    assert code == 2 and err.count("\n") == 1 and "--painting-holdout-percent: " in err, err
    assert "held-out files must stay held out" in err


def test_cancelling_an_arbitrary_job_keeps_the_network_so_far(tmp_path: Path, arbitrary_data,
                                                              one_thread) -> None:
    from impasto.config import ArbitraryConfig

    photos, paintings = arbitrary_data
    config = ArbitraryConfig(width=4, blocks=1, kernel=3, iterations=5, batch_size=1, crop_size=32, style_crop_size=32,
                             holdout_percent=50.0, painting_holdout_percent=50.0, validation_photos=1,
                             validation_paintings=1, validate_every=0, checkpoint_every=0)
    token = events.CancelToken()

    def cancel_after_two(event: events.Event) -> None:
        if event.step == 2:
            token.cancel()

    job = jobs.ArbitraryJob(photos, paintings, tmp_path / "arb.pt", config)
    outcome = jobs.run(job, on_event=cancel_after_two, cancel=token)
    assert not outcome.complete and outcome.result.iterations == 2
    assert outcome.outputs == [tmp_path / "arb.pt", tmp_path / "arb.job.json"]
    assert outcome.summary.startswith(f"cancelled; saved the network as trained so far to {tmp_path / 'arb.pt'}")
    assert json.loads((tmp_path / "arb.job.json").read_text())["result"]["complete"] is False
    assert not (tmp_path / "arb.pt.ckpt").exists()  # checkpoint_every 0: none asked for


def test_the_train_arbitrary_command_mirrors_arbitrary_config(tmp_path: Path, monkeypatch) -> None:
    from impasto.cli import arbitrary as command
    from impasto.config import ArbitraryConfig

    ran: list[jobs.Job] = []
    monkeypatch.setattr(command, "run_job", lambda job, **_: ran.append(job) or 0)
    assert main(["train-arbitrary", "--data", "p", "--paintings", "q", "-o", "m.pt"]) == 0
    assert ran == [jobs.ArbitraryJob(Path("p"), Path("q"), Path("m.pt"), ArbitraryConfig())]
    assert main(["train-arbitrary", "--data", "p", "--paintings", "q", "-o", "m.pt", "--learning-rate", "0.01",
                 "--painting-holdout-percent", "20", "--resume", "--device", "cpu"]) == 0
    assert ran[-1].config == ArbitraryConfig(learning_rate=0.01, painting_holdout_percent=20.0, device="cpu")
    assert ran[-1].resume


def test_bad_arbitrary_job_files_and_settings_are_one_line(tmp_path: Path, arbitrary_data, capsys) -> None:
    photos, paintings = arbitrary_data
    base = {"format": "impasto-job", "version": 1, "kind": "train-arbitrary",
            "job": {"data": str(photos), "paintings": str(paintings), "output": str(tmp_path / "m.pt")}}
    for config, phrase in [({"kernel": 4}, "--kernel: must be odd"),
                           ({"painting_holdout_percent": 100}, "--painting-holdout-percent"),
                           ({"validate_every": -1}, "--validate-every"),
                           ({"width": "wide"}, "config.width: expected an integer"),
                           ({"previews": 4}, "unknown setting 'previews' for ArbitraryConfig")]:
        path = tmp_path / "job.json"
        path.write_text(json.dumps({**base, "config": config}))
        code, err = run(capsys, "run", path)
        assert code == 2 and err.count("\n") == 1 and phrase in err, (config, err)
    (tmp_path / "afile").write_text("x")
    code, err = run(capsys, "train-arbitrary", "--data", photos, "--paintings", paintings, "-o", tmp_path / "m.pt",
                    "--log", tmp_path / "afile" / "log.jsonl", "--quiet")
    assert code == 2 and "afile is not a folder" in err, err
    assert not (tmp_path / "m.pt").exists()


def test_output_settings_are_recorded_and_rerun(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    (tmp_path / "p3.icc").write_bytes(display_p3())
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content, style, "-o", out, *FAST, "--scales", "1", "--seed", "0",
                    "--quality", "80", "--bit-depth", "16", "--output-profile", tmp_path / "p3.icc")
    assert code == 0, err
    record = json.loads((tmp_path / "out.job.json").read_text())
    assert {k: record["config"][k] for k in ("output_profile", "bit_depth", "quality")} == {
        "output_profile": str(tmp_path / "p3.icc"), "bit_depth": 16, "quality": 80}
    code, err = run(capsys, "run", tmp_path / "out.job.json", "-o", tmp_path / "again.tif", "--quiet")
    assert code == 0, err
    with Image.open(out) as first, Image.open(tmp_path / "again.tif") as again:
        assert first.info["icc_profile"] == again.info["icc_profile"] == display_p3()
    assert images.load_photo(tmp_path / "again.tif")[1].bits == 16
    # The same job cannot write 16 bits as JPEG: one line, before any work.
    code, err = run(capsys, "run", tmp_path / "out.job.json", "-o", tmp_path / "again.jpg", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "--bit-depth 16 needs .png or .tiff" in err, err
    record["config"]["quality"] = 101
    (tmp_path / "bad.job.json").write_text(json.dumps(record))
    code, err = run(capsys, "run", tmp_path / "bad.job.json", "--quiet")
    assert code == 2 and "--quality: an integer from 1 to 100, got 101" in err, err
