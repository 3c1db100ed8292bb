"""Spatial control (Gatys et al. 2017, §4.1; gatys.regions): guided Gram matrices against hand
computations, the guides' propagation, two regions with two paintings beside a kept photo, the
same regions from multi-scale and tiled runs, job files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto import images, jobs
from impasto.cli import main
from impasto.config import RegionSpec, TransferConfig
from impasto.errors import InputError
from impasto.gatys import tiles
from impasto.gatys.api import build_problem, transfer
from impasto.gatys.regions import Region, layout, propagate, resize
from impasto.gatys.targets import targets
from impasto.losses import (
    gram,
    guide_mass,
    guided_gram,
    guided_style_layer_loss,
    objective,
    style_layer_loss,
)
from impasto.vgg import VGG19

MEASURED = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def band(height: int, width: int, top: float, bottom: float, soft: float = 3.0) -> torch.Tensor:
    """A mask (1, 1, H, W) of the rows between the fractions ``top`` and ``bottom`` of the height,
    its edges ramping over about ``soft`` px (a soft boundary)."""
    rows = torch.arange(height, dtype=torch.float32) + 0.5
    inside = torch.sigmoid((rows - top * height) / (soft / 4)) * torch.sigmoid((bottom * height - rows) / (soft / 4))
    if top <= 0:
        inside = torch.sigmoid((bottom * height - rows) / (soft / 4))
    if bottom >= 1:
        inside = torch.sigmoid((rows - top * height) / (soft / 4))
    return inside.view(1, 1, height, 1).expand(1, 1, height, width).contiguous()


def statistics(net: VGG19, image: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Gram matrices per position at ``MEASURED`` layers, of the whole image or guided by ``mask``
    (area-downsampled to each layer: a yardstick independent of the guides the run used)."""
    with torch.no_grad():
        features = net(image, MEASURED)
        if mask is None:
            return {n: gram(f) / (f.shape[-2] * f.shape[-1]) for n, f in features.items()}
        guides = propagate(resize(mask, tuple(image.shape[-2:])), MEASURED, "resize")
        return {n: guided_gram(f, guides[n]) / guide_mass(guides[n]) for n, f in features.items()}


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Σ_l ‖a_l − b_l‖² / ‖b_l‖²: how far statistics ``a`` are from a painting's ``b``."""
    return sum(float((a[n] - b[n]).pow(2).sum() / b[n].pow(2).sum()) for n in MEASURED)


# --- the loss, by hand -------------------------------------------------------------------------


def test_guided_gram_and_loss_by_hand() -> None:
    # One channel, four positions f = 1, 2, 3, 4; the guide covers the first two fully and the
    # third by half.
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    t = torch.tensor([1.0, 1.0, 0.5, 0.0]).view(1, 1, 2, 2)
    g = guided_gram(f, t)
    assert g.shape == (1, 1) and float(g) == pytest.approx(1 + 4 + 2.25)  # Σ (T f)²
    mass = guide_mass(t)
    assert float(mass) == pytest.approx(2.25)  # Σ T²
    # A painting of 8 per position (A = 32 over the image's M = 4): the region should hold
    # 8 × M_r = 18; the loss is (7.25 − 18)² / (4 N² M_r M).
    target = torch.tensor([[32.0]])
    loss = guided_style_layer_loss(g, mass, target, positions=4, channels=1)
    assert float(loss) == pytest.approx((7.25 - 18.0) ** 2 / (4 * 1 * 2.25 * 4))
    # Inputs untouched (losses are pure).
    assert f.flatten().tolist() == [1, 2, 3, 4] and t.flatten().tolist() == [1, 1, 0.5, 0]


def test_an_all_ones_guide_is_the_papers_eq_4_and_an_empty_one_costs_nothing() -> None:
    f = torch.randn(1, 8, 6, 5, generator=torch.Generator().manual_seed(0))
    target = gram(torch.randn(1, 8, 6, 5, generator=torch.Generator().manual_seed(1)))
    ones = torch.ones(1, 1, 6, 5)
    guided = guided_style_layer_loss(guided_gram(f, ones), guide_mass(ones), target, 30, 8)
    assert float(guided) == pytest.approx(float(style_layer_loss(f, target)), rel=1e-6)
    zeros = torch.zeros(1, 1, 6, 5)
    assert float(guided_style_layer_loss(guided_gram(f, zeros), guide_mass(zeros), target, 30, 8)) == 0.0


# --- guides --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["inside", "resize", "erode"])
def test_guides_have_each_layers_resolution_and_stay_in_range(mode: str) -> None:
    mask = band(70, 90, 0.0, 0.4)
    guides = propagate(mask, ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), mode)
    assert {n: tuple(g.shape[-2:]) for n, g in guides.items()} == {
        "relu1_1": (70, 90), "relu2_1": (35, 45), "relu3_1": (17, 22), "relu4_1": (8, 11), "relu5_1": (4, 5)}
    for g in guides.values():
        assert float(g.min()) >= 0 and float(g.max()) <= 1
    ones = propagate(torch.ones(1, 1, 70, 90), ("relu5_1",), mode)["relu5_1"]
    assert torch.allclose(ones, torch.ones_like(ones))


def test_inside_guides_are_the_share_of_the_receptive_field_and_erosion_lies_within() -> None:
    # A hard left half: at relu1_1 (after conv1_1) a position's guide is its share of its 3 px
    # window: exactly 1 inside, 0 outside, 2/3 and 1/3 at the two columns by the boundary;
    # erosion keeps only positions whose whole window is inside.
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1
    inside = propagate(mask, ("relu1_1", "relu3_1"), "inside")
    eroded = propagate(mask, ("relu1_1", "relu3_1"), "erode")
    row = inside["relu1_1"][0, 0, 10]
    assert row[:15].tolist() == [1.0] * 15 and row[17:].tolist() == [0.0] * 15
    assert row[15:17].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert eroded["relu1_1"][0, 0, 10].tolist() == [1.0] * 15 + [0.0] * 17
    for name in ("relu1_1", "relu3_1"):
        assert bool((eroded[name] <= inside[name] + 1e-6).all())
    # Deeper layers see further: the boundary's soft band widens relative to the layer.
    soft = ((inside["relu3_1"] > 0.01) & (inside["relu3_1"] < 0.99)).sum()
    assert int(soft) > 0


def test_overlaps_share_and_the_rest_goes_to_the_paintings_or_is_kept() -> None:
    from impasto.gatys.regions import LoadedRegion

    a = torch.zeros(1, 1, 4, 4)
    a[..., :3, :] = 1
    b = torch.zeros(1, 1, 4, 4)
    b[..., 2:3, :] = 1
    painting = torch.rand(1, 3, 8, 8)
    regions = (LoadedRegion(a, painting), LoadedRegion(b, None))
    kept = layout(regions, (), ())
    assert len(kept.painted) == 1 and kept.keep is not None
    assert kept.painted[0].mask[0, 0, :, 0].tolist() == [1, 1, 0.5, 0]  # the overlapping row shared
    assert kept.keep[0, 0, :, 0].tolist() == [0, 0, 0.5, 1]  # b's half and the rest
    painted = layout(regions, (painting, painting), (0.5, 0.5))
    assert len(painted.painted) == 2 and painted.painted[1].blend == (0.5, 0.5)
    assert painted.painted[1].mask[0, 0, :, 0].tolist() == [0, 0, 0, 1]
    assert painted.keep is not None and painted.keep[0, 0, :, 0].tolist() == [0, 0, 0.5, 0]


# --- two regions, two paintings, the photo kept between them ---------------------------------


@pytest.fixture(scope="module")
def scene(tubingen_path: Path, starry_path: Path):
    """64 px: the top third as The Scream, the bottom third as The Starry Night, the middle kept.
    From the photo, the top (a blue sky) is closer to The Starry Night: the run must turn that
    round."""
    from impasto import examples

    photo = images.resize_long_side(images.load_image(tubingen_path), 64)
    h, w = photo.shape[-2:]
    scream = images.resize_long_side(images.load_image(examples.painting("the_scream")), 64)
    starry = images.resize_long_side(images.load_image(starry_path), 64)
    top, bottom = band(h, w, 0.0, 1 / 3), band(h, w, 2 / 3, 1.0)
    regions = [Region(top, scream), Region(bottom, starry)]
    return photo, regions, (top, bottom), (scream, starry)


def _run(scene, **settings) -> torch.Tensor:
    photo, regions, _, _ = scene
    config = TransferConfig(**{"size": 64, "iterations": 30, "scales": 1, "seed": 3, "precision": "fp32",
                               "init": "content", **settings})
    return transfer(photo, [], config, regions=regions).tensor


def _distances(weights, scene, image: torch.Tensor) -> list[tuple[float, float]]:
    """Per region: (distance to its own painting, to the other)."""
    _, _, masks, paintings = scene
    net = VGG19(weights, "relu4_1")
    own = [statistics(net, p) for p in paintings]
    out = []
    for k, mask in enumerate(masks):
        s = statistics(net, image, mask)
        out.append((distance(s, own[k]), distance(s, own[1 - k])))
    return out


@pytest.fixture(scope="module")
def single(scene) -> torch.Tensor:
    return _run(scene)


@pytest.mark.slow
def test_each_region_takes_its_own_painting_and_the_kept_middle_stays_the_photo(single, scene, weights) -> None:
    photo, _, (top, bottom), _ = scene
    before = _distances(weights, scene, photo)
    assert before[0][0] > before[0][1]  # the photo's sky is nearer the other painting
    after = _distances(weights, scene, single)
    for own, other in after:
        assert own < other
    assert after[0][0] < before[0][0] and after[1][0] < before[1][0]
    kept = (1 - top - bottom).clamp(0, 1)
    diff = (single - photo).abs().mean(1, keepdim=True)
    assert float(diff[kept > 0.99].max()) <= 1 / 255  # pinned where fully kept
    assert float((diff * kept).sum() / kept.sum()) < 0.02  # and near it across the soft edges
    assert float(diff[(top > 0.99) | (bottom > 0.99)].mean()) > 0.05  # the painted regions did change


@pytest.mark.slow
def test_two_scales_give_the_same_regions(single, scene, weights) -> None:
    photo, _, (top, bottom), _ = scene
    reference = _distances(weights, scene, single)
    coarse = _run(scene, scales=2, coarse_iterations=20)
    for (own, other), (ref_own, _) in zip(_distances(weights, scene, coarse), reference, strict=True):
        assert own < other
        assert own == pytest.approx(ref_own, rel=0.5)
    kept = (1 - top - bottom) > 0.99
    assert float((coarse - photo).abs().mean(1, keepdim=True)[kept].max()) <= 1 / 255


@pytest.mark.slow
def test_a_tiled_run_is_the_untiled_run(scene, weights) -> None:
    # 80 x 60 px in two tiles of 48 + 32 columns: the same objective evaluated in pieces, so the
    # same run to float rounding, and the same statistics per region.
    settings = {"size": 80, "iterations": 5}
    whole, tiled = _run(scene, **settings), _run(scene, tile="64", **settings)
    assert len(tiles.tiles(60, 80, tiles.tiling_for(("relu5_1",), 64))) == 2
    assert float((tiled - whole).abs().max()) < 2e-3
    for a, b in zip(_distances(weights, scene, tiled), _distances(weights, scene, whole), strict=True):
        assert a == pytest.approx(b, rel=1e-2)


@pytest.mark.parametrize("mode", ["inside", "erode"])
def test_tiled_guided_objective_and_gradient_equal_the_untiled_ones(scene, mode: str) -> None:
    photo, regions, _, _ = scene
    content = images.resize_long_side(photo, 128)
    config = TransferConfig(size=128, precision="fp32", scales=1, tv_weight=1e-3, region_guides=mode,
                            style_blend=(3.0, 1.0))
    # The remainder (the middle) painted by two blended paintings, beside the two regions.
    problem = build_problem(content, [regions[1].style, regions[0].style], config, (), regions)
    scale_targets = targets(problem, 128)
    assert len(scale_targets.regions) == 3
    x = torch.rand((1, 3, *problem.shape_at(128)), generator=torch.Generator().manual_seed(0))
    leaf = x.clone().requires_grad_(True)
    terms = objective(problem.net(problem.runtime.prepare(leaf), problem.layers), leaf, scale_targets,
                      problem.weights)
    terms.total.backward()
    tiling = tiles.tiling_for(problem.layers, 64)
    assert len(tiles.tiles(*x.shape[-2:], tiling)) == 4
    tiled, grad = tiles.evaluate(problem, x, scale_targets, tiling)
    whole, tiled_floats = terms.as_floats(), tiled.as_floats()
    for name in ("content", "style", "tv", "total"):
        assert tiled_floats[name] == pytest.approx(whole[name], rel=2e-5, abs=1e-6), name
    assert leaf.grad is not None
    assert float((grad - leaf.grad).abs().max()) <= 1e-4 * float(leaf.grad.abs().max())


@pytest.mark.slow
def test_colour_preservation_composes_with_regions(scene) -> None:
    from impasto import colour

    photo, regions, (top, bottom), _ = scene
    for mode in ("luminance", "histogram"):
        config = TransferConfig(size=64, iterations=3, scales=1, seed=0, init="content", preserve_color=mode)
        result = transfer(photo, [], config, regions=regions).tensor
        small = images.resize_to(photo, *result.shape[-2:])
        kept = (1 - resize(top, result.shape[-2:]) - resize(bottom, result.shape[-2:])) > 0.99
        assert float((result - small).abs().mean(1, keepdim=True)[kept].max()) <= 2 / 255, mode
        if mode == "luminance":
            iq = colour.rgb_to_yiq(result)[:, 1:] - colour.rgb_to_yiq(small)[:, 1:]
            assert float(iq.abs().mean()) < 0.02


# --- the command line, job files, errors --------------------------------------------------------


@pytest.fixture
def masks(tmp_path: Path, content64: torch.Tensor) -> tuple[Path, Path]:
    h, w = content64.shape[-2:]
    paths = tmp_path / "sky.png", tmp_path / "ground.png"
    for path, mask in zip(paths, (band(h, w, 0.0, 0.5), band(h, w, 0.5, 1.0)), strict=True):
        images.save_image(mask.expand(1, 3, h, w), path)
    return paths


def _cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_regions_go_into_the_job_file_and_run_repeats_them(tmp_path: Path, small_pair, masks, capsys) -> None:
    content, style = small_pair
    sky, ground = masks
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    code, err = _cli(capsys, "transfer", content, "--region", f"{sky}={style}", "--region", f"{ground}=keep",
                     "--region-guides", "erode", "-o", out, "--size", "48", "--iterations", "3", "--scales", "1",
                     "--seed", "0", "--quiet")
    assert code == 0, err
    record = json.loads((tmp_path / "out.job.json").read_text())
    assert record["job"]["regions"] == [{"mask": str(sky.absolute()), "style": str(style.absolute())},
                                        {"mask": str(ground.absolute()), "style": "keep"}]
    assert record["job"]["styles"] == [] and record["config"]["region_guides"] == "erode"
    job = jobs.load(tmp_path / "out.job.json")
    assert job.regions == (RegionSpec(sky.absolute(), style.absolute()), RegionSpec(ground.absolute(), None))
    code, err = _cli(capsys, "run", tmp_path / "out.job.json", "-o", again, "--quiet")
    assert code == 0, err
    assert torch.equal(images.load_image(out), images.load_image(again))


@pytest.mark.parametrize("case", ["aspect", "unreadable", "no-equals", "missing-painting", "missing-mask",
                                  "nothing-painted"])
def test_bad_regions_are_one_line_and_exit_2(tmp_path: Path, small_pair, masks, capsys, case: str) -> None:
    content, style = small_pair
    sky, _ = masks
    square = tmp_path / "square.png"
    images.save_image(torch.ones(1, 3, 40, 40), square)
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    cases: dict[str, tuple[str, list[Path], str]] = {
        "aspect": (f"{square}={style}", [], f"{square}: mask is 40x40, the photo is 64x48"),
        "unreadable": (f"{broken}={style}", [], f"{broken}: not an image file"),
        "no-equals": (str(sky), [], f"--region {sky}: expected MASK=PAINTING or MASK=keep"),
        "missing-painting": (f"{sky}={tmp_path / 'nope.jpg'}", [], f"{tmp_path / 'nope.jpg'}: file not found"),
        "missing-mask": (f"{tmp_path / 'nope.png'}=keep", [style], f"{tmp_path / 'nope.png'}: file not found"),
        "nothing-painted": (f"{sky}=keep", [], "--region: no region has a painting"),
    }
    region, extra, expected = cases[case]
    code, err = _cli(capsys, "transfer", content, *extra, "--region", region,
                     "-o", tmp_path / "out.png", "--size", "48", "--iterations", "1", "--quiet")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "out.png").exists()


def test_the_library_refuses_a_mask_of_another_shape_and_unknown_guides(content64) -> None:
    with pytest.raises(InputError, match="region 1 mask: mask is 40x40, the photo is 64x48"):
        build_problem(content64, [], TransferConfig(size=64), (), [Region(torch.ones(1, 1, 40, 40), content64)])
    with pytest.raises(InputError, match="--region-guides: 'blur' is not one of inside, resize, erode"):
        TransferConfig(region_guides="blur")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"job\.regions"):
        jobs.from_record({"format": "impasto-job", "version": 1, "kind": "transfer",
                          "job": {"content": "a.jpg", "styles": [], "regions": [{"mask": "m.png"}]}})


# --- the studio's API -------------------------------------------------------------------------------


@pytest.fixture
def studio(tmp_path: Path):
    from fastapi.testclient import TestClient

    from impasto import examples
    from impasto.web.app import StudioSettings, create_app

    settings = StudioSettings(tmp_path / "data", examples=examples.STYLE, max_upload_bytes=200_000,
                              max_pixels=1_000_000, max_size=256)
    with TestClient(create_app(settings, worker=False), raise_server_exceptions=False) as client:
        yield client, tmp_path / "data" / "jobs"


def _png(image: torch.Tensor) -> bytes:
    import io

    buffer = io.BytesIO()
    images.to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_studio_takes_masks_with_a_painting_or_keep_and_its_worker_runs_them(studio, content64,
                                                                                 style64) -> None:
    from impasto.web import store, worker

    client, jobs_folder = studio
    h, w = content64.shape[-2:]
    sky, ground = _png(band(h, w, 0, 0.5).expand(1, 3, h, w)), _png(band(h, w, 0.5, 1).expand(1, 3, h, w))
    files = {"content": ("photo.png", _png(content64), "image/png"),
             "region_1_mask": ("sky.png", sky, "image/png"), "region_1_style": ("p.png", _png(style64), "image/png"),
             "region_2_mask": ("ground.png", ground, "image/png")}
    response = client.post("/api/jobs", data={"mode": "optimise", "region_2_style_name": "keep", "size": "48",
                                              "region_guides": "resize"}, files=files)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["style"] == "the photo + 2 regions" and job["settings"] == {"size": 48, "region_guides": "resize"}
    folder = jobs_folder / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [store.CONTENT, "region_1_mask.png", "region_1_style.png",
                                                         "region_2_mask.png"]
    stored = client.app.state.store.get(job["id"])  # type: ignore[attr-defined]
    transfer_job, _ = worker.build(client.app.state.store, stored)  # type: ignore[attr-defined]
    assert transfer_job.styles == () and transfer_job.config.region_guides == "resize"
    assert transfer_job.regions == (RegionSpec(folder / "region_1_mask.png", folder / "region_1_style.png"),
                                    RegionSpec(folder / "region_2_mask.png", None))
    # An example painting by name for a region, the main painting for the rest.
    named = client.post("/api/jobs", data={"mode": "optimise", "region_1_style_name": "starry_night",
                                           "style_name": "the_scream"},
                        files={"content": files["content"], "region_1_mask": files["region_1_mask"]})
    assert named.status_code == 201, named.text


@pytest.mark.parametrize("case", ["aspect", "no-mask", "no-painting", "both", "gap", "unknown-name", "fast",
                                  "all-kept", "unreadable"])
def test_the_studio_refuses_bad_regions_naming_the_field(studio, content64, style64, case: str) -> None:
    client, _ = studio
    h, w = content64.shape[-2:]
    mask = ("m.png", _png(band(h, w, 0, 0.5).expand(1, 3, h, w)), "image/png")
    square = ("s.png", _png(torch.ones(1, 3, 40, 40)), "image/png")
    painting = ("p.png", _png(style64), "image/png")
    photo = ("photo.png", _png(content64), "image/png")
    data, files, field, phrase = {
        "aspect": ({"region_1_style_name": "keep"}, {"region_1_mask": square, "style": painting},
                   "region_1_mask", "mask is 40x40, the photo is 64x48"),
        "no-mask": ({"region_1_style_name": "keep"}, {"style": painting}, "region_1_mask", "a mask is needed"),
        "no-painting": ({}, {"region_1_mask": mask}, "region_1_style", "give a painting"),
        "both": ({"region_1_style_name": "keep"}, {"region_1_mask": mask, "region_1_style": painting},
                 "region_1_style", "one of them"),
        "gap": ({"region_2_style_name": "keep"}, {"region_2_mask": mask, "style": painting}, "region_2_mask",
                "numbered 1 to"),
        "unknown-name": ({"region_1_style_name": "nope"}, {"region_1_mask": mask}, "region_1_style_name",
                         "'nope' is not an example painting"),
        "fast": ({"mode": "fast", "style_name": "the_scream", "region_1_style_name": "keep"}, {"region_1_mask": mask},
                 "region_1_style_name", "mode optimise"),
        "all-kept": ({"region_1_style_name": "keep"}, {"region_1_mask": mask}, "style", "no region has one"),
        "unreadable": ({"region_1_style_name": "keep"}, {"region_1_mask": ("m.png", b"not a picture", "image/png"),
                                                         "style": painting}, "region_1_mask", "not an image"),
    }[case]
    response = client.post("/api/jobs", data={"mode": "optimise", **data}, files={"content": photo, **files})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}: ") and phrase in body["error"], body
    assert "\n" not in body["error"]


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_adds_a_region_with_its_mask_and_painting(tmp_path: Path, content64, style64) -> None:
    from playwright.sync_api import sync_playwright

    from studio_server import Server
    from test_web_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    h, w = content64.shape[-2:]
    photo, mask = tmp_path / "photo.png", tmp_path / "sky.png"
    images.save_image(content64, photo)
    images.save_image(band(h, w, 0, 0.5).expand(1, 3, h, w), mask)
    server = Server(tmp_path / "data").start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_selector("#tiles .tile")
            page.set_input_files("#photo-input", str(photo))
            page.fill('.settings[data-for=optimise] [name="size"]', "48")
            page.fill('.settings[data-for=optimise] [name="iterations"]', "2")
            page.click("#add-region")
            page.set_input_files("[name=region_1_mask]", str(mask))
            page.select_option("[name=region_1_style_name]", "starry_night")
            page.check("#keep-rest")
            with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
                page.click("#paint")
            assert answer.value.status == 201, answer.value.text()
            assert answer.value.json()["style"] == "the photo + 1 region"
            assert not errors
            browser.close()
    finally:
        server.stop()
