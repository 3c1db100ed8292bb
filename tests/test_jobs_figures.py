"""The figure commands as jobs: ``report``, ``gallery``, ``compare-optimizers``, ``tradeoff`` and
``compare-init`` each write a job file into their output folder, ``impasto run JOB -o OTHER``
writes the same files into another folder (the same images, for these seeded runs), and a bad
job file is one line naming the field."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import EXAMPLES, HtmlLinks
from impasto import images, jobs, storage
from impasto.cli import main
from impasto.config import ExperimentConfig, GalleryConfig, OptimizerComparisonConfig, TradeoffConfig
from impasto.research import experiments

SIZE = 48
TINY = ["--size", str(SIZE), "--iterations", "2", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def _weights_loaded_once() -> Iterator[None]:
    """Every transfer loads the VGG weights afresh; once per module keeps these tests quick and
    changes no result, since the network copies the weights it is given."""
    engine = importlib.import_module("impasto.gatys.api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "load_weights", functools.cache(engine.load_weights))
        yield


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An images folder with the photo and one painting at 64 x 48 px (the gallery then makes
    one run, leaving the other panels blank)."""
    root = tmp_path_factory.mktemp("images")
    photo = images.resize_to(images.load_image(EXAMPLES / "content" / experiments.FIG3_CONTENT), 48, 64)
    painting = images.resize_to(images.load_image(EXAMPLES / "style" / "starry_night.jpg"), 48, 64)
    images.save_image(photo, root / "content" / experiments.FIG3_CONTENT)
    images.save_image(painting, root / "style" / "starry_night.jpg")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _assert_links_resolve(index: Path) -> set[str]:
    parser = HtmlLinks()
    parser.feed(index.read_text(encoding="utf-8"))
    for target in parser.targets:
        assert (index.parent / target).is_file(), target
    return set(parser.targets)


def _assert_same_images(first: Path, again: Path, figure: str) -> None:
    """Each run's image and the figure of the first folder, in the second, bit for bit: the runs
    are seeded and repeat exactly on one CPU. Not the loss plots, whose second axis is the
    seconds each run took."""
    runs = json.loads((first / "results.json").read_text())["runs"]
    assert runs
    for name in [r["file"] for r in runs] + [figure]:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name


EXPERIMENTS = {
    "gallery": (["gallery", "--images", "{images}", "--scales", "1"], GalleryConfig, "gallery.png"),
    "compare-optimizers": (["compare-optimizers", "--images", "{images}", "--adam-learning-rates", "0.05"],
                           OptimizerComparisonConfig, "outputs.png"),
    "tradeoff": (["tradeoff", "--images", "{images}", "--scales", "1", "--ratios", "1e-3"], TradeoffConfig,
                 "tradeoff.png"),
    "compare-init": (["compare-init", "{images}/content/tubingen.jpg", "{images}/style/starry_night.jpg"],
                     ExperimentConfig, "init.png"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(EXPERIMENTS))
def test_an_experiment_writes_a_job_file_that_run_repeats_elsewhere(kind: str, pair: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    words, config_type, figure = EXPERIMENTS[kind]
    out, other = tmp_path / "out", tmp_path / "other"
    code, err = run(capsys, *[w.format(images=pair) for w in words], *TINY, "-o", out)
    assert code == 0, err
    record = json.loads((out / storage.RUN_JOB).read_text())
    assert record["kind"] == kind and record["result"]["complete"] and record["config"]["seed"] == 3
    assert record["config"]["size"] == SIZE and record["job"]["output"] == str(out.absolute())
    assert isinstance(jobs.load(out / storage.RUN_JOB).config, config_type)
    assert sorted(record["result"]["outputs"]) == sorted(str(p) for p in out.iterdir() if p.name != "job.json")
    code, err = run(capsys, "run", out / storage.RUN_JOB, "-o", other)
    assert code == 0, err
    # After the progress bars, the line the command printed before it was a job.
    assert err.splitlines()[-1] == f"wrote {len(_names(out))} files; open {other / 'index.html'}"
    assert _names(other) == _names(out) and figure in _names(other)
    _assert_same_images(out, other, figure)
    again = json.loads((other / storage.RUN_JOB).read_text())
    assert again["config"] == record["config"] and again["job"]["output"] == str(other)


def test_a_job_file_runs_from_any_folder(pair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Given relative paths, the command records them absolute; its job file, run from another
    folder, reads the same inputs (the experiment replaced by one that records its arguments)."""
    calls = []

    def fake(*args, **kwargs) -> list[Path]:
        calls.append((args, kwargs))
        return []

    monkeypatch.setattr(experiments, "compare_init", fake)
    monkeypatch.chdir(pair)
    code, err = run(capsys, "compare-init", "content/tubingen.jpg", "style/starry_night.jpg", "-o",
                    tmp_path / "out", "--seed", "5", "--pooling", "avg", "-q")
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, err = run(capsys, "run", tmp_path / "out" / "job.json", "-q")
    assert code == 0, err
    assert calls[0] == calls[1]
    args, kwargs = calls[1]
    assert args == (pair / "content" / "tubingen.jpg", pair / "style" / "starry_night.jpg", tmp_path / "out")
    assert (kwargs["seed"], kwargs["base"].pooling, kwargs["base"].scales) == (5, "avg", 1)


def test_json_reports_the_files_and_the_job_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"

    def fake(content: Path, style: Path, folder: Path, **kwargs) -> list[Path]:
        (folder / "index.html").parent.mkdir(parents=True)
        (folder / "index.html").write_text("page")
        return [folder / "index.html"]

    monkeypatch.setattr(experiments, "tradeoff", fake)
    assert main(["tradeoff", "--images", str(EXAMPLES), "-o", str(out), "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "tradeoff" and printed["complete"] and printed["seed"] == 0
    assert printed["job_file"] == str(out / "job.json")
    assert printed["files"] == [str(out / "index.html"), str(out / "job.json")]


def test_ctrl_c_keeps_the_finished_runs_and_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from impasto.gatys.api import TransferInterrupted

    def interrupted(*args, **kwargs) -> list[Path]:
        raise TransferInterrupted(None)

    monkeypatch.setattr(experiments, "gallery", interrupted)
    out = tmp_path / "out"
    code, err = run(capsys, "gallery", "-o", out, "-q")
    assert code == 130
    assert err == f"impasto: interrupted; finished runs are in {out}\n"
    assert not (out / "job.json").exists()


# --- the report ----------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A transfer's run folder as ``impasto transfer --run-dir`` leaves it: the output, the history,
    snapshots and the transfer's own job file."""
    folder = tmp_path / "run"
    rows = [{"iteration": i, "scale": 0, "seconds": 0.1 * i, "content": 1.0, "style": 10.0 / i, "tv": 0.0,
             "total": 1.0 + 10.0 / i} for i in range(1, 11)]
    for i in (1, 5, 10):
        images.save_image(torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(i)),
                          folder / storage.snapshot_name(i))
    images.save_image(torch.rand(1, 3, 48, 64), folder / storage.RUN_OUTPUT)
    storage.write_json(folder / storage.RUN_HISTORY, {
        "content": str(EXAMPLES / "content" / "tubingen.jpg"), "styles": [str(EXAMPLES / "style" / "shipwreck.jpg")],
        "output": str(folder / storage.RUN_OUTPUT), "device": "cpu", "precision": "fp32", "seconds": 1.0,
        "history": rows})
    (folder / storage.RUN_JOB).write_text("the transfer's job file\n")
    return folder


def test_report_writes_its_own_job_file_that_run_repeats_elsewhere(run_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = _names(run_dir)
    code, err = run(capsys, "report", run_dir)
    assert code == 0 and err == f"wrote {run_dir / 'index.html'}\n"
    # The transfer's job file is left as it was: the report's has its own name.
    assert (run_dir / storage.RUN_JOB).read_text() == "the transfer's job file\n"
    record = json.loads((run_dir / storage.REPORT_JOB).read_text())
    assert record["kind"] == "report" and record["job"] == {"run_dir": str(run_dir), "output": None}
    report_files = _names(run_dir) - before
    assert {"index.html", "loss_curves.png", "strip.png", "thumb_output.png", storage.REPORT_JOB} <= report_files
    other = tmp_path / "elsewhere" / "report"
    assert main(["run", str(run_dir / storage.REPORT_JOB), "-o", str(other), "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "report" and printed["job_file"] == str(other / storage.REPORT_JOB)
    # The same report files, and copies of those of the run its page links to.
    assert report_files <= _names(other)
    links = _assert_links_resolve(other / "index.html")
    assert {"history.json", "iter_00001.png", "iter_00010.png"} <= links
    assert (other / "iter_00010.png").read_bytes() == (run_dir / "iter_00010.png").read_bytes()
    assert torch.equal(images.load_image(other / "strip.png"), images.load_image(run_dir / "strip.png"))
    assert json.loads((other / storage.REPORT_JOB).read_text())["job"]["output"] == str(other)
    assert _names(run_dir) == before | report_files


# --- job files -----------------------------------------------------------------------------


def test_figure_jobs_round_trip_through_their_records() -> None:
    here = Path("a.jpg").absolute()
    made = [
        jobs.GalleryJob(EXAMPLES, Path("out").absolute(), GalleryConfig(size=96, scales=1, with_reference=True)),
        jobs.TradeoffJob(here, here, Path("t").absolute(), TradeoffConfig(ratios=(1e-3,), coarse_iterations=None)),
        jobs.OptimizerComparisonJob(here, here, Path("o").absolute(),
                                    OptimizerComparisonConfig(adam_learning_rates=(0.1, 0.2), seed=4)),
        jobs.InitComparisonJob(here, here, Path("i").absolute(), ExperimentConfig(pooling="avg")),
        jobs.ReportJob(Path("run").absolute()),
        jobs.ReportJob(Path("run").absolute(), Path("elsewhere").absolute()),
    ]
    for job in made:
        assert jobs.from_record(json.loads(json.dumps(jobs.to_record(job)))) == job
        moved = jobs.with_output(job, Path("new"))
        assert moved.target == Path("new") and moved.config == job.config


def _record(kind: str, job: dict, config: dict | None = None) -> str:
    return json.dumps({"format": "impasto-job", "version": 1, "kind": kind, "job": job, "config": config or {}})


PAIR = {"content": "a.jpg", "style": "b.jpg", "output": "out"}
BAD_FIGURE_JOBS = {
    "size": (_record("compare-init", PAIR, {"size": "big"}), "config.size: expected an integer"),
    "small size": (_record("compare-init", PAIR, {"size": 8}), "--size: must be an integer of at least 32"),
    "seed": (_record("tradeoff", PAIR, {"seed": None}), "--seed: must be an integer"),
    "ratios": (_record("tradeoff", PAIR, {"ratios": [1e-3, -1]}), "--ratios: need at least one α/β ratio"),
    "ratio type": (_record("tradeoff", PAIR, {"ratios": ["x"]}), "config.ratios: expected a list of"),
    "rates": (_record("compare-optimizers", PAIR, {"adam_learning_rates": []}), "--adam-learning-rates"),
    "reference": (_record("gallery", {"images": "i", "output": "o"}, {"with_reference": "yes"}),
                  "config.with_reference: expected true or false"),
    "pooling": (_record("gallery", {"images": "i", "output": "o"}, {"pooling": "min"}), "--pooling: 'min'"),
    "scales": (_record("compare-init", PAIR, {"scales": 2}), "unknown setting 'scales'"),
    "images": (_record("gallery", {"images": 3, "output": "o"}), "job.images: expected a path"),
    "unknown field": (_record("compare-init", {**PAIR, "colour": 1}), "unknown field job.colour"),
    "missing input": (_record("compare-init", {"content": "a.jpg", "output": "o"}), "'style'"),
    "report setting": (_record("report", {"run_dir": "r"}, {"size": 64}), "unknown setting 'size'"),
}


@pytest.mark.parametrize("case", list(BAD_FIGURE_JOBS))
def test_bad_figure_job_files_are_one_line_naming_the_field(case: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    text, phrase = BAD_FIGURE_JOBS[case]
    path = tmp_path / "job.json"
    path.write_text(text)
    code, err = run(capsys, "run", path)
    assert code == 2 and err.count("\n") == 1 and err.startswith("impasto: error: ") and phrase in err, err
    assert _names(tmp_path) == {"job.json"}
