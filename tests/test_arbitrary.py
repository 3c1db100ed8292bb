"""The arbitrary-style network (Ghiasi et al. 2017): conditional normalisation, the style code,
model files, the held-out split, training and resume. Tiny sizes; a 128-iteration training on
synthetic paintings shows the code steering the output toward its painting."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from conftest import CORPORA, needs_corpus, training_photos
from impasto import images
from impasto.config import ArbitraryConfig
from impasto.errors import InputError, WeightsError
from impasto.fast.arbitrary import model as arbitrary
from impasto.fast.arbitrary.model import ArbitraryNet, Paintings, held_out_painting, read_arbitrary, save_arbitrary
from impasto.fast.arbitrary.style_code import feature_statistics, statistics_size
from impasto.fast.arbitrary.train import initialise_from, make_batch, train_arbitrary
from impasto.fast.conditional import BoundNet, ConditionalNet
from impasto.fast.network import Architecture
from impasto.fast.stylize import stylize
from impasto.fast.training.data import Photos
from impasto.losses import gram_batch, relative_style_loss
from impasto.vgg import VGG19

PAINTINGS = CORPORA / "paintings"
# lr 1e-3: at 3e-3 the standardised predictor's tiny training ends with one painting's code near
# the other's on AVX2 kernels (0.97 of the distance; 0.42 at 1e-3, 0.43 with AVX2).
TINY = ArbitraryConfig(width=4, blocks=1, kernel=3, iterations=128, batch_size=4, crop_size=32, style_crop_size=32,
                       learning_rate=1e-3, holdout_percent=25.0, painting_holdout_percent=25.0,
                       validation_photos=2, validation_paintings=2, validate_every=32, checkpoint_every=32,
                       device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    training_photos(folder, 6, 48)
    return folder


def synthetic_painting(kind: int, size: int = 48) -> torch.Tensor:
    """Paintings with unmistakably different statistics: colour and stroke direction."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    colours = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.3, 0.9], [0.2, 0.8, 0.2], [0.9, 0.9, 0.2],
                            [0.7, 0.2, 0.8], [0.5, 0.5, 0.5], [0.1, 0.1, 0.1], [0.9, 0.6, 0.4]])
    stripes = ((x if kind % 2 else y) // (2 + kind % 3) % 2).float()
    base = colours[kind % len(colours)].view(3, 1, 1)
    return (base * (0.55 + 0.45 * stripes)).clamp(0, 1).unsqueeze(0)


@pytest.fixture(scope="module")
def painting_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paintings")
    for i in range(8):
        images.save_image(synthetic_painting(i), folder / f"painting_{i}.png")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path, painting_dir: Path) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("model") / "arbitrary.pt"
        train_arbitrary(photo_dir, painting_dir, path, TINY)
    finally:
        torch.set_num_threads(threads)
    return path


def test_conditional_norm_applies_gamma_and_beta_per_image() -> None:
    net = ConditionalNet(Architecture(4, 1, 3))
    assert net.code_size == 2 * sum(net.norm_channels) + 3  # γ, β and the output gains
    x = torch.rand(2, 3, 20, 28)
    identity = net.identity()
    shifted = identity.clone()
    shifted[0, sum(net.norm_channels):] = 0.5  # every β
    both = net(x, torch.cat([identity, shifted]))
    assert both.shape == x.shape
    torch.testing.assert_close(both[:1], net(x[:1], identity))
    torch.testing.assert_close(both[1:], net(x[1:], shifted))
    assert not torch.allclose(both[0], both[1])
    with pytest.raises(InputError, match="expected shape"):
        net(x, identity[:, :-1])


def test_strength_zero_is_the_identity_normalisation() -> None:
    net = ArbitraryNet(Architecture(4, 1, 3))
    torch.nn.init.normal_(net.predictor.head.weight)
    code = net.predictor.code(torch.rand(1, statistics_size()))
    torch.testing.assert_close(net.predictor.gammabeta(code, 0.0), net.transformer.identity())
    full, half = net.predictor.gammabeta(code, 1.0), net.predictor.gammabeta(code, 0.5)
    torch.testing.assert_close(half, (full + net.transformer.identity()) / 2)


def test_training_lowers_the_held_out_loss(trained: Path) -> None:
    model = read_arbitrary(trained)
    validation = model.training["validation"]
    assert [row["iteration"] for row in validation] == [0, 32, 64, 96, 128]
    # Held-out synthetic paintings after 128 tiny iterations: a modest but real fall.
    assert validation[-1]["style"] < 0.99 * validation[0]["style"], validation
    assert model.training["held_out_paintings"] >= 1


def style_distance(vgg: VGG19, image: torch.Tensor, painting: torch.Tensor) -> float:
    layers = ("relu1_1", "relu2_1", "relu3_1")
    with torch.no_grad():
        a, b = vgg(image, layers), vgg(painting, layers)
    return sum(float(relative_style_loss(a[n], gram_batch(b[n]))) for n in layers)


def test_the_style_code_moves_the_output_toward_its_painting(trained: Path, photo_dir: Path, weights) -> None:
    """A real property of the trained code: painting A's code brings the output's Gram
    statistics closer to A than painting B's code does, and the other way round (two training
    paintings: 2 and 3 are not held out at 25 %)."""
    model = read_arbitrary(trained)
    vgg = VGG19(weights, "relu3_1")
    photo = images.load_image(sorted(photo_dir.iterdir())[0])
    a, b = synthetic_painting(2), synthetic_painting(3)
    # The paintings read at the scale this tiny training held them at (the default is a print's).
    side = TINY.style_crop_size
    out_a = stylize(arbitrary.bind(model, [a], style_size=side), photo)
    out_b = stylize(arbitrary.bind(model, [b], style_size=side), photo)
    assert style_distance(vgg, out_a, a) < 0.8 * style_distance(vgg, out_b, a)
    assert style_distance(vgg, out_b, b) < 0.8 * style_distance(vgg, out_a, b)
    # A 50/50 mix of the codes lies between the two.
    mixed = stylize(arbitrary.bind(model, [a, b], [0.5, 0.5], style_size=side), photo)
    assert style_distance(vgg, out_a, a) < style_distance(vgg, mixed, a) < style_distance(vgg, out_b, a)


def test_strength_zero_returns_the_photo_and_full_strength_does_not(trained: Path, photo_dir: Path) -> None:
    model = read_arbitrary(trained)
    photo = images.load_image(sorted(photo_dir.iterdir())[0])
    painting = synthetic_painting(2)
    none = stylize(arbitrary.bind(model, [painting], strength=0.0), photo)
    half = stylize(arbitrary.bind(model, [painting], strength=0.5), photo)
    full = stylize(arbitrary.bind(model, [painting], strength=1.0), photo)
    torch.testing.assert_close(none, photo, atol=1e-6, rtol=0)
    assert float((full - photo).abs().mean()) > 0.05
    assert 0 < float((half - photo).abs().mean()) < float((full - photo).abs().mean())


def test_paintings_are_read_at_their_long_side_and_the_size_sets_the_code(trained: Path, monkeypatch) -> None:
    from impasto.config import PAINTING_SIDE

    model = read_arbitrary(trained)
    painting = images.resize_to(synthetic_painting(2), 48, 72)
    read: list[tuple[int, int]] = []
    statistics = arbitrary.painting_statistics
    monkeypatch.setattr(arbitrary, "painting_statistics",
                        lambda vgg, p: read.append(tuple(p.shape[-2:])) or statistics(vgg, p))
    default = arbitrary.style_code(model, [painting])
    small = arbitrary.style_code(model, [painting], style_size=TINY.style_crop_size)
    assert read == [(round(PAINTING_SIDE * 2 / 3), PAINTING_SIDE), (21, 32)]
    # The statistics of strokes twice as fine give another code, which the network paints.
    assert float((default - small).abs().max()) > 1e-3
    same = arbitrary.style_code(model, [painting], style_size=PAINTING_SIDE)
    torch.testing.assert_close(same, default)


def test_model_file_round_trip_and_wrong_kinds(tmp_path: Path) -> None:
    net = ArbitraryNet(Architecture(4, 1, 3), style_size=64)
    torch.nn.init.normal_(net.predictor.head.weight, std=0.01)
    path = tmp_path / "a.pt"
    save_arbitrary(net, path, {"iterations": 3})
    model = read_arbitrary(path)
    assert model.network.style_size == 64 and model.training == {"iterations": 3}
    for name, tensor in net.state_dict().items():
        torch.testing.assert_close(model.network.state_dict()[name], tensor)
    with pytest.raises(WeightsError, match="model file not found"):
        read_arbitrary(tmp_path / "missing.pt")
    from impasto.fast.model import save_model
    from impasto.fast.network import TransformNet

    save_model(TransformNet(Architecture(4, 1)), tmp_path / "one.pt", "one", {})
    with pytest.raises(WeightsError, match=r"one\.pt: a one-style network, not an arbitrary-style model"):
        read_arbitrary(tmp_path / "one.pt")


class _Payload:
    """Unpickling this would run a shell command: a weights-only load must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_model_file_cannot_run_code_when_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": arbitrary.FORMAT, "version": 1, "payload": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match=r"evil\.pt: cannot read model file"):
        read_arbitrary(path)
    assert not arbitrary.is_arbitrary_file(path)
    assert not marker.exists()


def test_the_predictor_reads_statistics_standardised_by_the_training_paintings(
        trained: Path, painting_dir: Path, tmp_path: Path) -> None:
    from impasto.fast.arbitrary.style_code import SCALE_FLOOR
    from impasto.fast.arbitrary.train import painting_crop

    predictor = read_arbitrary(trained).network.predictor
    training = Paintings(painting_dir, TINY.painting_holdout_percent).training
    vgg = arbitrary.statistics_vgg()
    statistics = torch.cat([arbitrary.painting_statistics(vgg, painting_crop(f, TINY.style_crop_size, None))
                            for f in training])
    standardised = (statistics - predictor.mean) / predictor.scale
    # Zero mean over the training paintings; unit deviation wherever the floor did not bind.
    # (0.15: the training's VGG path rounds otherwise, and a 0.1 floor magnifies it tenfold)
    assert standardised.mean(dim=0).abs().max() < 0.15
    varied = predictor.scale > SCALE_FLOOR
    assert varied.any()
    torch.testing.assert_close(standardised[:, varied].std(dim=0), torch.ones(int(varied.sum())), atol=0.15, rtol=0)
    # A format-1 file (a predictor without it, whose units could die whole) is one line.
    record = torch.load(trained, weights_only=True)
    torch.save({**record, "version": 1}, tmp_path / "old.pt")
    with pytest.raises(WeightsError, match=r"old\.pt: an arbitrary-style model of format 1.*train it again"):
        read_arbitrary(tmp_path / "old.pt")


def test_held_out_split_is_by_name_and_never_trained_on(photo_dir: Path, painting_dir: Path) -> None:
    paintings = Paintings(painting_dir, TINY.painting_holdout_percent)
    expected = sorted(p.name for p in painting_dir.iterdir() if held_out_painting(p.name, 25.0))
    assert [p.name for p in paintings.held_out] == expected and expected
    photos = Photos(photo_dir, TINY.holdout_percent)
    drawn = {f for i in range(40) for f in make_batch(photos, paintings, TINY, i).painting_files}
    assert drawn and not drawn & set(paintings.held_out)
    assert len(drawn) == len(paintings.training)  # every training painting comes up


@needs_corpus
def test_at_least_100_corpus_paintings_are_held_out() -> None:
    paintings = Paintings(PAINTINGS)
    assert len(paintings.held_out) >= 100
    assert len(paintings.training) + len(paintings.held_out) == len(list(PAINTINGS.glob("*.jpg")))


def test_batches_are_the_same_for_the_same_iteration(photo_dir: Path, painting_dir: Path) -> None:
    photos, paintings = Photos(photo_dir, 25.0), Paintings(painting_dir, 25.0)
    first, again = make_batch(photos, paintings, TINY, 5), make_batch(photos, paintings, TINY, 5)
    assert torch.equal(first.photos, again.photos) and torch.equal(first.paintings, again.paintings)
    assert first.painting_files == again.painting_files


def test_resume_continues_batch_for_batch(tmp_path: Path, photo_dir: Path, painting_dir: Path) -> None:
    short = dataclasses.replace(TINY, iterations=2, checkpoint_every=1, validate_every=0)
    train_arbitrary(photo_dir, painting_dir, tmp_path / "a.pt", short)
    resumed = train_arbitrary(photo_dir, painting_dir, tmp_path / "a.pt", dataclasses.replace(short, iterations=4),
                              resume=True)
    straight = train_arbitrary(photo_dir, painting_dir, tmp_path / "b.pt", dataclasses.replace(short, iterations=4))
    assert resumed.iterations == 4
    for name, tensor in straight.model.network.state_dict().items():
        assert torch.equal(resumed.model.network.state_dict()[name], tensor), name


def test_cancel_writes_the_checkpoint_and_the_model(tmp_path: Path, photo_dir: Path, painting_dir: Path) -> None:
    from impasto.events import CancelToken

    token = CancelToken()
    config = dataclasses.replace(TINY, iterations=5, validate_every=0)

    def stop_after_two(event) -> None:
        if event.step == 2:
            token.cancel()

    result = train_arbitrary(photo_dir, painting_dir, tmp_path / "m.pt", config, on_event=stop_after_two,
                             cancel=token)
    assert not result.complete and result.iterations == 2
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "m.pt.ckpt").is_file()


def test_bad_training_inputs(tmp_path: Path, photo_dir: Path, painting_dir: Path) -> None:
    with pytest.raises(InputError, match="painting folder not found"):
        train_arbitrary(photo_dir, tmp_path / "none", tmp_path / "m.pt", TINY)
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        train_arbitrary(photo_dir, painting_dir, tmp_path / "m.pt", TINY, resume=True)
    with pytest.raises(InputError, match="--batch-size"):
        ArbitraryConfig(batch_size=0)
    with pytest.raises(InputError, match="no painting is held out"):
        train_arbitrary(photo_dir, painting_dir, tmp_path / "m.pt",
                        dataclasses.replace(TINY, painting_holdout_percent=0.0))


def test_statistics_are_per_image() -> None:
    features = {n: torch.rand(2, c, 5, 5) for n, c in (("relu1_1", 64), ("relu2_1", 128), ("relu3_1", 256),
                                                        ("relu4_1", 512))}
    stats = feature_statistics(features)
    assert stats.shape == (2, statistics_size())
    single = feature_statistics({n: f[1:] for n, f in features.items()})
    torch.testing.assert_close(stats[1:], single)


def test_bound_network_runs_like_a_per_style_network() -> None:
    net = ConditionalNet(Architecture(4, 1, 3))
    bound = BoundNet(net, net.identity())
    x = torch.rand(3, 17, 22)
    assert bound(x).shape == x.shape
    torch.testing.assert_close(bound(x[None])[0], net(x[None], net.identity())[0])


def test_init_from_a_multistyle_model_starts_from_its_convolutions_and_mean_style(
        tmp_path: Path, photo_dir: Path, painting_dir: Path) -> None:
    from impasto.config import train_config
    from impasto.fast.multistyle.model import read_multistyle
    from impasto.fast.multistyle.train import train_multistyle

    base = tmp_path / "multi.pt"
    multi = train_config("gatys", width=8, blocks=1, kernel=3, iterations=3, batch_size=2, crop_size=32,
                         style_size=32, learning_rate=0.1, holdout_percent=25.0, previews=0, checkpoint_every=0,
                         precision="fp32")
    train_multistyle([painting_dir / "painting_0.png", painting_dir / "painting_1.png"], photo_dir, base, multi)
    model = read_multistyle(base)
    net = ArbitraryNet(model.network.arch, TINY.style_crop_size)
    initialise_from(net, model)
    for name, tensor in model.network.transformer.state_dict().items():
        assert torch.equal(net.transformer.state_dict()[name], tensor), name
    # Before any training every painting gets the two styles' mean vector (the gains through a sigmoid).
    vector = net.predictor.gammabeta(net.predictor.code(torch.randn(3, statistics_size())))
    assert torch.allclose(vector, model.network.table().mean(dim=0).expand(3, -1), atol=1e-5)
    # The run records where it started; a resumed run keeps that without being told again.
    like = dataclasses.replace(TINY, width=8)  # a multi-style network has at least 32 channels in its blocks
    once = dataclasses.replace(like, iterations=1, validate_every=0, checkpoint_every=1)
    train_arbitrary(photo_dir, painting_dir, tmp_path / "c.pt", once, init_from=base)
    resumed = train_arbitrary(photo_dir, painting_dir, tmp_path / "c.pt", dataclasses.replace(once, iterations=2),
                              resume=True)
    assert resumed.iterations == 2 and resumed.model.training["initialised_from"]["model"] == "multi.pt"
    # Every painting starts at the mean style; a few steps give the held-out paintings their own.
    spread = train_arbitrary(photo_dir, painting_dir, tmp_path / "s.pt",
                             dataclasses.replace(like, iterations=8, validate_every=8, checkpoint_every=0),
                             init_from=base).validation
    assert spread[0]["code_spread"] < 1e-6 < spread[-1]["code_spread"]
    # A resumed run ignores --init-from: it does not claim a start the checkpoint did not have.
    train_arbitrary(photo_dir, painting_dir, tmp_path / "d.pt", once)
    other = train_arbitrary(photo_dir, painting_dir, tmp_path / "d.pt", dataclasses.replace(once, iterations=2),
                            resume=True, init_from=base)
    assert other.model.training["initialised_from"] is None
    wider = dataclasses.replace(like, width=12)
    with pytest.raises(InputError, match=r"--init-from: .* network, not"):
        train_arbitrary(photo_dir, painting_dir, tmp_path / "b.pt", wider, init_from=base)


def test_init_from_an_arbitrary_model_continues_its_training_without_the_checkpoint(
        tmp_path: Path, photo_dir: Path, painting_dir: Path) -> None:
    short = dataclasses.replace(TINY, iterations=2, validate_every=1, checkpoint_every=0)
    first = train_arbitrary(photo_dir, painting_dir, tmp_path / "a.pt", short)
    longer = dataclasses.replace(short, iterations=3)
    more = train_arbitrary(photo_dir, painting_dir, tmp_path / "b.pt", longer, init_from=tmp_path / "a.pt")
    # It goes on from the model's iteration and seconds, its held-out curve extended by one row.
    assert more.iterations == 3 and more.seconds > first.model.training["seconds"]
    assert [row["iteration"] for row in more.validation] == [0, 1, 2, 3]
    assert more.validation[:3] == first.validation
    assert more.model.training["initialised_from"] == {"model": "a.pt", "iterations": 2, "initialised_from": None}
    # Its first step starts from the model's weights: one step from them is what the run wrote.
    before = first.model.network.state_dict()
    after = more.model.network.state_dict()
    assert all(after[n].shape == t.shape for n, t in before.items())
    assert any(not torch.equal(after[n], t) for n, t in before.items())
    with pytest.raises(InputError, match=r"--painting-holdout-percent: .*a\.pt was trained with 25\.0"):
        train_arbitrary(photo_dir, painting_dir, tmp_path / "c.pt",
                        dataclasses.replace(longer, painting_holdout_percent=30.0), init_from=tmp_path / "a.pt")
    with pytest.raises(InputError, match=r"a\.pt: a network .*, not .*--width"):
        train_arbitrary(photo_dir, painting_dir, tmp_path / "c.pt", dataclasses.replace(longer, width=8),
                        init_from=tmp_path / "a.pt")
