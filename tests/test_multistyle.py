"""Multi-style networks (Dumoulin et al. 2017): joint training, blends, strength, --add-style,
resume, model files. Tiny: 64 px photos, 32 px crops, a width-8 network with one block."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

import impasto
from conftest import training_photos
from impasto import examples, images
from impasto.config import train_config
from impasto.errors import InputError, WeightsError
from impasto.events import TrainStep
from impasto.fast.multistyle.model import (
    FORMAT,
    MultiStyleNet,
    Objective,
    bind,
    read_multistyle,
    style_vector,
)
from impasto.fast.multistyle.train import _Trainer, held_out_loss, style_assignment, train_multistyle
from impasto.fast.network import Architecture
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos, centre_crop
from impasto.fast.training.loop import training_runtime
from impasto.losses import gram_batch
from impasto.style_spec import parse_mix
from impasto.vgg import VGG19, positions

HOLDOUT = 25.0  # holds out photo_1 and photo_4 of six (test_fast_train)
TINY = train_config("gatys", width=8, blocks=1, kernel=3, iterations=100, batch_size=2, crop_size=32, style_size=32,
                    learning_rate=3e-3, holdout_percent=HOLDOUT, previews=2, preview_every=20, checkpoint_every=20,
                    precision="fp32")
GRAM_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    training_photos(folder, 6, 64)
    return folder


@pytest.fixture(scope="module")
def paintings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("paintings")
    out = {}
    for name in ("starry_night", "composition_vii", "the_scream"):
        out[name] = folder / f"{name}.png"
        images.save_image(images.resize_long_side(images.load_image(examples.painting(name)), 64),
                          out[name])
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path, paintings: dict[str, Path]) -> Path:
    """Two styles trained together for 100 tiny batches."""
    out = tmp_path_factory.mktemp("multi") / "multi.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_multistyle([paintings["starry_night"], paintings["composition_vii"]], photo_dir, out, TINY)
    finally:
        torch.set_num_threads(threads)
    return out


def test_joint_training_lowers_every_style_loss_and_records_objectives(trained: Path) -> None:
    model = read_multistyle(trained)
    assert model.names == ["starry_night", "composition_vii"]
    record = torch.load(trained, weights_only=True)
    assert record["format"] == FORMAT and record["training"]["iterations"] == TINY.iterations
    for entry in model.styles:
        objective = Objective.from_dict(entry.objective, "test")
        assert objective.content_layers == {"relu4_2": 1.0}
        assert objective.style_layers == dict.fromkeys(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), 0.2)
        assert (objective.content_weight, objective.style_weight, objective.style_size) == (1.0, 1e3, 32)
        assert entry.training["iterations"] == TINY.iterations and entry.training["how"].startswith("jointly")
        assert entry.training["validation"] > 0 and entry.training["final_loss"] > 0
    history = torch.load(Path(str(trained) + ".ckpt"), weights_only=True)["history"]
    assert len(history) == TINY.iterations and all(set(row["styles"]) == {"0", "1"} for row in history)


def test_a_model_file_is_scored_as_its_training_recorded_it(trained: Path, photo_dir: Path,
                                                            paintings: dict[str, Path]) -> None:
    # Files from before the curve was recorded are scored by the same validation (held_out_loss).
    model = read_multistyle(trained)
    recorded = model.training["validation"][-1]
    assert recorded["iteration"] == model.training["iterations"] == TINY.iterations
    row = held_out_loss(model, [paintings["starry_night"], paintings["composition_vii"]], photo_dir)
    assert row["iteration"] == recorded["iteration"] and row["precision"] == "fp32"
    for term in ("content", "style", "total", "total/0", "total/1"):
        assert row[term] == pytest.approx(recorded[term], rel=1e-5)
    # Under other settings (a lattice term) the objective's terms stay and the term is added.
    heavier = dataclasses.replace(model, training={**model.training, "settings": {
        **model.training["settings"], "grid_weight": 1e6}})
    scored = held_out_loss(model, [paintings["starry_night"], paintings["composition_vii"]], photo_dir, like=heavier)
    assert scored["content"] == pytest.approx(recorded["content"], rel=1e-5) and scored["grid"] > 0


def test_held_out_losses_fall_for_each_style(tmp_path: Path, photo_dir: Path, paintings: dict[str, Path]) -> None:
    steps: list[TrainStep] = []
    result = train_multistyle([paintings["starry_night"], paintings["composition_vii"]], photo_dir,
                              tmp_path / "m.pt", dataclasses.replace(TINY, checkpoint_every=0),
                              preview_dir=tmp_path / "previews", on_event=steps.append)
    first, last = result.validation[0], result.validation[-1]
    for style in ("0", "1"):
        assert last[f"total/{style}"] < 0.85 * first[f"total/{style}"], result.validation
    grid = images.load_image(tmp_path / "previews" / "iter_00040.png")
    assert grid.shape == (1, 3, 2 * 32, 2 * 32)  # a row per style, a column per held-out photo
    assert [s.step for s in steps] == list(range(1, TINY.iterations + 1))


def test_batches_give_every_style_its_turn() -> None:
    assert style_assignment(0, 4, [0, 1, 2, 3, 4]).tolist() == [0, 1, 2, 3]
    assert style_assignment(1, 4, [0, 1, 2, 3, 4]).tolist() == [4, 0, 1, 2]
    assert style_assignment(7, 2, [5]).tolist() == [5, 5]
    assert positions("relu1_1", 33, 32) == 33 * 32 and positions("relu3_1", 33, 32) == 8 * 8
    assert positions("pool1", 32, 32) == 16 * 16


def grams(vgg: VGG19, image: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        features = vgg(image, GRAM_LAYERS)
    return {n: gram_batch(f)[0] for n, f in features.items()}


def distance(g: dict[str, torch.Tensor], h: dict[str, torch.Tensor]) -> float:
    return sum(float((g[n] - h[n]).pow(2).sum() / h[n].pow(2).sum()) for n in GRAM_LAYERS)


def test_a_blend_lies_between_its_styles_in_gram_statistics(trained: Path, photo_dir: Path,
                                                            paintings: dict[str, Path], weights) -> None:
    model = read_multistyle(trained)
    vgg = VGG19(weights, "relu4_1").eval()
    photo = images.load_image(photo_dir / "photo_1.jpg")  # held out
    a, b = (grams(vgg, images.load_image(paintings[n])) for n in ("starry_night", "composition_vii"))
    out = {w: grams(vgg, stylize(bind(model, [("starry_night", w), ("composition_vii", 1 - w)]), photo))
           for w in (1.0, 0.5, 0.0)}
    # Each trained vector moves the output toward its own painting.
    assert distance(out[1.0], a) < distance(out[0.0], a)
    assert distance(out[0.0], b) < distance(out[1.0], b)
    # The half-and-half mix lies between the two styles' outputs, and between the paintings.
    apart = distance(out[0.0], out[1.0])
    assert distance(out[0.5], out[1.0]) < apart and distance(out[0.5], out[0.0]) < apart
    assert distance(out[1.0], b) > distance(out[0.5], b) > distance(out[0.0], b)


def test_mixing_is_a_convex_combination_of_vectors(trained: Path) -> None:
    model = read_multistyle(trained)
    table = model.network.table()
    mixed = style_vector(model, parse_mix("starry_night:3,composition_vii:1"))
    torch.testing.assert_close(mixed[0], 0.75 * table[0] + 0.25 * table[1])


def test_strength_zero_returns_the_photo(trained: Path, photo_dir: Path) -> None:
    model = read_multistyle(trained)
    photo = images.load_image(photo_dir / "photo_4.jpg")
    assert torch.equal(stylize(bind(model, [("starry_night", 1.0)], strength=0.0), photo), photo)
    change = [float((stylize(bind(model, [("starry_night", 1.0)], strength=s), photo) - photo).abs().mean())
              for s in (0.25, 0.5, 1.0)]
    assert 0 < change[0] < change[1] < change[2], change
    with pytest.raises(InputError, match=r"--strength: must lie in \[0, 1\]"):
        bind(model, [("starry_night", 1.0)], strength=1.5)


def test_add_style_trains_only_the_new_vector(tmp_path: Path, trained: Path, photo_dir: Path,
                                              paintings: dict[str, Path]) -> None:
    base = read_multistyle(trained)
    config = dataclasses.replace(TINY, iterations=6, checkpoint_every=3, preview_every=0, learning_rate=1e-2)
    result = train_multistyle([paintings["the_scream"]], photo_dir, tmp_path / "three.pt", config, base=trained)
    grown = read_multistyle(tmp_path / "three.pt")
    assert grown.names == ["starry_night", "composition_vii", "the_scream"]
    old, new = base.network.state_dict(), grown.network.state_dict()
    for name, value in old.items():
        assert torch.equal(value, new[name]), name  # convolutions and old vectors: bit for bit
    start = torch.stack([old["styles.0"], old["styles.1"]]).mean(dim=0)
    assert not torch.equal(new["styles.2"], start)
    assert grown.styles[:2] == base.styles and grown.styles[2].training["how"].startswith("--add-style")
    assert grown.training == base.training and result.iterations == 6
    # Resuming an --add-style run repeats it batch for batch.
    short = dataclasses.replace(config, iterations=3)
    train_multistyle([paintings["the_scream"]], photo_dir, tmp_path / "r.pt", short, base=trained)
    train_multistyle([paintings["the_scream"]], photo_dir, tmp_path / "r.pt", config, base=trained, resume=True)
    assert torch.equal(read_multistyle(tmp_path / "r.pt").network.state_dict()["styles.2"], new["styles.2"])
    with pytest.raises(InputError, match="two styles would be named 'starry_night'"):
        train_multistyle([paintings["starry_night"]], photo_dir, tmp_path / "x.pt", config, base=trained)


def test_resume_repeats_an_uninterrupted_run(tmp_path: Path, photo_dir: Path, paintings: dict[str, Path]) -> None:
    styles = [paintings["starry_night"], paintings["composition_vii"]]
    short = dataclasses.replace(TINY, iterations=3, checkpoint_every=3, preview_every=0)
    train_multistyle(styles, photo_dir, tmp_path / "a.pt", short)
    steps: list[TrainStep] = []
    resumed = train_multistyle(styles, photo_dir, tmp_path / "a.pt", dataclasses.replace(short, iterations=5),
                               resume=True, on_event=steps.append)
    assert [s.step for s in steps] == [4, 5]
    straight = train_multistyle(styles, photo_dir, tmp_path / "b.pt", dataclasses.replace(short, iterations=5))
    for name, value in straight.model.network.state_dict().items():
        assert torch.equal(value, resumed.model.network.state_dict()[name]), name
    with pytest.raises(InputError, match="checkpoint trained styles"):
        train_multistyle(styles[::-1], photo_dir, tmp_path / "a.pt", short, resume=True)


def test_resume_takes_the_learning_rate_it_is_given(tmp_path: Path, photo_dir: Path,
                                                    paintings: dict[str, Path]) -> None:
    # --resume --learning-rate: the run's rate replaces the checkpoint's (a step schedule by hand).
    styles = [paintings["starry_night"], paintings["composition_vii"]]
    short = dataclasses.replace(TINY, iterations=3, checkpoint_every=3, preview_every=0)
    before = train_multistyle(styles, photo_dir, tmp_path / "a.pt", short).model.network.state_dict()
    after = train_multistyle(styles, photo_dir, tmp_path / "a.pt",
                             dataclasses.replace(short, iterations=5, learning_rate=1e-12), resume=True)
    moved = train_multistyle(styles, photo_dir, tmp_path / "b.pt", dataclasses.replace(short, iterations=5))
    for name, value in after.model.network.state_dict().items():
        assert torch.allclose(value, before[name], atol=1e-8), name
    assert any((value - before[name]).abs().max() > 1e-4 for name, value in moved.model.network.state_dict().items())


def test_training_refuses_what_it_cannot_record(tmp_path: Path, photo_dir: Path, paintings: dict[str, Path]) -> None:
    styles = [paintings["starry_night"], paintings["composition_vii"]]
    with pytest.raises(InputError, match="--objective: a multi-style model records"):
        train_multistyle(styles, photo_dir, tmp_path / "m.pt", dataclasses.replace(TINY, objective="relative"))
    with pytest.raises(InputError, match="--variant: a multi-style network keeps its residual blocks at 1/4"):
        train_multistyle(styles, photo_dir, tmp_path / "m.pt", dataclasses.replace(TINY, variant="lite", width=None,
                                                                                    blocks=None, kernel=None))
    with pytest.raises(InputError, match="--width: at least 8"):
        train_multistyle(styles, photo_dir, tmp_path / "m.pt", dataclasses.replace(TINY, width=4))
    with pytest.raises(InputError, match="at least two paintings"):
        train_multistyle(styles[:1], photo_dir, tmp_path / "m.pt", TINY)
    assert not (tmp_path / "m.pt").exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_model_file_cannot_run_code_and_bad_files_are_one_line(tmp_path: Path, trained: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"format": FORMAT, "version": 1, "payload": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match=r"evil\.pt: cannot read model file"):
        read_multistyle(tmp_path / "evil.pt")
    assert not marker.exists()
    record = torch.load(trained, weights_only=True)
    record["styles"][0]["objective"]["style_layers"] = {"relu9_9": 1.0}
    torch.save(record, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"bad\.pt: style 'starry_night': invalid objective"):
        read_multistyle(tmp_path / "bad.pt")
    record = torch.load(trained, weights_only=True)
    record["state_dict"]["styles.1"] = torch.zeros(3)
    torch.save(record, tmp_path / "shape.pt")
    with pytest.raises(WeightsError, match=r"shape\.pt: invalid multi-style model"):
        read_multistyle(tmp_path / "shape.pt")


@pytest.mark.parametrize(("spec", "message"), [
    ("", "give NAME or NAME:WEIGHT"),
    ("a,,b", "give NAME or NAME:WEIGHT"),
    ("a:0.7,b", "a weight for every style or for none"),
    ("a:x", "a's weight must be a non-negative number, got 'x'"),
    ("a:-1", "a's weight must be a non-negative number"),
    ("a:nan", "a's weight must be a non-negative number"),
    ("a:0,b:0", "must not all be zero"),
    ("a,a", "a is named twice"),
])
def test_bad_mixes_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(InputError, match="^--style: .*" + message.replace("(", r"\(")) as info:
        parse_mix(spec)
    assert "\n" not in str(info.value)


def test_mixes_parse_and_normalise() -> None:
    assert parse_mix("starry_night") == (("starry_night", 1.0),)
    assert parse_mix(" a:3, b:1 ") == (("a", 0.75), ("b", 0.25))
    assert parse_mix("a,b") == (("a", 0.5), ("b", 0.5))


def test_new_vectors_start_from_the_mean() -> None:
    net = MultiStyleNet(Architecture(8, 1, 3), 2)
    with torch.no_grad():
        net.styles[0].add_(1.0)
    index = net.add_style()
    torch.testing.assert_close(net.styles[index], (net.styles[0] + net.styles[1]) / 2)
    assert net.table().shape == (3, net.transformer.code_size)


def test_the_training_loss_is_the_objective_impasto_evaluate_scores(trained: Path, photo_dir: Path,
                                                                    paintings: dict[str, Path]) -> None:
    # A square crop and The Starry Night at 32 x 25 px: unequal positions, so the painting's
    # Gram matrix must be brought to the crop's in both (gatys.targets) for them to agree.
    model = read_multistyle(trained)
    held = [images.resize_long_side(images.load_image(paintings[n]), TINY.style_size) for n in model.names]
    assert held[0].shape[-2] != held[0].shape[-1]
    trainer = _Trainer(held, Photos(photo_dir, HOLDOUT), TINY, training_runtime(TINY), None)
    trainer.net.load_state_dict(model.network.state_dict())
    photo = centre_crop(images.load_image(photo_dir / "photo_1.jpg"), TINY.crop_size)
    with torch.no_grad():
        terms, outputs = trainer.objective(photo, torch.tensor([0]))
    objective = Objective.from_dict(model.styles[0].objective, "test")
    scored = impasto.evaluate(outputs, photo, paintings["starry_night"], objective.transfer_config(TINY.crop_size))
    assert float(terms[0].total) == pytest.approx(float(scored.total), rel=1e-3)
