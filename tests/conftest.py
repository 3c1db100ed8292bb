"""Shared fixtures: the paper's photo and painting at test size, from the package's examples, and
small training photos cut from that photo, so the suite needs nothing beside the repository.
Tests that need a training corpus from ../shared skip, saying so, where it is absent."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch

from impasto import examples, images
from impasto.config import train_config
from impasto.fast.multistyle.model import MultiStyleModel, MultiStyleNet, StyleEntry, objective_of
from impasto.fast.network import Architecture
from impasto.vgg import VGGWeights, load_weights

#: The example images, laid out as an ``--images`` folder (content/, style/; no reference/).
EXAMPLES = examples.ROOT
#: The training corpora, beside the repository on the project's machines only.
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Picasso's painting of Fig. 3, which the repository does not ship (protected in the EU).
SEATED_NUDE = CORPORA.parent / "images" / "style" / "seated_nude.jpg"
needs_corpus = pytest.mark.skipif(not (CORPORA / "photos").is_dir() or not (CORPORA / "paintings").is_dir(),
                                  reason="needs the training corpora in ../shared/data (not part of the repository)")

#: The objective a tiny multi-style model records (``tiny_model``).
OBJECTIVE = objective_of(train_config("gatys", crop_size=32, style_size=32)).as_dict()

# Windows of the example photo (left, top, right, bottom as fractions) that make different
# training photos: sky and roofs, the river bank, the towers, the water, the whole.
_WINDOWS = ((0.0, 0.0, 0.5, 0.6), (0.5, 0.3, 1.0, 0.9), (0.2, 0.1, 0.7, 0.7),
            (0.0, 0.4, 0.6, 1.0), (0.4, 0.0, 1.0, 0.5), (0.0, 0.0, 1.0, 1.0))


def training_photos(folder: Path, count: int, side: int) -> list[Path]:
    """``count`` (≤ 12) small photos for tiny trainings, ``photo_0.jpg`` …, cut from the example
    photo (each window, then each window mirrored) at ``side`` px on the long side."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = images.load_image(examples.PHOTO)
    height, width = photo.shape[-2:]
    paths = []
    for i in range(count):
        left, top, right, bottom = _WINDOWS[i % len(_WINDOWS)]
        crop = photo[..., int(top * height):int(bottom * height), int(left * width):int(right * width)]
        if i >= len(_WINDOWS):
            crop = crop.flip(-1)
        paths.append(folder / f"photo_{i}.jpg")
        images.save_image(images.resize_long_side(crop, side), paths[-1])
    return paths


@pytest.fixture(scope="session")
def tubingen_path() -> Path:
    return examples.PHOTO


@pytest.fixture(scope="session")
def starry_path() -> Path:
    return examples.painting("starry_night")


@pytest.fixture(scope="session")
def content64(tubingen_path: Path) -> torch.Tensor:
    return images.resize_long_side(images.load_image(tubingen_path), 64)


@pytest.fixture(scope="session")
def style64(starry_path: Path) -> torch.Tensor:
    return images.resize_long_side(images.load_image(starry_path), 64)


@pytest.fixture(scope="session")
def weights() -> VGGWeights:
    return load_weights()


@pytest.fixture
def small_pair(tmp_path: Path, content64: torch.Tensor, style64: torch.Tensor) -> tuple[Path, Path]:
    """The photo and the painting as small PNG files, so CLI runs decode quickly."""
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    images.save_image(content64, content)
    images.save_image(style64, style)
    return content, style


class HtmlLinks(HTMLParser):
    """Collects every href and src of an HTML page, to check that each one exists."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [unquote(v) for k, v in attrs if k in ("href", "src") and v]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One PyTorch thread for the test: tiny training batches gain nothing from more, and on a
    busy machine oversubscribed threads make them several times slower. Modules of tiny
    trainings take it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: How long a test on a loopback Ray cluster may take before ``deadline`` fails it.
RAY_TEST_SECONDS = 150


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail a Ray test that hangs, rather than the whole run (SIGALRM, in the main thread)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the Ray test took more than {RAY_TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(RAY_TEST_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def clip_with_tone(path: Path, frames: list[torch.Tensor], fps: int, seconds: float) -> Path:
    """A video of ``frames`` (each (1, 3, H, W)) at ``fps`` with a 440 Hz sine sound track of
    ``seconds``, written with PyAV (skips without it)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.height, video.width = frames[0].shape[-2:]
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        for frame in frames:
            rgb = frame[0].mul(255).round().byte().permute(1, 2, 0).numpy()
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        out.mux(video.encode(None))
        samples = int(44100 * seconds)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 44100, start, Fraction(1, 44100)
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    return path


def tiny_model() -> MultiStyleModel:
    """A multi-style model of two styles whose vectors differ (random γ/β around the start), its
    convolutions untrained."""
    torch.manual_seed(4)
    net = MultiStyleNet(Architecture(8, 1, 3), 2)
    with torch.no_grad():
        for row in net.styles:
            row[:-3].add_(0.3 * torch.randn(row.numel() - 3))
    styles = [StyleEntry(n, OBJECTIVE, {"iterations": 3, "validation": 1.5}) for n in ("starry", "scream")]
    return MultiStyleModel(net.eval(), styles, {"iterations": 3})
