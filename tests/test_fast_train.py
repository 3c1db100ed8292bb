from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import training_photos
from impasto import images
from impasto.config import TrainConfig, train_config
from impasto.errors import InputError
from impasto.events import CancelToken, TrainStep
from impasto.fast.model import read_model
from impasto.fast.single.train import _loss_scale, train
from impasto.fast.training.data import Photos, batches, held_out
from impasto.fast.training.loop import TrainingDiverged
from impasto.losses import Weights, perceptual_objective

# Six photos named photo_0 ... photo_5; at 25 % the name hash holds out photo_1 and photo_4.
HOLDOUT = 25.0
TINY = TrainConfig(width=8, blocks=1, iterations=16, batch_size=2, crop_size=32, style_size=48,
                   learning_rate=3e-3, holdout_percent=HOLDOUT, previews=2, preview_every=8,
                   checkpoint_every=8, seed=0, precision="fp32")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small training photos, 64 px so that a batch decodes in no time."""
    folder = tmp_path_factory.mktemp("photos")
    training_photos(folder, 6, 64)
    return folder


@pytest.fixture(scope="module")
def style_file(tmp_path_factory: pytest.TempPathFactory, style64: torch.Tensor) -> Path:
    path = tmp_path_factory.mktemp("style") / "starry.png"
    images.save_image(style64, path)
    return path


def test_held_out_split_is_stable_and_by_name(photo_dir: Path) -> None:
    photos = Photos(photo_dir, HOLDOUT)
    assert [p.name for p in photos.held_out] == ["photo_1.jpg", "photo_4.jpg"]
    assert len(photos.training) == 4
    assert held_out("photo_1.jpg", HOLDOUT) and not held_out("photo_0.jpg", HOLDOUT)
    assert not any(held_out(f"x{i}.jpg", 0.0) for i in range(100))


def test_training_reduces_the_held_out_loss_and_writes_previews(tmp_path: Path, photo_dir: Path,
                                                                 style_file: Path) -> None:
    steps: list[TrainStep] = []
    result = train(style_file, photo_dir, tmp_path / "m.pt", TINY, preview_dir=tmp_path / "previews",
                   on_event=steps.append)
    assert [s.step for s in steps] == list(range(1, 17))
    first, last = result.validation[0], result.validation[-1]
    assert (first["iteration"], last["iteration"]) == (0, 16)
    assert last["total"] < 0.8 * first["total"], result.validation
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == [
        "iter_00000.png", "iter_00008.png", "iter_00016.png"]
    strip = images.load_image(tmp_path / "previews" / "iter_00016.png")
    assert strip.shape == (1, 3, 32, 64)  # two held-out photos side by side
    assert [s.checkpoint is not None for s in steps].count(True) == 2
    assert (tmp_path / "m.pt.ckpt").is_file()
    model = read_model(tmp_path / "m.pt")
    assert model.style == "starry" and model.training["iterations"] == 16
    assert model.training["held_out"] == 2 and model.training["settings"]["width"] == 8


def test_resume_continues_from_the_checkpoint(tmp_path: Path, photo_dir: Path, style_file: Path) -> None:
    short = dataclasses.replace(TINY, iterations=4, checkpoint_every=2, preview_every=0)
    train(style_file, photo_dir, tmp_path / "a.pt", short)
    steps: list[TrainStep] = []
    resumed = train(style_file, photo_dir, tmp_path / "a.pt", dataclasses.replace(short, iterations=6),
                    resume=True, on_event=steps.append)
    assert [s.step for s in steps] == [5, 6]
    assert resumed.iterations == 6
    # Batches depend only on (seed, iteration) and Adam's state is restored: resuming matches
    # an uninterrupted run.
    straight = train(style_file, photo_dir, tmp_path / "b.pt", dataclasses.replace(short, iterations=6))
    for name, value in straight.model.network.state_dict().items():
        assert torch.allclose(value, resumed.model.network.state_dict()[name], atol=1e-5), name


def test_resume_refuses_other_networks_and_missing_checkpoints(tmp_path: Path, photo_dir: Path,
                                                               style_file: Path) -> None:
    short = dataclasses.replace(TINY, iterations=2, checkpoint_every=2, preview_every=0)
    with pytest.raises(InputError, match="no checkpoint"):
        train(style_file, photo_dir, tmp_path / "m.pt", short, resume=True)
    train(style_file, photo_dir, tmp_path / "m.pt", short)
    with pytest.raises(InputError, match="checkpoint of a network"):
        train(style_file, photo_dir, tmp_path / "m.pt", dataclasses.replace(short, width=4), resume=True)
    (tmp_path / "m.pt.ckpt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        train(style_file, photo_dir, tmp_path / "m.pt", short, resume=True)


def test_unreadable_photos_are_skipped(tmp_path: Path, photo_dir: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in photo_dir.iterdir():
        (folder / p.name).symlink_to(p)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    photos = Photos(folder, 0.0)
    batch = photos.batch(40, 32, torch.Generator().manual_seed(0))
    assert batch.shape == (40, 3, 32, 32)
    assert [p.name for p in photos.unreadable] == ["broken.jpg"]


def test_worker_processes_load_the_same_batches(photo_dir: Path) -> None:
    photos = Photos(photo_dir, HOLDOUT)
    config = dataclasses.replace(TINY, iterations=6)
    inline = list(batches(photos, config, start=2))
    ahead = list(batches(photos, dataclasses.replace(config, workers=2), start=2))
    assert len(inline) == len(ahead) == 4
    assert all(torch.equal(a, b) for a, b in zip(inline, ahead, strict=True))
    assert not torch.equal(inline[0], inline[1])


def test_a_worker_reports_an_undecodable_folder_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    config = dataclasses.replace(TINY, workers=1, holdout_percent=0.0)
    with pytest.raises(InputError, match=r"^\S+: 1 photos cannot be decoded$"):
        next(batches(Photos(tmp_path, 0.0), config, start=0))


@pytest.mark.parametrize(("change", "message"), [
    ({"iterations": 0}, "--iterations"),
    ({"workers": -1}, "--workers"),
    ({"crop_size": 16}, "--crop-size"),
    ({"style_weight": -1.0}, "--style-weight"),
    ({"learning_rate": 0.0}, "--learning-rate"),
    ({"holdout_percent": 100.0}, "--holdout-percent"),
    ({"variant": "huge"}, "--variant"),
    ({"style_layers": ("relu9_9",)}, "unknown layer"),
    ({"style_layer_weights": (1.0, 2.0)}, "--style-layer-weights"),
    ({"objective": "magic"}, "--objective"),
    ({"upsample": "cubic"}, "--upsample"),
    ({"minutes": -1.0}, "--minutes"),
    ({"grid_weight": -1.0}, "--grid-weight"),
    ({"droplet_weight": float("nan")}, "--droplet-weight"),
    ({"content_weight": 0.0, "style_weight": 0.0}, "both zero"),
])
def test_config_validation(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainConfig(**change)


def test_objectives_bring_their_defaults_and_settings_win() -> None:
    gatys = train_config("gatys", style_weight=500.0)
    assert gatys.content_layers == ("relu4_2",) and len(gatys.style_layers) == 5
    assert (gatys.content_weight, gatys.style_weight, gatys.tv_weight) == (1.0, 500.0, 0.0)
    assert train_config() == TrainConfig()
    with pytest.raises(InputError, match="--objective"):
        train_config("magic")  # type: ignore[arg-type]


def test_bad_folders(tmp_path: Path, style_file: Path) -> None:
    with pytest.raises(InputError, match="photo folder not found"):
        train(style_file, tmp_path / "nope", tmp_path / "m.pt", TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no training photos"):
        train(style_file, tmp_path / "empty", tmp_path / "m.pt", TINY)
    with pytest.raises(InputError, match=r"end in \.pt"):
        train(style_file, tmp_path / "empty", tmp_path / "m.json", TINY)


def test_divergence_stops_with_one_line(tmp_path: Path, photo_dir: Path, style_file: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.fast.single import train as module

    def diverging(self: module._Trainer, batch: torch.Tensor) -> dict[str, float]:
        self.iteration += 1
        return {"content": 1.0, "style": float("nan"), "tv": 0.0, "total": float("nan")}

    monkeypatch.setattr(module._Trainer, "step", diverging)
    with pytest.raises(TrainingDiverged, match=r"diverged at iteration 1 .* lower --learning-rate"):
        train(style_file, photo_dir, tmp_path / "m.pt", dataclasses.replace(TINY, preview_every=0))
    assert not (tmp_path / "m.pt").exists()


def test_the_paper_objective_is_scaled_to_order_one_for_its_gradients() -> None:
    """bf16 gradients of the raw paper objective (~1e13 on 256 px crops) overflow; the backward
    pass sees it divided by the style loss of a black image."""
    grams = {"relu1_1": torch.rand(4, 4) * 1e3, "relu2_1": torch.rand(8, 8) * 1e4}
    config = train_config("gatys", style_layers=tuple(grams), style_weight=1e3)
    weights = Weights(1.0, 1e3, 0.0, {"relu2_1": 1.0}, {"relu1_1": 0.5, "relu2_1": 0.5})
    black = {"relu1_1": torch.zeros(2, 4, 8, 8), "relu2_1": torch.zeros(2, 8, 4, 4)}
    terms = perceptual_objective(black, torch.zeros(2, 3, 8, 8), {"relu2_1": black["relu2_1"]}, grams, weights, "gatys")
    assert float(terms.style) * _loss_scale(config, weights, grams) == pytest.approx(1.0, rel=1e-5)
    assert _loss_scale(train_config("relative"), weights, grams) == 1.0


def test_cancel_stops_training_within_one_iteration_and_keeps_the_network(tmp_path: Path, photo_dir: Path,
                                                                          style_file: Path) -> None:
    token = CancelToken()

    def cancel_at_three(step: TrainStep) -> None:
        if step.step == 3:
            token.cancel()

    result = train(style_file, photo_dir, tmp_path / "m.pt", TINY, on_event=cancel_at_three, cancel=token)
    assert result.iterations == 3 and not result.complete
    assert read_model(tmp_path / "m.pt").training["iterations"] == 3
    # The checkpoint holds iteration 3, so --resume continues from there.
    resumed = train(style_file, photo_dir, tmp_path / "m.pt", dataclasses.replace(TINY, iterations=4), resume=True)
    assert resumed.iterations == 4 and resumed.complete
