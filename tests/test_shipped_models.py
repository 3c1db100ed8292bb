"""The fast styles that ship inside the package: present, small, loadable, and painting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto import colour, images
from impasto.cli import main
from impasto.fast import model as fast_model
from impasto.fast.network import VARIANTS
from impasto.fast.stylize import stylize

PAPER_PAINTINGS = ("starry_night", "the_scream", "shipwreck", "composition_vii", "seated_nude")
MAX_BYTES = 8 * 1024 * 1024


def test_the_five_paintings_ship() -> None:
    assert set(PAPER_PAINTINGS) <= set(fast_model.available_styles())


@pytest.mark.parametrize("name", PAPER_PAINTINGS)
def test_shipped_model_is_small_and_paints(name: str, content64: torch.Tensor, style64: torch.Tensor) -> None:
    folder = fast_model._models_folder()
    assert (folder / f"{name}.pt").stat().st_size <= MAX_BYTES
    model = fast_model.load_model(name)
    assert model.style == name and model.architecture == VARIANTS["lite"]
    assert model.training["iterations"] >= 100 and model.training["settings"]["variant"] == "lite"
    out = stylize(model, content64)
    assert out.shape == content64.shape
    # The output is no longer the photo: its colours moved (mean YIQ chroma distance).
    assert (colour.rgb_to_yiq(out) - colour.rgb_to_yiq(content64)).abs().mean() > 0.02


def test_starry_night_moves_colours_toward_the_painting(content64: torch.Tensor, style64: torch.Tensor) -> None:
    # Mean colour of the output is nearer the painting's than the photo's mean colour is.
    out = stylize(fast_model.load_model("starry_night"), content64)
    target = _mean_colour(style64)
    assert (_mean_colour(out) - target).norm() < (_mean_colour(content64) - target).norm()


def _mean_colour(image: torch.Tensor) -> torch.Tensor:
    return image.mean(dim=(0, 2, 3))


def test_apply_with_a_shipped_style(tmp_path: Path, tubingen_path: Path, capsys) -> None:
    out = tmp_path / "out.jpg"
    assert main(["apply", "--style", "starry_night", str(tubingen_path), "-o", str(out), "--size", "96"]) == 0
    assert images.load_image(out).shape[-2:] == (72, 96)
    assert main(["styles"]) == 0
    assert "starry_night" in capsys.readouterr().out
