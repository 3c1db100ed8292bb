"""Shared fixtures: the paper's photo and painting at test size, read in place from ../shared."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

from impasto import images
from impasto.vgg import VGGWeights, load_weights

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(scope="session")
def tubingen_path() -> Path:
    return SHARED / "content" / "tubingen.jpg"


@pytest.fixture(scope="session")
def starry_path() -> Path:
    return SHARED / "style" / "starry_night.jpg"


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
