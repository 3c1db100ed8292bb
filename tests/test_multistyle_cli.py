"""Multi-style models through the CLI (apply by name, mixes, strength, styles --json, export,
train and --add-style) and their ONNX back-ends against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_model, training_photos
from impasto import images, style_spec
from impasto.cli import main
from impasto.config import train_config
from impasto.fast import model as fast_model
from impasto.fast.backends import GAMMABETA, INPUT, OUTPUT, export_conditional_onnx, make_backend
from impasto.fast.multistyle.model import (
    MultiStyleModel,
    bind,
    read_multistyle,
    save_multistyle,
)
from impasto.fast.network import Architecture, TransformNet
from impasto.fast.stylize import stylize


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def multi_file(tmp_path: Path) -> Path:
    path = tmp_path / "multi.pt"
    save_multistyle(tiny_model(), path)
    return path


@pytest.fixture
def shipped(tmp_path: Path, multi_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package models folder holding the multi-style model and an old one-style file."""
    folder = tmp_path / "models"
    (folder / "multistyle").mkdir(parents=True)
    (folder / "multistyle" / "fig3.pt").write_bytes(multi_file.read_bytes())
    settings = {"objective": "relative", "crop_size": 256, "style_size": 256}
    fast_model.save_model(TransformNet(Architecture(4, 1)), folder / "old.pt", "old", {"settings": settings,
                                                                                        "iterations": 7})
    monkeypatch.setattr(style_spec, "models_folder", lambda: folder)
    return folder


def test_apply_a_style_a_mix_and_a_strength_of_a_model_file(tmp_path: Path, multi_file: Path, small_pair,
                                                             capsys) -> None:
    content, _ = small_pair
    for spec in ("starry", "starry:0.7,scream:0.3"):
        out = tmp_path / f"{spec.replace(':', '_')}.png"
        code, _, err = run(capsys, "apply", "--model", multi_file, "--style", spec, content, "-o", out, "-q")
        assert code == 0, err
        assert Image.open(out).size == Image.open(content).size
    code, _, err = run(capsys, "apply", "--model", multi_file, "--style", "scream", "--strength", "0", content,
                       "-o", tmp_path / "zero.png", "-q")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zero.png")), np.asarray(Image.open(content)))
    job = json.loads((tmp_path / "zero.job.json").read_text())
    assert job["config"]["mix"] == "scream" and job["config"]["strength"] == 0.0


def test_apply_by_name_alone_resolves_shipped_multistyle_styles(tmp_path: Path, shipped: Path, small_pair,
                                                                capsys) -> None:
    content, _ = small_pair
    code, _, err = run(capsys, "apply", "--style", "scream", content, "-o", tmp_path / "a.png", "-q")
    assert code == 0, err
    expected = stylize(bind(read_multistyle(shipped / "multistyle" / "fig3.pt"), [("scream", 1.0)]),
                       images.load_image(content))
    got = images.load_image(tmp_path / "a.png")
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
    code, _, err = run(capsys, "apply", "--style", "starry:1,scream:1", content, "-o", tmp_path / "b.png", "-q")
    assert code == 0, err
    code, _, err = run(capsys, "apply", "--style", "old", content, "-o", tmp_path / "c.png", "-q")
    assert code == 0, err  # an old one-style file still answers to its name


@pytest.mark.parametrize(("args", "message"), [
    (["--style", "nope"], "unknown style 'nope' (installed: old, scream, starry)"),
    (["--style", "starry:0.5,old:0.5"], "--style: old, starry are not in one multi-style model"),
    (["--style", "starry:lots"], "--style: 'starry:lots': starry's weight must be a non-negative number"),
    (["--style", "old", "--strength", "0.5"], "--strength: style 'old' is a one-style network"),
    (["--style", "starry", "--strength", "2"], "--strength: must lie in [0, 1], got 2.0"),
    ([], "apply: give --style NAME, --model FILE or --style-image PAINTING"),
])
def test_bad_names_weights_and_strengths_are_one_line(tmp_path: Path, shipped: Path, small_pair, capsys,
                                                      args: list[str], message: str) -> None:
    content, _ = small_pair
    code, _, err = run(capsys, "apply", *args, content, "-o", tmp_path / "o.png")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.png").exists()


def test_model_file_errors_are_one_line(tmp_path: Path, multi_file: Path, small_pair, capsys) -> None:
    content, _ = small_pair
    one = tmp_path / "one.pt"
    fast_model.save_model(TransformNet(Architecture(4, 1)), one, "one", {})
    for args, message in [
        (["--model", multi_file], "holds 2 styles (starry, scream); choose one with --style NAME"),
        (["--model", multi_file, "--style", "starry_night"], "--style: no style 'starry_night' in"),
        (["--model", one, "--style", "one"], "is a one-style network; --style with --model names styles"),
    ]:
        code, _, err = run(capsys, "apply", *args, content, "-o", tmp_path / "o.png")
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_styles_json_lists_every_style_with_its_objective(shipped: Path, multi_file: Path, capsys) -> None:
    code, out, _ = run(capsys, "styles", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [e["name"] for e in entries] == ["starry", "scream", "old"]
    for entry in entries[:2]:
        objective = entry["objective"]
        assert objective["content_layers"] == {"relu4_2": 1.0} and objective["style_weight"] == 1e3
        assert set(objective["style_layers"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
        assert entry["kind"] == "multi-style"
    assert entries[2]["objective"] is None and "'relative' objective" in entries[2]["objective_reason"]
    code, out, _ = run(capsys, "styles", "--json", "--model", multi_file)
    assert code == 0 and [e["name"] for e in json.loads(out)] == ["starry", "scream"]
    code, out, _ = run(capsys, "styles")
    assert code == 0 and "| scream | width-8, 1-block, 3x3-edge, 2-stage | 3 | multi-style | 1.5 |" in out
    assert "| old |" in out


@pytest.fixture(scope="module")
def graph_model() -> MultiStyleModel:
    return tiny_model()


@pytest.mark.parametrize("backend", ["onnxruntime", "opencv", "torch-bf16"])
def test_a_bound_style_runs_on_every_backend(graph_model: MultiStyleModel, backend: str) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    bound = bind(graph_model, [("starry", 0.6), ("scream", 0.4)], strength=0.8)
    x = torch.rand(2, 3, 36, 44)
    expected = stylize(bound, x)
    got = stylize(bound, x, backend=make_backend(backend, bound))
    torch.testing.assert_close(got, expected, atol=0.05 if backend == "torch-bf16" else 1e-4, rtol=0)


def test_onnx_with_the_style_vector_as_input(graph_model: MultiStyleModel) -> None:
    ort = pytest.importorskip("onnxruntime")
    transformer = graph_model.network.transformer
    session = ort.InferenceSession(export_conditional_onnx(transformer), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 30, 41)
    for row in graph_model.network.table().detach():
        vector = row.reshape(1, -1)
        with torch.no_grad():
            expected = transformer(x, vector)
        got = session.run([OUTPUT], {INPUT: x.numpy(), GAMMABETA: vector.numpy()})[0]
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


def test_export_bakes_a_style_in(tmp_path: Path, multi_file: Path, capsys) -> None:
    ort = pytest.importorskip("onnxruntime")
    code, _, err = run(capsys, "export", multi_file, "--style", "scream", "-o", tmp_path / "s.onnx")
    assert code == 0, err
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 40, 40)
    expected = stylize(bind(read_multistyle(multi_file), [("scream", 1.0)]), x)
    np.testing.assert_allclose(session.run([OUTPUT], {INPUT: x.numpy()})[0], expected.numpy(), atol=1e-4)
    code, _, err = run(capsys, "export", multi_file, "-o", tmp_path / "t.onnx")
    assert code == 2 and "choose one with --style NAME" in err and not (tmp_path / "t.onnx").exists()


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    training_photos(folder, 6, 48)
    return folder


TRAIN = ["--width", "8", "--blocks", "1", "--kernel", "3", "--batch-size", "2", "--crop-size", "32",
         "--style-size", "32", "--holdout-percent", "25", "--previews", "1", "--preview-every", "2",
         "--checkpoint-every", "1", "--precision", "fp32", "-q"]


def test_train_add_style_and_resume_from_the_cli(tmp_path: Path, photo_dir: Path, small_pair, capsys) -> None:
    content, style = small_pair
    second = tmp_path / "second.png"
    images.save_image(images.load_image(style).flip(-1), second)
    out = tmp_path / "m.pt"
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", out, "--iterations", "2", *TRAIN)
    assert code == 0, err
    assert read_multistyle(out).names == ["style", "second"]
    assert json.loads((tmp_path / "m.job.json").read_text())["kind"] == "train-multistyle"
    assert sorted(p.name for p in (tmp_path / "m_previews").iterdir()) == ["iter_00000.png", "iter_00002.png"]
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", out, "--iterations", "3",
                       "--resume", *TRAIN)
    assert code == 0, err
    assert read_multistyle(out).training["iterations"] == 3
    code, _, err = run(capsys, "train", "--add-style", content, "--name", "tubingen", "--model", out,
                       "--data", photo_dir, "-o", tmp_path / "m3.pt", "--iterations", "1", *TRAIN)
    assert code == 0, err
    code, json_out, _ = run(capsys, "styles", "--json", "--model", tmp_path / "m3.pt")
    assert [e["name"] for e in json.loads(json_out)] == ["style", "second", "tubingen"]


def test_train_init_from_continues_a_model_file(tmp_path: Path, photo_dir: Path, small_pair, capsys) -> None:
    """A model file alone carries a training on (the checkpoint stays behind on another machine)."""
    _, style = small_pair
    second = tmp_path / "second.png"
    images.save_image(images.load_image(style).flip(-1), second)
    first = tmp_path / "m.pt"
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", first, "--iterations", "2", *TRAIN)
    assert code == 0, err
    start = read_multistyle(first)
    # At its own iteration count nothing trains: the weights are the file's.
    same = tmp_path / "same.pt"
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", same, "--iterations", "2",
                       "--init-from", first, *TRAIN)
    assert code == 0, err
    for (name, a), b in zip(start.network.state_dict().items(), read_multistyle(same).network.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    more = tmp_path / "more.pt"
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", more, "--iterations", "4",
                       "--init-from", first, *TRAIN)
    assert code == 0, err
    assert read_multistyle(more).training["iterations"] == 4
    # The held-out curve goes on from the file's: the evaluations of both runs, in order, each
    # with the training seconds it was taken at.
    curve = read_multistyle(more).training["validation"]
    first_curve = start.training["validation"]
    assert curve[: len(first_curve)] == first_curve and len(curve) > len(first_curve) >= 1
    assert [row["iteration"] for row in curve] == sorted(row["iteration"] for row in curve)
    assert all(row["total"] > 0 and row["seconds"] >= 0 for row in curve)
    assert json.loads((tmp_path / "more.job.json").read_text())["job"]["init_from"] == str(first.absolute())
    for args, message in ((["--name", "x", "y"], "holds styles style,second, not x,y"),
                          (["--width", "16"], "--init-from: " + str(first)),
                          ):
        code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", tmp_path / "bad.pt",
                           "--iterations", "3", "--init-from", first, *TRAIN, *args)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad.pt").exists()
    # The upsampling may change on the way: the weights fit either.
    bilinear = tmp_path / "bilinear.pt"
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", bilinear, "--iterations", "3",
                       "--init-from", first, "--upsample", "bilinear", *TRAIN)
    assert code == 0, err
    model = read_multistyle(bilinear)
    assert model.network.arch.upsample == "bilinear" and model.training["iterations"] == 3


def test_train_minutes_ends_the_run_and_writes_the_model(tmp_path: Path, photo_dir: Path, small_pair,
                                                          capsys) -> None:
    _, style = small_pair
    second = tmp_path / "second.png"
    images.save_image(images.load_image(style).flip(-1), second)
    out = tmp_path / "m.pt"
    # A limit shorter than one iteration: the run ends after its first, complete, with the model.
    code, out_json, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", out, "--iterations", "1000",
                              "--minutes", "1e-6", "--json", *TRAIN)
    assert code == 0, err
    summary = json.loads(out_json)
    assert summary["complete"] and summary["iterations"] == 1
    assert read_multistyle(out).training["iterations"] == 1
    code, _, err = run(capsys, "train", style, second, "--data", photo_dir, "-o", tmp_path / "bad.pt",
                       "--minutes", "0", *TRAIN)
    assert code == 2 and "--minutes: must be a positive number" in err and err.count("\n") == 1, err


@pytest.mark.parametrize(("args", "message"), [
    (["--add-style", "STYLE"], "--add-style: needs --model MULTI.pt"),
    (["STYLE", "--init-from", "STYLE"], "--init-from: continues a multi-style training"),
    (["STYLE", "--model", "STYLE"], "--model: only with --add-style"),
    (["STYLE", "STYLE2", "--objective", "relative"], "--objective: a multi-style model records"),
    (["STYLE", "STYLE2", "--width", "4"], "--width: at least 8"),
    (["STYLE", "STYLE2", "--kernel", "4"], "--kernel: must be odd"),
    (["STYLE", "STYLE2", "--name", "a"], "--name: 1 names given for 2 paintings"),
    (["STYLE", "STYLE2", "--name", "a:b", "c"], "--name: 'a:b' cannot name a style"),
])
def test_train_errors_are_one_line(tmp_path: Path, photo_dir: Path, small_pair, capsys, args: list[str],
                                   message: str) -> None:
    _, style = small_pair
    second = tmp_path / "second.png"
    second.write_bytes(style.read_bytes())
    args = [str(style) if a == "STYLE" else str(second) if a == "STYLE2" else a for a in args]
    given = {a for a in args if a.startswith("--")}
    rest = [a for i, a in enumerate(TRAIN) if a not in given and (i == 0 or TRAIN[i - 1] not in given)]
    code, _, err = run(capsys, "train", *args, "--data", photo_dir, "-o", tmp_path / "m.pt", "--iterations", "1",
                       *rest)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "m.pt").exists()


def test_a_multistyle_training_job_round_trips_through_its_file(tmp_path: Path) -> None:
    from impasto.jobs import MultiTrainJob, from_record, to_record

    job = MultiTrainJob((tmp_path / "a.jpg", tmp_path / "b.jpg"), tmp_path / "photos", tmp_path / "m.pt",
                        train_config("gatys", width=8), ("a", "b"), tmp_path / "base.pt", resume=True)
    assert from_record(json.loads(json.dumps(to_record(job)))) == job


@pytest.mark.parametrize("paintings", [1, 2], ids=["one-style", "multi-style"])
def test_run_repeats_a_training_from_its_job_file(tmp_path: Path, photo_dir: Path, small_pair, capsys,
                                                  paintings: int) -> None:
    _, style = small_pair
    second = tmp_path / "second.png"
    images.save_image(images.load_image(style).flip(-1), second)
    out = tmp_path / "first.pt"
    code, _, err = run(capsys, "train", *[style, second][:paintings], "--data", photo_dir, "-o", out,
                       "--iterations", "2", *TRAIN)
    assert code == 0, err
    again = tmp_path / "again.pt"
    code, _, err = run(capsys, "run", tmp_path / "first.job.json", "-o", again, "-q")
    assert code == 0, err
    # Seeded batches and initialisation: the same network, weight for weight, on this CPU.
    first, second_run = torch.load(out, weights_only=True), torch.load(again, weights_only=True)
    assert first["state_dict"].keys() == second_run["state_dict"].keys()
    assert all(torch.equal(first["state_dict"][k], second_run["state_dict"][k]) for k in first["state_dict"])
    assert json.loads((tmp_path / "again.job.json").read_text())["kind"] == json.loads(
        (tmp_path / "first.job.json").read_text())["kind"]
