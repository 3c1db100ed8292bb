"""The batched training losses appended to impasto.losses for the fast networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto.losses import (
    Targets,
    Weights,
    batch_content_loss,
    batch_lattice_energy,
    batch_style_loss,
    batch_total_variation,
    gram,
    gram_batch,
    lattice_pattern,
    mean_lattice_energy,
    mean_total_variation,
    objective,
    outlier_inflation,
    perceptual_objective,
    relative_content_loss,
    relative_style_loss,
)


def test_gram_batch_is_the_per_image_gram_normalised() -> None:
    f = torch.rand(3, 8, 5, 7)
    g = gram_batch(f)
    assert g.shape == (3, 8, 8) and g.dtype == torch.float32
    for i in range(3):
        assert torch.allclose(g[i], gram(f[i]) / (8 * 5 * 7), atol=1e-6)
    assert gram_batch(f.bfloat16()).dtype == torch.float32


def test_relative_losses_are_zero_at_the_target_and_scale_free() -> None:
    f, target = torch.rand(2, 4, 6, 6), torch.rand(1, 4, 6, 6)
    target_gram = gram_batch(target)[0]
    assert relative_style_loss(target.expand(2, -1, -1, -1), target_gram) < 1e-10
    assert relative_content_loss(f, f) == 0
    # Scaling features by k scales Grams by k^2 and squared errors by k^2 or k^4 alike.
    assert torch.isclose(relative_style_loss(10 * f, gram_batch(10 * target)[0]),
                         relative_style_loss(f, target_gram), rtol=1e-4)
    p = torch.rand(2, 4, 6, 6)
    assert torch.isclose(relative_content_loss(10 * f, 10 * p), relative_content_loss(f, p), rtol=1e-5)


def test_style_loss_averages_over_the_batch() -> None:
    a, b, target = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6), gram_batch(torch.rand(1, 4, 6, 6))[0]
    pair = relative_style_loss(torch.cat([a, b]), target)
    assert torch.isclose(pair, (relative_style_loss(a, target) + relative_style_loss(b, target)) / 2)


def test_mean_total_variation() -> None:
    assert mean_total_variation(torch.full((2, 3, 8, 8), 0.3)) == 0
    stripes = torch.zeros(1, 3, 4, 4)
    stripes[..., :, 1::2] = 1.0  # every horizontal neighbour differs by 1, vertical ones by 0
    assert torch.isclose(mean_total_variation(stripes), torch.tensor(1.0))


def test_objective_weights_and_leaves_inputs_alone() -> None:
    features = {"relu1_1": torch.rand(2, 4, 6, 6), "relu2_2": torch.rand(2, 4, 6, 6)}
    content = {"relu2_2": torch.rand(2, 4, 6, 6)}
    grams = {"relu1_1": gram_batch(torch.rand(1, 4, 6, 6))[0]}
    outputs = torch.rand(2, 3, 8, 8)
    copies = [t.clone() for t in (*features.values(), *content.values(), *grams.values(), outputs)]
    weights = Weights(2.0, 3.0, 4.0, {"relu2_2": 1.0}, {"relu1_1": 1.0})
    terms = perceptual_objective(features, outputs, content, grams, weights)
    assert torch.isclose(terms.content, 2 * relative_content_loss(features["relu2_2"], content["relu2_2"]))
    assert torch.isclose(terms.style, 3 * relative_style_loss(features["relu1_1"], grams["relu1_1"]))
    assert torch.isclose(terms.tv, 4 * mean_total_variation(outputs))
    assert torch.isclose(terms.total, terms.content + terms.style + terms.tv)
    after = [*features.values(), *content.values(), *grams.values(), outputs]
    assert all(torch.equal(a, b) for a, b in zip(copies, after, strict=True))


def test_gatys_batch_losses_by_hand() -> None:
    # Two 1-channel 1x2 maps: F = [[1, 2]] and [[0, 1]]; the target A/(NM) = [[2]] (N = 1, M = 2).
    f = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 1.0]]]])
    # G/(NM) = (1 + 4)/2 = 2.5 and (0 + 1)/2 = 0.5: E = ¼ (0.5² + 1.5²) averaged = (0.0625 + 0.5625) / 2.
    assert torch.isclose(batch_style_loss(f, torch.tensor([[2.0]])), torch.tensor(0.3125))
    # ½ Σ (F - P)² with P = 0: (½ · 5 + ½ · 1) / 2 images.
    assert torch.isclose(batch_content_loss(f, torch.zeros_like(f)), torch.tensor(1.5))
    assert torch.isclose(batch_total_variation(torch.zeros(2, 3, 4, 4)), torch.tensor(0.0))


def test_gatys_normalisation_is_the_paper_objective_per_image() -> None:
    # For one image whose painting has its size, the training objective is impasto.transfer's.
    torch.manual_seed(0)
    features = {"relu1_1": torch.rand(1, 4, 6, 6), "relu4_2": torch.rand(1, 8, 3, 3)}
    content = {"relu4_2": torch.rand(1, 8, 3, 3)}
    style = torch.rand(1, 4, 6, 6)
    image = torch.rand(1, 3, 12, 12)
    weights = Weights(1.0, 1e3, 2.0, {"relu4_2": 1.0}, {"relu1_1": 1.0})
    paper = objective(features, image, Targets(content, [{"relu1_1": gram(style)}], [1.0]), weights)
    train = perceptual_objective(features, image, content, {"relu1_1": gram_batch(style)[0]}, weights, "gatys")
    for a, b in zip(paper.as_floats().values(), train.as_floats().values(), strict=True):
        assert a == pytest.approx(b, rel=1e-5)


def test_lattice_pattern_is_the_part_repeating_at_the_period() -> None:
    torch.manual_seed(0)
    tile = torch.rand(1, 3, 4, 4)
    pattern = tile - tile.mean(dim=(2, 3), keepdim=True)
    image = 0.3 + 0.1 * pattern.repeat(1, 1, 8, 8)
    assert torch.allclose(lattice_pattern(image, 4), 0.1 * pattern, atol=1e-6)
    # A smooth ramp's phase means differ by its slope per pixel alone (0.5 / 31 at most 1.5 phases away).
    ramp = torch.linspace(0, 0.5, 32).reshape(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    assert lattice_pattern(ramp, 4).abs().max() <= 0.5 / 31 * 1.5 + 1e-6
    # Energies by hand: 64 tiles of the pattern, squared and summed (batch average); the mean per value.
    expected = (0.1 * pattern).pow(2).sum() * 64
    assert torch.allclose(batch_lattice_energy(image.repeat(2, 1, 1, 1), 4), expected, rtol=1e-5)
    assert torch.allclose(mean_lattice_energy(image, 4), (0.1 * pattern).pow(2).mean(), rtol=1e-5)
    assert float(mean_lattice_energy(torch.full((1, 3, 16, 16), 0.5), 4)) == 0.0


def _one_layer_batch() -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Two random 16 px outputs, their relu1_1 features (used as the content too) and a Gram target."""
    torch.manual_seed(0)
    outputs = torch.rand(2, 3, 16, 16)
    features = {"relu1_1": torch.rand(2, 4, 16, 16)}
    grams = {"relu1_1": gram_batch(torch.rand(1, 4, 16, 16))[0]}
    return outputs, features, grams


def test_grid_weight_adds_its_term_only_when_positive() -> None:
    outputs, features, grams = _one_layer_batch()
    off = Weights(1.0, 1.0, 0.0, {"relu1_1": 1.0}, {"relu1_1": 1.0})
    on = Weights(1.0, 1.0, 0.0, {"relu1_1": 1.0}, {"relu1_1": 1.0}, grid=10.0)
    plain = perceptual_objective(features, outputs, features, grams, off, "gatys")
    gridded = perceptual_objective(features, outputs, features, grams, on, "gatys", period=4)
    assert "grid" not in plain.terms
    assert torch.allclose(gridded.terms["grid"], 10.0 * batch_lattice_energy(outputs, 4))
    assert torch.allclose(gridded.total - plain.total, gridded.terms["grid"])


def _inflation_by_hand(values: list[float], clip: float, passes: int) -> float:
    """var / var(clipped) - 1 for one channel, the clipping range narrowed as documented."""
    v = np.array(values, dtype=np.float64)
    low, high = -np.inf, np.inf
    for _ in range(passes):
        c = np.clip(v, low, high)
        low, high = c.mean() - clip * c.std(), c.mean() + clip * c.std()
    return float(v.var() / np.clip(v, low, high).var() - 1)


def test_outlier_inflation_against_hand_computation() -> None:
    spike = torch.zeros(2, 3, 8, 8)
    spike[0, :, 5, 2] = 7.0  # one value on one of 64 positions: most of the variance
    spike[1, 0] = torch.arange(64.0).reshape(8, 8) % 2  # a balanced pattern: no outlier at all
    spike[1, 1, 0, 0] = 1.0
    expected = _inflation_by_hand([7.0] + [0.0] * 63, 3.0, 3)
    assert expected > 5  # the clipped spike keeps a small part of the variance
    got = outlier_inflation(spike, 1.5)
    assert got.shape == (2,) and got.dtype == torch.float32
    assert torch.allclose(got[0], torch.tensor(expected - 1.5), rtol=1e-4)
    # Image 1: the pattern scores 0, channel 1 the spike again, channel 2 is constant (0).
    assert torch.allclose(got[1], torch.tensor((expected - 1.5) / 3), rtol=1e-4)
    assert torch.allclose(outlier_inflation(spike, 0.0)[0], torch.tensor(expected), rtol=1e-4)
    # A Gaussian field's few values beyond 3 sigma inflate its variance by about 3 %.
    torch.manual_seed(0)
    gaussian = outlier_inflation(torch.randn(4, 16, 32, 32), 0.0)
    assert float(gaussian.max()) < 0.1
    assert float(outlier_inflation(torch.randn(4, 16, 32, 32), 1.5).max()) == 0.0


def test_descending_the_outlier_inflation_takes_the_scale_from_a_droplet() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 32, 32)
    x[0, :, 4:8, 9:13] += 40.0  # a droplet: 16 of 1,024 positions

    def droplet_share(x: torch.Tensor) -> float:
        squares = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        return float(squares[..., 4:8, 9:13].sum() / squares.sum())

    start_share = droplet_share(x)
    x.requires_grad_(True)
    start = float(outlier_inflation(x.detach(), 0.5))
    optimiser = torch.optim.Adam([x], lr=0.5)
    for _ in range(100):
        optimiser.zero_grad()
        outlier_inflation(x, 0.5).sum().backward()
        optimiser.step()
    assert start > 10 and float(outlier_inflation(x.detach(), 0.5)) == 0.0
    # The droplet held 95 % of the variance a normalisation divides by; now under a third.
    assert start_share > 0.9 and droplet_share(x.detach()) < 0.33


def test_droplet_weight_adds_its_term_only_when_positive() -> None:
    outputs, features, grams = _one_layer_batch()
    off = Weights(1.0, 1.0, 0.0, {"relu1_1": 1.0}, {"relu1_1": 1.0})
    on = Weights(1.0, 1.0, 0.0, {"relu1_1": 1.0}, {"relu1_1": 1.0}, droplet=5.0)
    droplets = torch.tensor([2.0, 6.0])
    plain = perceptual_objective(features, outputs, features, grams, off, "gatys", droplets=droplets)
    weighted = perceptual_objective(features, outputs, features, grams, on, "gatys", droplets=droplets)
    assert "droplet" not in plain.terms
    assert float(weighted.terms["droplet"]) == 20.0
    assert torch.allclose(weighted.total - plain.total, weighted.terms["droplet"])
    with pytest.raises(ValueError, match="droplet"):
        perceptual_objective(features, outputs, features, grams, on, "gatys")
