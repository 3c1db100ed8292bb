from __future__ import annotations

import functools
import importlib
import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor

from conftest import EXAMPLES, HtmlLinks
from impasto import images
from impasto.cli import main
from impasto.errors import InputError
from impasto.research import experiments, report

SIZE = 64




def _assert_page_shows_everything(folder: Path, written: list[Path]) -> None:
    """index.html links only to files in the folder, and to every file written but itself."""
    parser = HtmlLinks()
    parser.feed((folder / "index.html").read_text(encoding="utf-8"))
    targets = set(parser.targets)
    for target in targets:
        assert (folder / target).is_file() and ".." not in Path(target).parts, target
    assert targets == {p.name for p in written} - {"index.html"}


def _assert_wrote_only_into(folder: Path, written: list[Path], root: Path, before: set[Path]) -> None:
    """Everything written is listed and inside ``folder``; under ``root`` nothing else changed
    but the folders leading to it."""
    assert all(p.parent == folder and p.is_file() for p in written)
    assert sorted(written) == sorted(folder.iterdir())
    assert {p for p in root.rglob("*") if folder not in p.parents and p not in (folder, *folder.parents)} == before


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _crop(image: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    x0, y0, x1, y1 = box
    return image[..., y0:y1, x0:x1]


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def _weights_loaded_once() -> Iterator[None]:
    """Every transfer and evaluation loads the VGG weights afresh (over a second on a small CPU);
    loading them once per module keeps these tests quick and changes no result, since the
    network copies the weights it is given."""
    engine = importlib.import_module("impasto.gatys.api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "load_weights", functools.cache(engine.load_weights))
        yield


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gallery's inputs at 96 x 72 px: loading them costs nothing, and as every image has
    the photograph's shape, the network's kernels, selected per shape, are reused across runs.
    The examples lack Picasso's painting and neural-style's outputs: stand-ins (the photo mirrored
    for the painting, each painting itself for its reference) make a complete folder."""
    root = tmp_path_factory.mktemp("images")
    for folder in ("content", "style", "reference"):
        (root / folder).mkdir()
    photo = images.load_image(EXAMPLES / "content" / experiments.FIG3_CONTENT)
    images.save_image(images.resize_to(photo, 72, 96), root / "content" / experiments.FIG3_CONTENT)
    for p in experiments.FIG3_PAINTINGS:
        source = EXAMPLES / "style" / p.file
        painting = images.resize_to(images.load_image(source) if source.is_file() else photo.flip(-1), 72, 96)
        images.save_image(painting, root / "style" / p.file)
        images.save_image(painting, root / "reference" / p.reference)
    return root


# --- gallery -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gallery(tiny_images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], set[Path]]:
    root = tmp_path_factory.mktemp("gallery")
    before = _files(root)
    out = root / "out" / "fig3"
    written = experiments.gallery(tiny_images, out, size=SIZE, iterations=3, seed=0, with_reference=True)
    return out, written, before


@pytest.mark.slow
def test_gallery_writes_every_panel_and_only_into_its_folder(gallery: tuple[Path, list[Path], set[Path]]) -> None:
    out, written, before = gallery
    _assert_wrote_only_into(out, written, out.parent.parent, before)
    names = {p.name for p in written}
    assert {"A_photograph.png", "B_shipwreck.png", "C_starry_night.png", "D_the_scream.png", "E_seated_nude.png",
            "F_composition_vii.png", "gallery.png", "gallery.jpg", "reference.png", "results.json",
            "index.html"} == names
    _assert_page_shows_everything(out, written)


@pytest.mark.slow
def test_gallery_grid_is_three_by_two_panels_of_the_results(gallery: tuple[Path, list[Path], set[Path]]) -> None:
    out, _, _ = gallery
    grid = images.load_image(out / "gallery.png")
    photo = images.load_image(out / "A_photograph.png")
    height, width = photo.shape[-2:]
    assert max(height, width) == SIZE
    layout = report.grid_layout(2, 3, (height, width), titles=[["A photograph", "B Turner", "C van Gogh"],
                                                                ["D Munch", "E Picasso", "F Kandinsky"]])
    assert (grid.shape[-1], grid.shape[-2]) == layout.size
    assert _results(out)["grids"]["gallery"] == layout.as_dict()
    assert images.load_image(out / "gallery.jpg").shape == grid.shape
    assert torch.equal(_crop(grid, layout.box(0, 0)), photo)
    for (row, col), name in zip([(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], sorted(out.glob("[B-F]_*.png")),
                                strict=True):
        panel, result = _crop(grid, layout.box(row, col)), images.load_image(name)
        # Above the inset the panel is the result itself; the painting covers the bottom-left corner.
        assert torch.equal(panel[..., : height // 2, :], result[..., : height // 2, :])
        assert not torch.equal(panel[..., -8:, :8], result[..., -8:, :8])


@pytest.mark.slow
def test_gallery_reference_figure_puts_ours_above_theirs(
    gallery: tuple[Path, list[Path], set[Path]], tiny_images: Path
) -> None:
    out, _, _ = gallery
    grids = _results(out)["grids"]
    figure = images.load_image(out / "reference.png")
    assert grids["reference"]["rows"] == 2 and grids["reference"]["cols"] == 5
    assert [figure.shape[-1], figure.shape[-2]] == grids["reference"]["size"]
    ours = images.load_image(out / "B_shipwreck.png")
    height, width = ours.shape[-2:]
    layout = report.grid_layout(2, 5, (height, width), row_labels=("ours", "neural-style"),
                                col_labels=[p.artist for p in experiments.FIG3_PAINTINGS])
    assert torch.equal(_crop(figure, layout.box(0, 0)), ours)
    theirs = images.resize_to(images.load_image(tiny_images / "reference" / experiments.FIG3_PAINTINGS[0].reference),
                              height, width)
    assert torch.equal(_crop(figure, layout.box(1, 0)), images.load_image(images.to_pil(theirs)))


@pytest.mark.slow
def test_gallery_records_the_papers_weights_seconds_and_losses(gallery: tuple[Path, list[Path], set[Path]]) -> None:
    out, _, _ = gallery
    runs = _results(out)["runs"]
    assert [r["name"] for r in runs] == [f"{letter}_{p.key}" for letter, p in zip("BCDEF", experiments.FIG3_PAINTINGS,
                                                                                   strict=True)]
    ratios = [1e-3, 1e-3, 1e-3, 8e-4, 5e-3]
    for run, ratio in zip(runs, ratios, strict=True):
        config = run["config"]
        assert config["content_weight"] / config["style_weight"] == pytest.approx(ratio)
        assert config["content_layers"] == ["relu4_2"]
        assert config["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        assert run["seconds"] > 0 and len(run["history"]) == 3 and run["schedule"] == [[SIZE, 3]]
        assert run["fp32"]["total"] > 0 and math.isfinite(run["fp32"]["total"])
        # The fp32 objective of the saved image agrees with the loss the run reports for it.
        assert run["fp32"]["total"] == pytest.approx(run["best_total"], rel=0.05)
        assert run["best_total"] < run["history"][0]["total"]


def test_gallery_refuses_a_missing_file_before_writing(tiny_images: Path, tmp_path: Path) -> None:
    partial = tmp_path / "images"
    shutil.copytree(tiny_images, partial)
    (partial / "reference" / experiments.FIG3_PAINTINGS[2].reference).unlink()
    out = tmp_path / "out"
    with pytest.raises(InputError, match=re.escape("neural-style_tubingen_scream.png: file not found")):
        experiments.gallery(partial, out, size=SIZE, iterations=1, with_reference=True)
    for painting in (partial / "style").iterdir():
        painting.unlink()
    with pytest.raises(InputError, match="none of the paper's paintings found"):
        experiments.gallery(partial, out, size=SIZE, iterations=1)
    (partial / "content" / experiments.FIG3_CONTENT).unlink()
    with pytest.raises(InputError, match=re.escape("tubingen.jpg: file not found")):
        experiments.gallery(partial, out, size=SIZE, iterations=1)
    with pytest.raises(InputError, match="images folder not found"):
        experiments.gallery(tmp_path / "nowhere", out, size=SIZE, iterations=1)
    assert not out.exists()


@pytest.mark.slow
def test_gallery_of_the_shipped_examples_leaves_the_missing_painting_blank(tmp_path: Path) -> None:
    """The package ships four of the five paintings (Picasso's is protected in the EU): the
    gallery runs on them as they are and leaves panel E blank, saying why."""
    out = tmp_path / "fig3"
    written = experiments.gallery(EXAMPLES, out, size=SIZE, iterations=1, seed=0)
    assert "E_seated_nude.png" not in {p.name for p in written}
    assert {"B_shipwreck.png", "C_starry_night.png", "D_the_scream.png", "F_composition_vii.png"} <= {
        p.name for p in written}
    assert _results(out)["missing"] == ["seated_nude.jpg"]
    grid = images.load_image(out / "gallery.png")
    height, width = images.load_image(out / "A_photograph.png").shape[-2:]
    titles = [["A photograph", "B Turner", "C van Gogh"], ["D Munch", "E Picasso (not in style/)", "F Kandinsky"]]
    layout = report.grid_layout(2, 3, (height, width), titles=titles)
    assert _results(out)["grids"]["gallery"] == layout.as_dict()
    blank = _crop(grid, layout.box(1, 1))
    assert float(blank.std()) < 1e-3  # an empty panel
    assert "seated_nude.jpg" in (out / "index.html").read_text()


# --- L-BFGS against Adam -------------------------------------------------------------------


@pytest.fixture(scope="module")
def optimizers(tiny_images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("optimizers") / "out"
    written = experiments.compare_optimizers(tiny_images / "content" / "tubingen.jpg",
                                             tiny_images / "style" / "starry_night.jpg", out, size=SIZE,
                                             iterations=6, seed=0, adam_lrs=(0.05,), warm_up=False)
    return out, written


@pytest.mark.slow
def test_optimizers_start_alike_and_lower_the_loss(optimizers: tuple[Path, list[Path]]) -> None:
    out, written = optimizers
    runs = _results(out)["runs"]
    assert [(r["name"], r["config"]["optimizer"], r["config"]["scales"]) for r in runs] == [
        ("lbfgs", "lbfgs", 1), ("adam_lr0.05", "adam", 1)]
    assert runs[1]["config"]["learning_rate"] == 0.05
    # The same seeded noise: the first evaluation of both runs sees the same image.
    assert runs[0]["history"][0]["total"] == runs[1]["history"][0]["total"]
    for run in runs:
        totals = [row["total"] for row in run["history"]]
        assert len(totals) == 6 and run["best_total"] == min(totals) < totals[0]
        assert run["fp32"]["total"] == pytest.approx(run["best_total"], rel=0.05)
    adam = [row["total"] for row in runs[1]["history"]]
    assert adam[-1] < 0.5 * adam[0]
    _assert_page_shows_everything(out, written)
    assert {"lbfgs.png", "adam_lr0.05.png", "loss.png", "outputs.png"} <= {p.name for p in written}
    assert images.load_image(out / "loss.png").shape == (1, 3, 400, 1100)


@pytest.mark.slow
def test_optimizers_table_gives_seconds_to_reach_each_loss(optimizers: tuple[Path, list[Path]]) -> None:
    out, _ = optimizers
    results = _results(out)
    runs = results["runs"]
    best = min(r["best_total"] for r in runs)
    table = results["table"]
    assert [row[0] for row in table] == ["L-BFGS", "Adam lr 0.05"]
    for row, run in zip(table, runs, strict=True):
        for cell, level in zip(row[1:], results["levels"], strict=True):
            hit = next((h for h in run["history"] if h["total"] <= level * best), None)
            assert cell == (f"{hit['seconds']:.2f} s (it {hit['iteration']})" if hit else "not reached")
    winner = min(range(len(runs)), key=lambda i: runs[i]["best_total"])
    assert "not reached" not in table[winner]
    markdown = results["table_markdown"].splitlines()
    assert markdown[0].startswith("| run | 2x best") and markdown[2].startswith("| L-BFGS | ")
    assert "Adam lr 0.05" in (out / "index.html").read_text(encoding="utf-8")


# --- Fig. 4 and initialisation -------------------------------------------------------------


@pytest.mark.slow
def test_tradeoff_grid_has_a_row_per_ratio_and_a_column_per_layer_set(tiny_images: Path, tmp_path: Path) -> None:
    out = tmp_path / "tradeoff"
    (tmp_path / "elsewhere.txt").write_text("untouched")
    before = _files(tmp_path)
    ratios, layer_sets = (1e-4, 1e-1), experiments.LAYER_SETS[:2]
    written = experiments.tradeoff(tiny_images / "content" / "tubingen.jpg", tiny_images / "style" / "shipwreck.jpg",
                                   out, size=SIZE, iterations=2, seed=0, ratios=ratios, layer_sets=layer_sets)
    _assert_wrote_only_into(out, written, tmp_path, before)
    _assert_page_shows_everything(out, written)
    results = _results(out)
    runs = results["runs"]
    assert [r["name"] for r in runs] == ["ratio0.0001_relu1_1", "ratio0.0001_relu2_1", "ratio0.1_relu1_1",
                                         "ratio0.1_relu2_1"]
    for run, (ratio, layers) in zip(runs, [(r, s) for r in ratios for s in layer_sets], strict=True):
        assert run["config"]["style_weight"] == pytest.approx(1 / ratio)
        assert run["config"]["style_layers"] == list(layers)
    grid = images.load_image(out / "tradeoff.png")
    assert results["grid"]["rows"] == 2 and results["grid"]["cols"] == 2
    assert [grid.shape[-1], grid.shape[-2]] == results["grid"]["size"]
    width, height = results["grid"]["panel"]
    layout = report.grid_layout(2, 2, (height, width), row_labels=["α/β = 0.0001", "α/β = 0.1"],
                                col_labels=["relu1_1", "relu1_1…\nrelu2_1"])
    assert torch.equal(_crop(grid, layout.box(1, 0)), images.load_image(out / "ratio0.1_relu1_1.png"))


@pytest.mark.slow
def test_compare_init_from_the_command_line(tiny_images: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "init"
    args = ["compare-init", str(tiny_images / "content" / "tubingen.jpg"),
            str(tiny_images / "style" / "starry_night.jpg"),
            "--size", str(SIZE), "--iterations", "2", "-o", str(out), "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().err == ""
    runs = {r["name"]: r for r in _results(out)["runs"]}
    assert list(runs) == ["init_noise", "init_content", "init_style"]
    first = {name: run["history"][0] for name, run in runs.items()}
    # Starting from the photograph, the first image has its content exactly; starting from the
    # painting (of the photograph's shape, so it is not distorted), the painting's style exactly.
    assert first["init_content"]["content"] == 0.0 < first["init_noise"]["content"]
    assert first["init_style"]["style"] == 0.0 < first["init_noise"]["style"]
    # The page shows the experiment's files; its job file (job.json) is the command's, beside them.
    written = sorted(p for p in out.iterdir() if p.name != "job.json")
    _assert_page_shows_everything(out, written)
    strip = images.load_image(out / "init.png")
    assert strip.shape[-1] > 3 * SIZE and strip.shape[-2] < 2 * SIZE


# --- command line errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["gallery", "--images", "{tmp}/nowhere"], "nowhere: images folder not found"),
        (["compare-optimizers", "--images", "{tmp}/nowhere"], "nowhere: images folder not found"),
        (["tradeoff", "{tmp}/photo.jpg", "{tmp}/style.jpg"], "photo.jpg: file not found"),
        (["compare-init", "--images", "{examples}", "--size", "8"], "--size: must be an integer of at least 32"),
        (["compare-optimizers", "--images", "{examples}", "--iterations", "0"], "--iterations: must be an integer"),
    ],
)
def test_commands_fail_with_one_line(args: list[str], phrase: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [a.format(tmp=tmp_path, examples=EXAMPLES) for a in args] + ["-o", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("impasto: error: ") and phrase in err and err.count("\n") == 1
    assert not out.exists()


def test_progress_starts_a_bar_per_run_and_counts_its_iterations(capsys: pytest.CaptureFixture[str]) -> None:
    from impasto.cli.progress import ProgressBar
    from impasto.events import Iteration

    losses = {"total": 3.0, "content": 1.0, "style": 2.0, "tv": 0.0}
    bar = ProgressBar()
    for run in range(2):
        for i in (1, 2, 3):
            bar(Iteration(i, 3, 0.1 * i, losses, 0, 1, 48, 64, i, lambda: torch.zeros(1, 3, 48, 64)))
        if run == 0:
            first = bar.bar
    bar.close()
    err = capsys.readouterr().err
    assert first is not None and err.count("3/3") >= 2 and "total=3" in err and "scale 1/1 64x48" in err


def test_commands_pass_their_settings_to_the_experiments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, tuple] = {}

    def fake(name: str):
        def run(*args, **kwargs) -> list[Path]:
            calls[name] = (args, kwargs)
            return []
        return run

    for name in ("gallery", "tradeoff", "compare_optimizers"):
        monkeypatch.setattr(experiments, name, fake(name))
    out = str(tmp_path / "out")
    assert main(["tradeoff", "--images", str(EXAMPLES), "--scales", "2", "--coarse-iterations", "5", "--pooling", "avg",
                 "--ratios", "1e-3", "1e-2", "-o", out, "--quiet"]) == 0
    args, kwargs = calls["tradeoff"]
    assert args == (EXAMPLES / "content" / "tubingen.jpg", EXAMPLES / "style" / "starry_night.jpg", Path(out))
    base = kwargs["base"]
    assert (base.scales, base.coarse_iterations, base.pooling) == (2, 5, "avg")
    assert kwargs["ratios"] == (1e-3, 1e-2) and kwargs["size"] == 512 and kwargs["on_event"] is None
    assert kwargs["iterations"] == base.iterations
    assert main(["gallery", "--images", str(EXAMPLES), "--with-reference", "--size", "96", "--output", out]) == 0
    args, kwargs = calls["gallery"]
    assert args == (EXAMPLES, Path(out)) and kwargs["with_reference"] and kwargs["size"] == 96
    assert kwargs["on_event"] is not None
    assert main(["compare-optimizers", "photo.jpg", "--images", str(EXAMPLES), "--adam-learning-rates", "0.1",
                 "-o", out, "-q"]) == 0
    args, kwargs = calls["compare_optimizers"]
    # Inputs by their absolute paths, so that the job file runs from any folder.
    assert args[:2] == (Path("photo.jpg").absolute(), EXAMPLES / "style" / "starry_night.jpg")
    assert kwargs["adam_lrs"] == (0.1,) and kwargs["size"] == experiments.COMPARE_SIZE
    assert kwargs["iterations"] == experiments.COMPARE_ITERATIONS
    # The (fake) experiments wrote nothing; each command wrote only its job file.
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["job.json"]
