"""The style prediction network: a painting's VGG-19 statistics to a short style code, and the
code to the γ/β of a ``fast.conditional.ConditionalNet``.

Ghiasi et al. (2017, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network", §3) run an Inception-v3 on the painting, average its mixed-7 features over
space and reduce them to a 100-dimensional code S, which a linear layer maps to every γ/β.
Departure: the predictor reads the per-channel mean and standard deviation of VGG-19's relu1_1
... relu4_1 (the statistics AdaIN matches, Huang & Belongie 2017; 2 × 960 numbers), which the
training computes anyway for the Gram targets, so no second pretrained network is needed; a
two-layer perceptron (leaky units) reduces them to the code. VGG-19 runs once per painting,
never per photo.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from impasto.layers import CHANNELS

#: The layers whose statistics describe a painting (also the training's style layers).
STATISTIC_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CODE_SIZE = 100
HIDDEN = 256
# The least deviation a statistic is divided by (log units): one that hardly varies among the
# paintings standardised by a tiny deviation would swamp the code with noise.
SCALE_FLOOR = 0.1


def feature_statistics(features: dict[str, Tensor], layers: tuple[str, ...] = STATISTIC_LAYERS) -> Tensor:
    """Per-channel mean and standard deviation of each layer's features, (B, 2 × channels), in
    float32 and on a logarithmic scale: the unnormalised VGG-19 activations of relu1_1 and
    relu4_1 differ by two orders of magnitude, and log1p brings them to a common range."""
    parts = []
    for name in layers:
        f = features[name].float().flatten(2)
        parts += [f.mean(dim=2), f.std(dim=2, unbiased=False)]
    return torch.log1p(torch.cat(parts, dim=1))


def statistics_size(layers: tuple[str, ...] = STATISTIC_LAYERS) -> int:
    return 2 * sum(CHANNELS[name] for name in layers)


class StylePredictor(nn.Module):
    """Statistics to a style code (Ghiasi et al.'s S, ``code_size`` numbers), and the code to
    the transformer's γ/β vector. The head predicts the change from ``identity`` (the vector
    for which the transformer returns the photo), starting at zero for γ/β."""

    def __init__(self, identity: Tensor, statistics: int | None = None, code_size: int = CODE_SIZE,
                 hidden: int = HIDDEN) -> None:
        super().__init__()
        self.statistics = statistics or statistics_size()
        self.code_size = code_size
        # The statistics are all positive and share a large common part (log1p of means and
        # deviations: about 4.6 on average, the paintings' differences a fraction of it). A ReLU
        # layer on them can die whole: one consistent step moves every unit's input the same way,
        # and a run started from the multi-style network (its head at zero) ended with all 256
        # units at 0, one code for every painting. So the input is standardised per statistic by
        # the training paintings' mean and deviation (``standardise``, kept in the model file),
        # and the units are leaky: they pass their input's changes and recover.
        self.register_buffer("mean", torch.zeros(self.statistics))
        self.register_buffer("scale", torch.ones(self.statistics))
        self.encode = nn.Sequential(nn.Linear(self.statistics, hidden), nn.LeakyReLU(0.2),
                                    nn.Linear(hidden, code_size))
        self.head = nn.Linear(code_size, identity.numel())
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # The output gains (the vector's last 3 numbers, 0 in the identity) are the sigmoid of the
        # head's last outputs: in (0, 1), never stuck at a bound (a clamped gain at 0 passes no
        # gradient, and content loss drove it there within a few steps). They start at 0.88.
        with torch.no_grad():
            self.head.bias[-3:] = 2.0
        self.register_buffer("identity", identity.detach().reshape(-1).clone(), persistent=False)

    def standardise(self, statistics: Tensor) -> None:
        """Set the input's standardisation from paintings' ``feature_statistics`` (B, n), B ≥ 2."""
        with torch.no_grad():
            self.mean.copy_(statistics.mean(dim=0))
            self.scale.copy_(statistics.std(dim=0).clamp_min(SCALE_FLOOR))

    def code(self, statistics: Tensor) -> Tensor:
        """Style codes, (B, code_size), from ``feature_statistics``."""
        return self.encode((statistics - self.mean) / self.scale)

    def gammabeta(self, code: Tensor, strength: float | Tensor = 1.0) -> Tensor:
        """γ/β for style codes, moved from the identity by ``strength`` (0: no style; 1: the
        painting's). Interpolating normalisation parameters rather than pixels keeps the
        network's brushwork at partial strengths (Dumoulin et al. 2017, §4)."""
        delta = self.head(code)
        delta = torch.cat([delta[:, :-3], torch.sigmoid(delta[:, -3:])], dim=1)
        return self.identity + strength * delta
