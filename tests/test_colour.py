from __future__ import annotations

import torch

from impasto import colour


def test_yiq_round_trip() -> None:
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(colour.yiq_to_rgb(colour.rgb_to_yiq(x)), x, atol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.3)
    yiq = colour.rgb_to_yiq(grey)
    assert torch.allclose(yiq[:, 0], torch.full((1, 2, 2), 0.3), atol=1e-6)
    assert yiq[:, 1:].abs().max() < 1e-6


def test_histogram_matching_takes_the_contents_mean_and_covariance(content64, style64) -> None:
    matched = colour.match_histogram(style64, content64)
    c = content64.flatten(2).squeeze(0).double()
    m = matched.flatten(2).squeeze(0).double()
    assert torch.allclose(m.mean(1), c.mean(1), atol=0.01)
    assert torch.allclose(torch.cov(m), torch.cov(c), atol=0.003)
    assert matched.shape == style64.shape


def test_luminance_matching_and_recombination(content64, style64) -> None:
    cy, sy = colour.luminance(content64), colour.luminance(style64)
    matched = colour.match_luminance(sy, cy)
    assert abs(matched.mean() - cy.mean()) < 1e-5 and abs(matched.std() - cy.std()) < 1e-5
    combined = colour.combine_luminance(sy, content64)
    # The result keeps the content's chroma (I, Q) and takes the given luminance.
    got = colour.rgb_to_yiq(combined)
    want_iq = colour.rgb_to_yiq(content64)[:, 1:]
    inside = (combined > 0.01).all(1) & (combined < 0.99).all(1)  # clipping aside
    assert (got[:, 1:] - want_iq).abs().amax(1)[inside].max() < 1e-4
    assert (got[:, :1] - sy).abs()[:, 0][inside].max() < 1e-4
