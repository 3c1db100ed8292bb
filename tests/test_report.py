from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from torch import Tensor

from conftest import EXAMPLES, HtmlLinks
from impasto import images
from impasto.cli import main
from impasto.config import TransferConfig
from impasto.errors import InputError
from impasto.research import report


def _image(height: int = 48, width: int = 64, seed: int = 0) -> Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _as_saved(image: Tensor) -> Tensor:
    """The image as an 8-bit file holds it."""
    return images.load_image(images.to_pil(image))


def _crop(image: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    x0, y0, x1, y1 = box
    return image[..., y0:y1, x0:x1]


def _history(iterations: int = 12, coarse: int = 5, tv: float = 0.0) -> list[dict]:
    """Two scales: ``coarse`` iterations at 32x24, then the rest at 64x48."""
    rows = []
    for i in range(iterations):
        style, content = 1e5 / (i + 1) ** 2, 10.0 / (i + 1)
        rows.append({"iteration": i + 1, "scale": int(i >= coarse), "height": 24 if i < coarse else 48,
                     "width": 32 if i < coarse else 64, "seconds": 0.1 + 0.5 * i, "evaluations": 1,
                     "content": content, "style": style, "tv": tv, "total": style + content + tv})
    return rows




def _links(index: Path) -> set[str]:
    parser = HtmlLinks()
    parser.feed(index.read_text(encoding="utf-8"))
    return set(parser.targets)


def _assert_links_resolve(index: Path) -> set[str]:
    targets = _links(index)
    assert targets
    for target in targets:
        assert not Path(target).is_absolute() and ".." not in Path(target).parts, target
        assert (index.parent / target).is_file(), target
    return targets


def _outside(root: Path, folder: Path) -> set[tuple[str, int]]:
    """Every path under ``root`` but not under ``folder``, with its size."""
    return {(str(p), p.stat().st_size if p.is_file() else 0) for p in root.rglob("*")
            if folder != p and folder not in p.parents}


# --- grids ---------------------------------------------------------------------------------


def test_grid_places_every_panel_pixel_for_pixel(tmp_path: Path) -> None:
    cells = [[_image(seed=3 * r + c) for c in range(3)] for r in range(2)]
    titles = [["A photograph", "B Turner", "C van Gogh"], ["D Munch", "E Picasso", "F Kandinsky"]]
    layout = report.image_grid(cells, tmp_path / "grid.png", titles=titles)
    saved = images.load_image(tmp_path / "grid.png")
    assert (saved.shape[-1], saved.shape[-2]) == layout.size
    assert layout.size == (3 * 64 + 4 * layout.pad, 2 * (48 + layout.title) + 3 * layout.pad)
    assert layout.title > 0 and layout.left == 0 and layout.top == 0
    for r in range(2):
        for c in range(3):
            assert torch.equal(_crop(saved, layout.box(r, c)), _as_saved(cells[r][c]))


def test_grid_labels_make_room_and_blank_cells_stay_white(tmp_path: Path) -> None:
    cells = [[_image(seed=1), None], [_image(seed=2), _image(seed=3)]]
    layout = report.image_grid(cells, tmp_path / "grid.png", row_labels=["α/β = 1e-05", "α/β = 0.01"],
                               col_labels=["relu1_1", "relu1_1…\nrelu2_1"])
    saved = images.load_image(tmp_path / "grid.png")
    assert (saved.shape[-1], saved.shape[-2]) == layout.size
    assert layout.left > 0 and layout.top >= 2 * layout.font and layout.title == 0
    assert torch.equal(_crop(saved, layout.box(1, 1)), _as_saved(cells[1][1]))
    assert bool((_crop(saved, layout.box(0, 1)) == 1.0).all())
    # The labels were drawn: the margins are not blank.
    assert bool((saved[..., :layout.top, :] < 0.5).any())
    assert bool((saved[..., :, :layout.left] < 0.5).any())


def test_grid_resizes_smaller_panels_to_the_largest(tmp_path: Path) -> None:
    layout = report.image_grid([[_image(24, 32), _image(48, 64, seed=1)]], tmp_path / "grid.jpg")
    assert layout.cell == (48, 64)
    assert images.load_image(tmp_path / "grid.jpg").shape[-2:] == (layout.size[1], layout.size[0])
    with pytest.raises(ValueError):
        report.image_grid([[None]], tmp_path / "empty.png")


def test_inset_sits_bottom_left_and_leaves_the_inputs_alone() -> None:
    image, painting = _image(48, 64), _image(96, 72, seed=5)
    before = image.clone(), painting.clone()
    out = report.with_inset(image, painting, fraction=0.25, border=2)
    assert torch.equal(image, before[0]) and torch.equal(painting, before[1])
    assert out.shape == image.shape
    # 0.25 of the long side (64) is 16 px high, 12 wide; with the frame 20 x 16 px.
    changed = (out != image).any(dim=1)[0]
    rows, cols = changed.nonzero(as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (28, 47, 0, 15)
    assert bool((out[..., 28:30, 0:16] == 1.0).all())  # the white frame on top
    assert torch.equal(out[..., :28, :], image[..., :28, :])


# --- curves --------------------------------------------------------------------------------


def test_loss_curves_plot_the_nonzero_terms(tmp_path: Path) -> None:
    assert report.loss_curves(_history(), tmp_path / "a.png") == ("total", "content", "style")
    assert report.loss_curves(_history(tv=3.0), tmp_path / "b.png") == ("total", "content", "style", "tv")
    assert images.load_image(tmp_path / "a.png").shape == (1, 3, 400, 1100)


def test_loss_curves_tolerate_values_a_log_axis_cannot_show(tmp_path: Path) -> None:
    rows = _history(4)
    rows[1]["total"], rows[2]["total"], rows[3]["style"] = float("inf"), float("nan"), 0.0
    assert report.loss_curves(rows, tmp_path / "curves.png") == ("total", "content", "style")
    with pytest.raises(ValueError):
        report.loss_curves([], tmp_path / "none.png")


def test_comparison_curves(tmp_path: Path) -> None:
    report.comparison_curves({"L-BFGS": _history(), "Adam": _history(8)}, tmp_path / "cmp.png")
    assert images.load_image(tmp_path / "cmp.png").shape == (1, 3, 400, 1100)


# --- strips --------------------------------------------------------------------------------


def test_pick_snapshots_takes_the_nearest_reached_and_the_last() -> None:
    available = [1, 5, 10, 50, 100, 150]
    assert report.pick_snapshots(available, (0, 10, 50, 100, 200, 500)) == [1, 10, 50, 100, 150]
    assert report.pick_snapshots(available, (0, 7, 8)) == [1, 5, 10, 150]
    assert report.pick_snapshots([], (0, 10)) == []


def test_iteration_strip_shows_one_panel_per_chosen_snapshot(tmp_path: Path) -> None:
    images.save_image(_image(36, 48, seed=1), tmp_path / "iter_00001.png")
    final = _image(48, 64, seed=4)
    snapshots = [(1, tmp_path / "iter_00001.png"), (10, _image(seed=2)), (20, _image(seed=3)), (40, final)]
    shown = report.iteration_strip(snapshots, tmp_path / "strip.png", iterations=(0, 10, 15))
    assert shown == [1, 10, 40]
    layout = report.grid_layout(1, 3, (48, 64), titles=[[f"iteration {i}" for i in shown]])
    saved = images.load_image(tmp_path / "strip.png")
    assert (saved.shape[-1], saved.shape[-2]) == layout.size
    assert torch.equal(_crop(saved, layout.box(0, 2)), _as_saved(final))
    assert torch.equal(_crop(saved, layout.box(0, 1)), _as_saved(snapshots[1][1]))


# --- HTML ----------------------------------------------------------------------------------


def test_index_escapes_text_and_links_relatively(tmp_path: Path) -> None:
    images.save_image(_image(), tmp_path / "a figure.png")
    (tmp_path / "data.json").write_text("{}")
    table = report.Table("settings <b>", ("key", "value"), [("styles", "<script>x</script>"), ("a|b", 1)])
    index = report.write_index(tmp_path, "Run <1>", [report.HtmlFigure("a figure.png", "loss & <i>time</i>")],
                               intro="x < y", tables=[table], links=[report.HtmlFigure("data.json", "data")])
    text = index.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "Run &lt;1&gt;" in text and "loss &amp; &lt;i&gt;time&lt;/i&gt;" in text and "x &lt; y" in text
    assert 'src="a%20figure.png"' in text
    assert _assert_links_resolve(index) == {"a figure.png", "data.json"}
    assert table.markdown().splitlines()[3] == "| a\\|b | 1 |"
    with pytest.raises(ValueError):
        report.write_index(tmp_path, "x", [report.HtmlFigure("../outside.png", "no")])


# --- run reports ---------------------------------------------------------------------------


def _run_dir(root: Path, *, with_inputs: bool = True) -> Path:
    inputs = root / "inputs"
    inputs.mkdir()
    images.save_image(_image(600, 800, seed=7), inputs / "photo.jpg")
    images.save_image(_image(40, 50, seed=8), inputs / "painting.png")
    run = root / "run"
    run.mkdir()
    images.save_image(_image(48, 64, seed=9), run / "out.png")
    for i in (1, 5, 10, 12):
        images.save_image(_image(36, 48, seed=i) if i <= 5 else _image(48, 64, seed=i), run / f"iter_{i:05d}.png")
    content = str(inputs / "photo.jpg") if with_inputs else "gone/photo.jpg"
    meta = {"content": content, "styles": [str(inputs / "painting.png")], "output": "run/out.png",
            "config": {"size": 64, "iterations": 12, "optimizer": "lbfgs"}, "device": "cpu", "precision": "bf16",
            "seconds": 5.6, "history": _history()}
    (run / "history.json").write_text(json.dumps(meta))
    return run


def test_report_writes_figures_thumbnails_and_a_page_inside_the_run(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    outside = _outside(tmp_path, run)
    index = report.write_report(run)
    assert index == run / "index.html"
    assert _outside(tmp_path, run) == outside
    targets = _assert_links_resolve(index)
    expected = {"loss_curves.png", "strip.png", "thumb_content.png", "thumb_style_1.png", "thumb_output.png",
                "history.json"}
    assert expected <= targets
    # Thumbnails are bounded; smaller files are copied at their own size.
    assert images.load_image(run / "thumb_content.png").shape[-2:] == (384, 512)
    assert images.load_image(run / "thumb_style_1.png").shape[-2:] == (40, 50)
    assert torch.equal(images.load_image(run / "thumb_output.png"), images.load_image(run / "out.png"))
    # Snapshots at 1, 5, 10, 12: the strip shows those nearest to 0, 10 and the last.
    strip = images.load_image(run / "strip.png")
    assert strip.shape[-1] == report.grid_layout(1, 3, (48, 64), titles=[["iteration 10"]]).size[0]
    text = index.read_text(encoding="utf-8")
    # The output comes first (the largest thing on the page), then the photo beside it, the
    # painting, the snapshots one by one, the loss curves.
    shown = re.findall(r'<img src="([^"]+)"', text)
    assert shown == ["thumb_output.png", "thumb_content.png", "thumb_output.png", "thumb_style_1.png",
                     "iter_00001.png", "iter_00010.png", "iter_00012.png", "loss_curves.png"]
    assert '<figure class="hero">' in text and "--aspect:64/48" in text
    assert "iterations 1, 10, 12" in text and "<b>12</b> iterations in <b>5.6 s</b> on cpu bf16" in text
    assert "<td>cpu bf16</td>" in text
    # Settings: those changed from TransferConfig's defaults first, with the default beside them;
    # the rest folded away.
    changed, rest = text.split("<details>")
    assert '<tr><td>size</td><td>64</td><td class="default">512</td></tr>' in changed
    default = TransferConfig().iterations
    assert f'<tr><td>iterations</td><td>12</td><td class="default">{default}</td></tr>' in changed
    assert "<td>optimizer</td><td>lbfgs</td>" in rest and "optimizer" not in changed


def test_report_lists_inputs_it_cannot_find(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, with_inputs=False)
    index = report.write_report(run)
    assert "Files not found or unreadable, so not shown: content gone/photo.jpg." in index.read_text(encoding="utf-8")
    assert not (run / "thumb_content.png").exists()
    _assert_links_resolve(index)


def test_report_skips_snapshots_it_cannot_read(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    images.save_image(_image(20, 20), run / "iter_00001.png")
    text = report.write_report(run).read_text(encoding="utf-8")
    assert "iter_00001.png: image is 20x20" in text
    assert "The image at iterations 10, 12." in text


@pytest.mark.parametrize(
    ("setup", "phrase"),
    [
        (lambda d: None, "run folder not found"),
        (lambda d: d.write_text("x"), "not a folder"),
        (lambda d: d.mkdir(), "no history.json"),
        (lambda d: (d.mkdir(), (d / "history.json").write_text("{\n'bad'")), "not valid JSON"),
        (lambda d: (d.mkdir(), (d / "history.json").write_text("[1, 2]")), "not an impasto history"),
        (lambda d: (d.mkdir(), (d / "history.json").write_text('{"history": []}')), "not an impasto history"),
        (lambda d: (d.mkdir(), (d / "history.json").write_text('{"history": [{"iteration": 1}]}')),
         "not an impasto history"),
    ],
)
def test_report_refuses_what_is_not_a_run(tmp_path: Path, setup, phrase: str) -> None:
    folder = tmp_path / "run"
    setup(folder)
    with pytest.raises(InputError) as info:
        report.write_report(folder)
    message = str(info.value)
    assert message.startswith(str(folder)) and phrase in message and "\n" not in message


def test_report_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("impasto: error: ") and "run folder not found" in err and err.count("\n") == 1
    run = _run_dir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote {run / 'index.html'}"
    assert main(["report", str(run), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_report_of_a_real_transfer_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Run from tmp_path with relative paths, as a user would: the report must find the inputs.
    monkeypatch.chdir(tmp_path)
    os.symlink(EXAMPLES, tmp_path / "images")
    run = Path("run")
    run.mkdir()
    args = ["transfer", "images/content/tubingen.jpg", "images/style/starry_night.jpg", "-o", "run/out.png",
            "--size", "64", "--iterations", "4", "--seed", "0", "--snapshot-every", "2", "--snapshot-dir", "run",
            "--history", "run/history.json", "--quiet"]
    assert main(args) == 0
    assert main(["report", "run", "--quiet"]) == 0
    targets = _assert_links_resolve(run / "index.html")
    assert {"loss_curves.png", "strip.png", "thumb_content.png", "thumb_style_1.png", "thumb_output.png"} <= targets
    rows = json.loads((run / "history.json").read_text())["history"]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert "iterations 1, 4" in (run / "index.html").read_text(encoding="utf-8")
    assert images.load_image(run / "thumb_output.png").shape == images.load_image(run / "out.png").shape
