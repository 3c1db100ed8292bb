from __future__ import annotations

import pytest
import torch

from impasto import losses


def test_gram_by_hand() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    assert losses.gram(f).tolist() == [[5.0, 11.0], [11.0, 25.0]]


def test_gram_is_layout_independent() -> None:
    f = torch.randn(1, 8, 5, 7)
    assert torch.allclose(losses.gram(f), losses.gram(f.contiguous(memory_format=torch.channels_last)), atol=1e-5)


def test_content_loss_by_hand() -> None:
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    p = torch.tensor([0.0, 2.0, 5.0, 4.0]).reshape(1, 1, 2, 2)
    assert losses.content_layer_loss(f, p).item() == pytest.approx(0.5 * (1 + 0 + 4 + 0))


def test_style_loss_by_hand() -> None:
    # N = 2 feature maps, M = 2 positions.
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    a = torch.tensor([[4.0, 10.0], [10.0, 20.0]])
    # G - A = [[1, 1], [1, 5]] -> Σ = 1 + 1 + 1 + 25 = 28; E = 28 / (4 * 2^2 * 2^2) = 0.4375
    assert losses.style_layer_loss(f, a).item() == pytest.approx(28 / 64)


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).reshape(1, 1, 2, 2)
    # horizontal: (1-0)^2 + (4-2)^2 = 5; vertical: (2-0)^2 + (4-1)^2 = 13
    assert losses.total_variation(x).item() == pytest.approx(18.0)


def test_objective_weights_and_blend() -> None:
    torch.manual_seed(0)
    f = {"a": torch.randn(1, 3, 4, 4), "b": torch.randn(1, 5, 2, 2)}
    p = {"a": torch.randn(1, 3, 4, 4)}
    grams = [{"b": torch.eye(5)}, {"b": 2 * torch.eye(5)}]
    image = torch.rand(1, 3, 4, 4)
    targets = losses.Targets(p, grams, (0.25, 0.75))
    weights = losses.Weights(2.0, 10.0, 0.5, {"a": 1.0}, {"b": 0.2})
    terms = losses.objective(f, image, targets, weights)
    content = 2.0 * losses.content_layer_loss(f["a"], p["a"])
    style = 10.0 * 0.2 * (
        0.25 * losses.style_layer_loss(f["b"], grams[0]["b"]) + 0.75 * losses.style_layer_loss(f["b"], grams[1]["b"])
    )
    tv = 0.5 * losses.total_variation(image)
    assert terms.content.item() == pytest.approx(content.item(), rel=1e-6)
    assert terms.style.item() == pytest.approx(style.item(), rel=1e-6)
    assert terms.tv.item() == pytest.approx(tv.item(), rel=1e-6)
    assert terms.total.item() == pytest.approx((content + style + tv).item(), rel=1e-6)


def test_gradients_match_finite_differences() -> None:
    torch.manual_seed(0)
    f = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    p = torch.randn(1, 3, 3, 4, dtype=torch.float64)
    a = losses.gram(torch.randn(1, 3, 3, 4, dtype=torch.float64)).double()

    def style(x: torch.Tensor) -> torch.Tensor:
        n, m = x.shape[1], x.shape[2] * x.shape[3]
        g = x.reshape(n, m) @ x.reshape(n, m).T
        return ((g - a) ** 2).sum() / (4 * n * n * m * m)

    assert torch.autograd.gradcheck(lambda x: losses.content_layer_loss(x, p).double(), (f,))
    assert torch.autograd.gradcheck(losses.total_variation, (f,))
    # The library's style loss (float32 Gram) against the float64 reference's analytic gradient.
    x = f.detach().float().requires_grad_()
    losses.style_layer_loss(x, a.float()).backward()
    reference = torch.autograd.grad(style(f), f)[0]
    assert torch.allclose(x.grad.double(), reference, rtol=1e-3, atol=1e-6)
    assert torch.autograd.gradcheck(style, (f,))


def test_losses_do_not_modify_inputs() -> None:
    f = torch.randn(1, 4, 3, 3)
    p = torch.randn(1, 4, 3, 3)
    f0, p0 = f.clone(), p.clone()
    losses.content_layer_loss(f, p)
    losses.style_layer_loss(f, losses.gram(p))
    losses.total_variation(f)
    assert torch.equal(f, f0) and torch.equal(p, p0)
