"""The any-painting network's relative objective in its fixed form for one photo and painting."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import impasto
from impasto import images
from impasto.config import ArbitraryConfig, to_dict
from impasto.fast.arbitrary.objective import RelativeObjective, objective_of, recorded_objective
from impasto.losses import Weights, gram_batch, perceptual_objective
from impasto.vgg import VGG19, VGGWeights

STYLE_LAYERS = {"relu1_1": 0.25, "relu2_1": 0.25, "relu3_1": 0.25, "relu4_1": 0.25}


def relative_by_hand(weights: VGGWeights, objective: RelativeObjective, image: torch.Tensor, photo: torch.Tensor,
                     painting: torch.Tensor) -> dict[str, float]:
    """The training's own loss code (``perceptual_objective``, "relative") on one image."""
    held = images.resize_long_side(painting, objective.style_long_side(painting))
    assert min(held.shape[-2:]) == objective.style_size
    vgg = VGG19(weights, "relu4_1").eval()
    layers = (*objective.content_layers, *objective.style_layers)
    with torch.no_grad():
        grams = {n: gram_batch(f) for n, f in vgg(held, objective.style_layers).items()}
        terms = perceptual_objective(vgg(image, layers), image, vgg(photo, objective.content_layers), grams,
                                     Weights(objective.content_weight, objective.style_weight, objective.tv_weight,
                                             dict(objective.content_layers), dict(objective.style_layers)),
                                     "relative")
    return terms.as_floats()


@pytest.fixture(scope="module")
def pair(content64: torch.Tensor, style64: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = (content64 + 0.2 * torch.randn(content64.shape, generator=generator)).clamp(0, 1)
    return image, content64, style64


def test_the_fixed_form_scores_what_the_training_loss_does(weights, pair) -> None:
    image, photo, painting = pair
    relative = RelativeObjective(1.0, 10.0, {"relu2_2": 1.0}, STYLE_LAYERS, 0.0, 40)
    fixed = relative.for_pair(photo, painting)
    scored = impasto.evaluate(image, photo, painting, fixed.transfer_config(max(photo.shape[-2:]))).as_floats()
    expected = relative_by_hand(weights, relative, image, photo, painting)
    for term in ("content", "style", "total"):
        assert scored[term] == pytest.approx(expected[term], rel=1e-4)
    # A relative objective is of order one: each term is a fraction of its target's energy.
    assert 0.05 < expected["content"] < 5 and 0.05 < expected["style"] < 50


def test_its_tv_term_is_the_mean_to_within_a_row(weights, pair) -> None:
    image, photo, painting = pair
    relative = RelativeObjective(1.0, 10.0, {"relu2_2": 1.0}, STYLE_LAYERS, 100.0, 40)
    scored = impasto.evaluate(image, photo, painting, relative.for_pair(photo, painting).transfer_config(64))
    expected = relative_by_hand(weights, relative, image, photo, painting)
    assert float(scored.tv) == pytest.approx(expected["tv"], rel=2 / min(photo.shape[-2:]))


def test_the_photo_and_the_painting_fix_the_weights(pair) -> None:
    _, photo, painting = pair
    relative = RelativeObjective(1.0, 10.0, {"relu2_2": 1.0}, STYLE_LAYERS, 1.0, 40)
    fixed = relative.for_pair(photo, painting)
    assert relative.for_pair(photo, painting, relative.vgg()) == fixed
    # A brighter photo has more feature energy, so its content term weighs less; the painting's
    # weights do not depend on the photo.
    brighter = relative.for_pair((photo * 1.5).clamp(0, 1), painting)
    assert brighter.content_layers["relu2_2"] < fixed.content_layers["relu2_2"]
    assert brighter.style_layers == fixed.style_layers
    assert fixed.style_size == relative.style_long_side(painting) > relative.style_size
    assert fixed.tv_weight == pytest.approx(1.0 / (3 * photo.shape[-2] * photo.shape[-1]))


def test_recorded_settings_give_the_objective_and_defaults_fill_the_rest() -> None:
    objective = recorded_objective({"style_weight": 5.0, "style_crop_size": 128, "grid_weight": 3e5})
    default = ArbitraryConfig()
    # Trained on paintings at shorter side 128; listed and measured as applied, at long side 512.
    assert objective.style_weight == 5.0 and objective == replace(
        objective_of(replace(default, style_weight=5.0, style_crop_size=128)), style_size=512, style_side="longer")
    assert objective.style_long_side(torch.zeros(1, 3, 300, 200)) == 512
    assert objective_of(default).style_long_side(torch.zeros(1, 3, 300, 200)) == 384
    assert objective.content_weight == default.content_weight and objective.tv_weight == default.tv_weight
    assert objective.as_dict()["normalisation"] == "relative" and "grid_weight" not in objective.as_dict()


def test_a_trainings_weights_are_its_recorded_objectives() -> None:
    config = ArbitraryConfig(content_weight=2.0, style_weight=7.0, tv_weight=3.0, style_crop_size=96, grid_weight=5.0)
    objective = recorded_objective(to_dict(config))
    assert objective == replace(objective_of(config), style_size=objective.style_size, style_side="longer")
    weights = objective.training_weights(config.grid_weight)
    assert (weights.content, weights.style, weights.tv, weights.grid) == (2.0, 7.0, 3.0, 5.0)
    assert weights.content_layers == objective.content_layers and weights.style_layers == objective.style_layers
    assert sum(weights.style_layers.values()) == pytest.approx(1.0)
