"""Tiled evaluation (gatys.tiles), the memory plan (gatys.memory), the print-size schedule rule,
and tiling through the transfer, the CLI and the events."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from impasto import events
from impasto.cli import main
from impasto.cli.progress import ProgressBar
from impasto.config import TransferConfig
from impasto.errors import InputError
from impasto.gatys import memory, tiles
from impasto.gatys.api import build_problem, transfer
from impasto.gatys.schedule import MIN_LARGE_ITERATIONS, plan, total_iterations
from impasto.gatys.targets import targets
from impasto.losses import objective

GIB = 2**30


def _whole(problem, x, scale_targets):
    """The untiled objective and gradient, as the loop computes them."""
    x = x.detach().clone().requires_grad_(True)
    image = problem.to_network(x)
    terms = objective(problem.net(problem.runtime.prepare(image), problem.layers), image, scale_targets,
                      problem.weights)
    terms.total.backward()
    return terms.as_floats(), x.grad


def _close(tiled, whole) -> None:
    for name in ("content", "style", "tv", "total"):
        assert tiled[name] == pytest.approx(whole[name], rel=2e-5, abs=1e-6), name


def test_halo_covers_the_receptive_field_and_the_pooling_grid() -> None:
    assert tiles.halo_for(("relu5_1",)) == (80, 16)
    assert tiles.halo_for(("relu4_2", "relu1_1")) == (40, 8)
    assert tiles.halo_for(("relu1_1",)) == (1, 1)
    assert tiles.factor("relu4_2") == 8 and tiles.factor("relu1_1") == 1


@pytest.mark.parametrize("shape", [(192, 256), (100, 333), (16, 16)])
def test_tiles_partition_the_image_on_the_grid(shape: tuple[int, int]) -> None:
    tiling = tiles.tiling_for(("relu5_1",), 64)
    height, width = shape
    seen = torch.zeros(shape, dtype=torch.int32)
    for tile in tiles.tiles(height, width, tiling):
        seen[tile.y0 : tile.y1, tile.x0 : tile.x1] += 1
        assert tile.y0 % 16 == 0 and tile.x0 % 16 == 0 and tile.top % 16 == 0 and tile.left % 16 == 0
        assert tile.top == max(0, tile.y0 - 80) and tile.bottom == min(height, tile.y1 + 80)
    assert bool((seen == 1).all())


@pytest.fixture(scope="module")
def case256(tubingen_path: Path, starry_path: Path):
    """A 256 px problem in float32 with two styles blended and a TV term: every term there is."""
    config = TransferConfig(size=256, precision="fp32", tv_weight=1e-3, style_blend=(3.0, 1.0), scales=1)
    style2 = tubingen_path  # any second image will do as a second style
    problem = build_problem(tubingen_path, [starry_path, style2], config, ())
    scale_targets = targets(problem, 256)
    x = torch.rand((1, 3, *problem.shape_at(256)), generator=torch.Generator().manual_seed(0))
    return problem, scale_targets, x, _whole(problem, x, scale_targets)


def test_tiled_objective_and_gradient_equal_the_untiled_ones(case256) -> None:
    problem, scale_targets, x, (whole, whole_grad) = case256
    tiling = tiles.tiling_for(problem.layers, 128)
    assert len(tiles.tiles(*x.shape[-2:], tiling)) == 4
    terms, grad = tiles.evaluate(problem, x, scale_targets, tiling)
    _close(terms.as_floats(), whole)
    assert float((grad - whole_grad).abs().max()) <= 1e-4 * float(whole_grad.abs().max())


def test_a_halo_too_narrow_is_caught(case256) -> None:
    """The check above can fail: tiles whose halo misses the receptive field give another gradient."""
    problem, scale_targets, x, (_, whole_grad) = case256
    _, grad = tiles.evaluate(problem, x, scale_targets, tiles.Tiling(128, 16, 16))
    assert float((grad - whole_grad).abs().max()) > 1e-2 * float(whole_grad.abs().max())


def test_tiled_luminance_transfer_is_exact(tubingen_path: Path, starry_path: Path) -> None:
    config = TransferConfig(size=128, precision="fp32", preserve_color="luminance", scales=1)
    problem = build_problem(tubingen_path, starry_path, config, ())
    scale_targets = targets(problem, 128)
    x = torch.rand((1, 1, *problem.shape_at(128)), generator=torch.Generator().manual_seed(1))
    whole, whole_grad = _whole(problem, x, scale_targets)
    terms, grad = tiles.evaluate(problem, x, scale_targets, tiles.tiling_for(problem.layers, 64))
    _close(terms.as_floats(), whole)
    assert grad.shape == x.shape
    assert float((grad - whole_grad).abs().max()) <= 1e-4 * float(whole_grad.abs().max())


def test_tiled_targets_equal_whole_ones(tubingen_path: Path, starry_path: Path) -> None:
    config = TransferConfig(size=128, precision="fp32", scales=1)
    whole = targets(build_problem(tubingen_path, starry_path, config, ()), 128)
    tiled = targets(build_problem(tubingen_path, starry_path, dataclasses.replace(config, tile="64"), ()), 128)
    for name, f in whole.content.items():
        assert torch.allclose(tiled.content[name], f, rtol=1e-5, atol=1e-5)
    for name, g in whole.grams[0].items():
        assert torch.allclose(tiled.grams[0][name], g, rtol=1e-5, atol=1e-3 * float(g.abs().max()))


# Layers up to relu2_1 only (a 4 px halo): the same code at a sixth of the paper's network's cost,
# so that images many tiles wide stay quick to evaluate in a test.
SHALLOW = {"content_layers": ("relu2_1",), "style_layers": ("relu1_1", "relu2_1")}

PROBE = f"""
SHALLOW = {SHALLOW!r}
import resource, sys, torch
from impasto.config import TransferConfig
from impasto.gatys import tiles
from impasto.gatys.api import build_problem
from impasto.gatys.targets import targets
from impasto.losses import objective
size, mode = int(sys.argv[1]), sys.argv[4]
config = TransferConfig(size=size, tile=mode, style_size=128, scales=1, **SHALLOW)
problem = build_problem(sys.argv[2], sys.argv[3], config, ())
scale_targets = targets(problem, size)
x = torch.rand((1, 3, *problem.shape_at(size)))
tiling = tiles.tiling_for(problem.layers, 128)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    if mode == "off":
        image = x.clone().requires_grad_(True)
        features = problem.net(problem.runtime.prepare(image), problem.layers)
        objective(features, image, scale_targets, problem.weights).total.backward()
        del features, image
    else:
        tiles.evaluate(problem, x, scale_targets, tiling)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, len(tiles.tiles(*x.shape[-2:], tiling)))
"""


def _peak_kib(size: int, content: Path, style: Path, mode: str = "128") -> tuple[int, int]:
    """Peak RSS growth (KiB) over two tiled evaluations, from the process with its network and
    targets loaded (tiled too), in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(size), str(content), str(style), mode], check=True,
                         capture_output=True, text=True, timeout=600)
    grown, count = out.stdout.split()
    return int(grown), int(count)


@pytest.mark.slow
def test_peak_memory_of_a_tiled_evaluation_does_not_grow_with_the_image(tubingen_path: Path,
                                                                        starry_path: Path) -> None:
    small, small_tiles = _peak_kib(256, tubingen_path, starry_path)
    large, large_tiles = _peak_kib(768, tubingen_path, starry_path)
    whole, _ = _peak_kib(768, tubingen_path, starry_path, "off")
    assert (small_tiles, large_tiles) == (4, 30)
    # Nine times the pixels. The activations stay those of one tile; what may grow is only the
    # image-sized float buffers (the gradient, the tiles' copies) and the allocator's slack:
    # measured ~85 B per added pixel, where one pass over the whole image needs ~1.5 KB per
    # pixel even to relu2_1 (measured: 0.6 GB more at 768 px).
    added = 768 * 576 - 256 * 192
    assert large - small <= 160 * added / 1024, (small, large)
    assert whole >= 5 * large, (whole, large)


def _problem_at(tubingen_path: Path, starry_path: Path, **settings):
    return build_problem(tubingen_path, starry_path, TransferConfig(**settings), ())


def test_memory_plan_tiles_only_what_does_not_fit(tubingen_path: Path, starry_path: Path) -> None:
    problem = _problem_at(tubingen_path, starry_path, size=4096, max_memory=6.0, precision="bf16")
    small = memory.plan(problem, (384, 512), 300)
    assert small.tiling is None and small.history == 100
    big = memory.plan(problem, (3072, 4096), 100)
    assert big.tiling is not None and big.tiling.tile % 16 == 0 and big.tiling.halo == 80
    assert big.history < 100 and big.bytes <= 6 * GIB
    # Fewer iterations than the history need fewer pairs; the history is a budget, not a setting.
    assert memory.plan(problem, (384, 512), 5).history == 4
    fixed = _problem_at(tubingen_path, starry_path, tile="256", precision="bf16")
    assert memory.plan(fixed, (384, 512), 10).tiling == tiles.tiling_for(fixed.layers, 256)
    off = _problem_at(tubingen_path, starry_path, tile="off", max_memory=0.5)
    assert memory.plan(off, (3072, 4096), 10).tiling is None


def test_a_budget_too_small_is_one_clear_line(tubingen_path: Path, starry_path: Path) -> None:
    problem = _problem_at(tubingen_path, starry_path, max_memory=0.5)
    with pytest.raises(InputError, match=r"^--max-memory: 0.5 GiB is too little for a 4096x3072 image"):
        memory.plan(problem, (3072, 4096), 10)


def test_a_budget_too_small_is_refused_before_any_scale_runs(content64, style64) -> None:
    seen: list[events.Event] = []
    with pytest.raises(InputError, match=r"^--max-memory: 0.1 GiB is too little"):
        transfer(content64, style64, TransferConfig(size=2048, max_memory=0.1, seed=0), seen.append)
    assert seen == []


def test_default_budget_is_a_share_of_the_machine(tubingen_path: Path, starry_path: Path) -> None:
    problem = _problem_at(tubingen_path, starry_path)
    assert memory.budget(problem) == int(memory.DEFAULT_SHARE * memory.machine_memory())
    assert 0 < memory.budget(problem) < memory.machine_memory()


@pytest.mark.parametrize(("settings", "phrase"), [
    ({"tile": "big"}, "--tile: 'big' is not auto, off or a tile size in px"),
    ({"tile": "8"}, "--tile: tiles must be at least 64 px"),
    ({"max_memory": 0.0}, "--max-memory: must be a positive number of GiB"),
    ({"max_memory": float("nan")}, "--max-memory: must be a positive number of GiB"),
])
def test_bad_tile_settings_are_refused(settings, phrase: str) -> None:
    with pytest.raises(InputError, match="^" + phrase):
        TransferConfig(**settings)


def test_print_sizes_spend_most_iterations_at_small_scales() -> None:
    scales = plan(TransferConfig(size=4096))
    assert [s.size for s in scales] == [128, 256, 512, 1024, 2048, 4096]
    small = sum(s.iterations for s in scales if s.size <= 512)
    assert small >= 0.9 * total_iterations(scales)
    # Each scale above 256 px costs about as much as one of 256 px, or the minimum.
    for s in scales[2:]:
        pixels = (s.size / 256) ** 2
        assert s.iterations == MIN_LARGE_ITERATIONS or s.iterations * pixels == pytest.approx(250, rel=0.1)
    assert [s.iterations for s in scales] == [100, 100, 62, 16, 4, 3]
    # Up to 1024 px nothing changes.
    assert [s.iterations for s in plan(TransferConfig(size=1024))] == [100, 100, 100, 250]


def test_the_default_schedule_is_short_coarse_scales_and_a_long_last_one() -> None:
    # docs/benchmarks.md: coarse iterations past the composition are wasted at the last scale.
    assert [(s.size, s.iterations) for s in plan(TransferConfig())] == [(128, 100), (256, 100), (512, 250)]
    assert [(s.size, s.iterations) for s in plan(TransferConfig(size=256))] == [(128, 100), (256, 250)]
    assert [s.iterations for s in plan(TransferConfig(iterations=40, coarse_iterations=None))] == [40, 40, 40]
    assert [s.size for s in plan(TransferConfig(scales=1))] == [512]


def test_transfer_with_tiles_reports_tiles_and_keeps_them_out_of_the_history(content64, style64) -> None:
    seen: list[events.Event] = []
    history = events.History()
    config = TransferConfig(size=128, iterations=2, scales=1, tile="64", seed=0, **SHALLOW)
    result = transfer(content64, style64, config, events.broadcast(history, seen.append))
    tile_events = [e for e in seen if isinstance(e, events.TileDone)]
    assert len(tile_events) == 2 * 4 and tile_events[0].describe() == "scale 1/1 tile 1/4"
    assert [row["iteration"] for row in history.rows] == [1, 2]
    assert result.tensor.shape[-1] == 128 and torch.isfinite(result.tensor).all()


def test_progress_bar_shows_tiles_without_counting_them(tmp_path: Path) -> None:
    stream = (tmp_path / "bar.txt").open("w")
    bar = ProgressBar(stream=stream)
    bar(events.TileDone(step=1, total=3, seconds=0.0, losses={}, scale=0, scales=1, tile=1, tiles=4))
    assert bar.bar.n == 0
    bar(events.TileDone(step=1, total=3, seconds=0.1, losses={}, scale=0, scales=1, tile=2, tiles=4))
    assert bar.bar.n == 0 and "tile 2/4" in bar.bar.desc
    bar.close()


def test_cli_tiled_transfer(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    out = tmp_path / "out.png"
    code = main(["transfer", str(content), str(style), "-o", str(out), "--size", "96", "--scales", "1",
                 "--iterations", "2", "--tile", "64", "--max-memory", "2", "--seed", "0", "--quiet",
                 "--content-layers", "relu2_1", "--style-layers", "relu1_1", "relu2_1"])
    assert code == 0, capsys.readouterr().err
    job = json.loads(out.with_name("out.job.json").read_text())
    assert job["config"]["tile"] == "64" and job["config"]["max_memory"] == 2.0


def test_cli_refuses_a_bad_tile_in_one_line(tmp_path: Path, small_pair, capsys) -> None:
    content, style = small_pair
    code = main(["transfer", str(content), str(style), "-o", str(tmp_path / "o.png"), "--tile", "huge"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--tile: 'huge' is not auto, off or a tile size in px" in err[0]
