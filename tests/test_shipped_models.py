"""The fast styles that ship inside the package: the paper's five paintings in one multi-style
network, present, small, loadable, painting toward each painting, and mixing between them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import impasto
from conftest import SHARED
from impasto import images
from impasto.cli import main
from impasto.fast.multistyle import Objective, installed_styles, resolve, shipped_multistyle
from impasto.fast.stylize import stylize

PAPER_PAINTINGS = ("starry_night", "the_scream", "shipwreck", "composition_vii", "seated_nude")
MAX_BYTES = 8 * 1024 * 1024
SIZE = 128


@pytest.fixture(scope="module")
def photo(tubingen_path: Path) -> torch.Tensor:
    return images.resize_long_side(images.load_image(tubingen_path), SIZE)


def _style_distance(image: torch.Tensor, photo: torch.Tensor, name: str) -> float:
    """The style term of the style's recorded objective: how far ``image``'s Gram statistics
    are from the painting's."""
    (entry,) = [e for m in shipped_multistyle() for e in m.styles if e.name == name]
    config = Objective.from_dict(entry.objective, name).transfer_config(SIZE)
    return float(impasto.evaluate(image, photo, SHARED / "style" / f"{name}.jpg", config).style)


def test_the_five_paintings_ship_in_one_small_multistyle_model() -> None:
    (model,) = [m for m in shipped_multistyle() if set(PAPER_PAINTINGS) <= set(m.names)]
    assert set(PAPER_PAINTINGS) <= set(installed_styles())
    folder = Path(str(impasto.__file__)).parent / "models" / "multistyle"
    assert all(p.stat().st_size <= MAX_BYTES for p in folder.glob("*.pt"))
    # Johnson's layout: at least 32 channels in the residual blocks at 1/4 resolution.
    assert model.network.arch.width * 4 >= 32
    for entry in model.styles:
        assert entry.training["iterations"] >= 3000
        assert entry.objective["content_layers"] and entry.objective["style_layers"]


@pytest.mark.parametrize("name", PAPER_PAINTINGS)
def test_each_shipped_style_paints_toward_its_painting(name: str, photo: torch.Tensor) -> None:
    # At 128 px the five measured 0.12-0.49 of the photo's own distance; not smaller: trained on
    # 256 px crops, the network paints less at sizes far below them (up to 0.63 at 96 px).
    out = stylize(resolve(name), photo)
    assert out.shape == photo.shape
    assert _style_distance(out, photo, name) < 0.6 * _style_distance(photo, photo, name)


def test_a_mix_of_shipped_styles_lies_between_them(photo: torch.Tensor) -> None:
    starry, scream = (stylize(resolve(n), photo) for n in ("starry_night", "the_scream"))
    mixed = stylize(resolve("starry_night:0.5,the_scream:0.5"), photo)
    assert _style_distance(mixed, photo, "starry_night") < _style_distance(scream, photo, "starry_night")
    assert _style_distance(mixed, photo, "the_scream") < _style_distance(starry, photo, "the_scream")


def test_strength_zero_returns_the_photo(photo: torch.Tensor) -> None:
    out = stylize(resolve("shipwreck", strength=0.0), photo)
    assert (out - photo).abs().max() < 1e-4


def test_apply_with_a_shipped_style(tmp_path: Path, tubingen_path: Path, capsys) -> None:
    out = tmp_path / "out.jpg"
    assert main(["apply", "--style", "starry_night", str(tubingen_path), "-o", str(out), "--size", "96"]) == 0
    assert images.load_image(out).shape[-2:] == (72, 96)
    assert main(["styles"]) == 0
    assert "starry_night" in capsys.readouterr().out
