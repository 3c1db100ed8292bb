"""VGG-19's layer names and channel counts, and the check of a layer name: plain data, so that
``impasto.config`` validates layer options without importing torch (``impasto.vgg`` builds the
network on them)."""

from __future__ import annotations

from collections.abc import Iterable

from impasto.errors import InputError

# (block, convolutions, output channels) of VGG-19's feature extractor.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

CONV_LAYERS: tuple[str, ...] = tuple(
    f"conv{b}_{i}" for b, n, _ in BLOCKS for i in range(1, n + 1)
)
CHANNELS: dict[str, int] = {
    name: c
    for b, n, c in BLOCKS
    for name in (*(f"{kind}{b}_{i}" for i in range(1, n + 1) for kind in ("conv", "relu")), f"pool{b}")
}

LAYERS: tuple[str, ...] = tuple(CHANNELS)


def check_layers(names: Iterable[str]) -> None:
    """Raise InputError naming the first layer name VGG-19 does not have."""
    for name in names:
        if name not in LAYERS:
            raise InputError(
                f"unknown layer {name!r}: choose from conv1_1 ... conv5_4, relu1_1 ... relu5_4, pool1 ... pool5"
            )
