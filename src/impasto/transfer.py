"""The optimisation of Gatys, Ecker & Bethge (CVPR 2016): the pixels of an image are adjusted
until its VGG-19 features match the photograph's content and the paintings' Gram matrices.

Speed comes from doing no more work than the paper needs: the network stops at the deepest
layer in use, targets are computed once per scale without autograd, the network runs in
bfloat16 and channels-last on CPUs with native bf16 support (losses stay in float32), and a
coarse-to-fine schedule does most iterations at a quarter of the pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from impasto import colour, images
from impasto.config import TransferConfig
from impasto.errors import ImpastoError, InputError
from impasto.events import Callback, Iteration
from impasto.losses import LossTerms, Targets, Weights, gram, objective
from impasto.vgg import IMAGENET_MEAN_RGB, VGG19, VGGWeights, deepest, load_weights

NOISE_STD = 1.0 / 255.0

ImageSource = str | Path | Image.Image | np.ndarray | Tensor


@dataclass
class Result:
    """The stylised image (RGB in [0, 1], shape (1, 3, H, W)) and how it was reached."""

    tensor: Tensor
    history: list[dict[str, Any]]
    config: TransferConfig
    seconds: float
    device: str
    precision: str

    @property
    def image(self) -> Image.Image:
        return images.to_pil(self.tensor)

    @property
    def loss(self) -> float:
        """The total loss of the returned image: the lowest evaluation at the final scale (the
        last one is not always the lowest; coarser scales' losses do not compare)."""
        final = self.history[-1]["scale"]
        return min(row["total"] for row in self.history if row["scale"] == final)


class TransferInterrupted(ImpastoError):
    """Raised on KeyboardInterrupt; ``result`` holds the best image reached so far."""

    def __init__(self, result: Result) -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass(frozen=True)
class Runtime:
    """Where and in which number format the network runs."""

    device: torch.device
    dtype: torch.dtype

    @property
    def precision(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def prepare(self, image: Tensor) -> Tensor:
        """The network's input: float32 (``VGG19.reduced`` says why) on the device, channels-last
        (faster oneDNN and cuDNN kernels)."""
        return image.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)


def resolve_runtime(device: str, precision: str) -> Runtime:
    """Pick the device and the network's number format; fails clearly on an absent device."""
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and dev.type == "cpu":
        raise InputError("--precision fp16: only on CUDA; use bf16 or fp32 on the CPU")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Runtime(dev, dtype)


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512-BF16 or AMX): there bf16 convolutions
    run 2-5x faster than float32; elsewhere they are emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def transfer(
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: TransferConfig | None = None,
    on_iteration: Callback | None = None,
) -> Result:
    """Repaint ``content`` in the style of ``styles`` (Gatys et al. 2016).

    Sources may be paths, PIL images, arrays or RGB tensors in [0, 1]. ``on_iteration`` is
    called after every iteration with an :class:`~impasto.events.Iteration`. Raises InputError for unusable inputs and
    TransferInterrupted (carrying the best image so far) on KeyboardInterrupt.
    """
    config = config or TransferConfig()
    start = time.perf_counter()
    content_image = _load(content, config)
    style_list = _as_list(styles)
    if not style_list:
        raise InputError("at least one style image is needed")
    style_images = [_load(s, config) for s in style_list]
    blend = config.blend(len(style_images))
    runtime = resolve_runtime(config.device, config.precision)
    weights = load_weights(config.weights, config.weights_format)
    if config.preserve_color == "histogram":
        style_images = [colour.match_histogram(s, content_image) for s in style_images]
    generator = torch.Generator().manual_seed(config.seed if config.seed is not None else int(time.time_ns() % 2**63))
    run = _Run(config, runtime, weights, content_image, style_images, blend, on_iteration, start)
    try:
        for level, size in enumerate(config.scale_sizes()):
            run.scale(level, size, generator)
    except KeyboardInterrupt:
        raise TransferInterrupted(run.result()) from None
    return run.result()


def _as_list(styles: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    """One style source or several, as a list (a tensor or array is one image, not a sequence)."""
    return list(styles) if isinstance(styles, (list, tuple)) else [styles]


def _load(source: ImageSource, config: TransferConfig) -> Tensor:
    if isinstance(source, Tensor):
        if source.dim() != 4 or source.shape[:2] != (1, 3):
            raise InputError(f"tensor: expected shape (1, 3, H, W), got {tuple(source.shape)}")
        return source.detach().float().cpu().clamp(0, 1)
    return images.load_image(source, max_pixels=config.max_pixels)


class _Run:
    """State carried across the scales of one transfer: the current image, the best one, history."""

    def __init__(
        self,
        config: TransferConfig,
        runtime: Runtime,
        weights: VGGWeights,
        content: Tensor,
        styles: list[Tensor],
        blend: tuple[float, ...],
        on_iteration: Callback | None,
        start: float,
    ) -> None:
        self.config = config
        self.layers = (*config.content_layers, *config.style_layers)
        self.runtime = runtime
        net = VGG19(weights, deepest(self.layers), config.pooling)
        self.net = net.reduced(runtime.device, runtime.dtype)
        self.content = content
        self.styles = styles
        self.blend = blend
        self.on_iteration = on_iteration
        self.start = start
        content_w, style_w = config.layer_weights()
        self.weights = Weights(config.content_weight, config.style_weight, config.tv_weight, content_w, style_w)
        self.luminance = config.preserve_color == "luminance"
        self.best: Tensor | None = None
        self.best_loss = math.inf
        self.history: list[dict[str, Any]] = []
        self.total = config.total_iterations

    def to_network(self, x: Tensor) -> Tensor:
        """The optimised variable as an RGB image (luminance-only transfer optimises Y alone)."""
        return x.expand(-1, 3, -1, -1) if self.luminance else x

    def colour_space(self, rgb: Tensor) -> Tensor:
        return colour.luminance(rgb) if self.luminance else rgb

    def targets(self, size: int) -> tuple[Targets, tuple[int, int]]:
        """Content features and style Grams at one scale, computed once without autograd."""
        content = images.resize_long_side(self.content, size)
        style_long = round(self.config.style_size * size / self.config.size) if self.config.style_size else None
        with torch.no_grad():
            c = self.colour_space(content)
            content_features = self.net(self.runtime.prepare(self.to_network(c)), self.config.content_layers)
            grams = []
            for style in self.styles:
                long_side = style_long or max(32, round(self.config.style_scale * size))
                s = self.colour_space(images.resize_long_side(style, long_side))
                if self.luminance:
                    s = colour.match_luminance(s, c)
                features = self.net(self.runtime.prepare(self.to_network(s)), self.config.style_layers)
                grams.append({name: gram(f) for name, f in features.items()})
        return Targets(content_features, grams, self.blend), (content.shape[-2], content.shape[-1])

    def initial(self, level: int, hw: tuple[int, int], generator: torch.Generator) -> Tensor:
        """The starting image of a scale: the previous scale's result upsampled, or the init."""
        if level > 0 and self.best is not None:
            return images.resize_to(self.best.float().cpu().clamp(0, 1), *hw)
        if self.config.init == "noise":
            # White noise of about one grey level around the mean colour the network was trained
            # on, as neural-style does: high-amplitude noise sits where the quartic style loss is
            # so steep that L-BFGS's first curvature estimate throws the image out of range.
            channels = 1 if self.luminance else 3
            mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
            mean = self.colour_space(mean) if self.luminance else mean
            return mean + NOISE_STD * torch.randn((1, channels, *hw), generator=generator)
        source = self.content if self.config.init == "content" else self.styles[0]
        return self.colour_space(images.resize_to(source, *hw))

    def scale(self, level: int, size: int, generator: torch.Generator) -> None:
        targets, hw = self.targets(size)
        # A copy: the initial image may be the content or style tensor itself.
        x = self.initial(level, hw, generator).to(self.runtime.device, copy=True).requires_grad_(True)
        self.best, self.best_loss = x.detach().clone(), math.inf
        optimizer = self._optimizer(x)
        last: dict[str, Any] = {"evaluations": 0}

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            image = self.to_network(x)
            features = self.net(self.runtime.prepare(image), self.layers)
            terms = objective(features, image, targets, self.weights)
            terms.total.backward()
            # L-BFGS falls back to a plain gradient step whenever its curvature pair is rejected
            # (the loss is locally concave near a flat start); with the paper's unnormalised loss
            # that step moves pixels by ~1e9. Scaling the objective, fixed per scale, so that the
            # first gradient is at most 1 per pixel keeps that step within the image's range and
            # changes nothing else: L-BFGS's other steps are invariant to the scale.
            if "factor" not in last:
                last["factor"] = 1.0 / max(float(x.grad.abs().max()), 1e-30)
            x.grad.mul_(last["factor"])
            last.update(losses=terms.as_floats(), x=x.detach().clone(), evaluations=last["evaluations"] + 1)
            if last["losses"]["total"] < self.best_loss:
                self.best_loss, self.best = last["losses"]["total"], last["x"]
            return terms.total.detach() * last["factor"]

        for _ in range(self.config.iterations_at(level)):
            optimizer.step(closure)
            self._emit(last, level, hw)
            if not math.isfinite(last["losses"]["total"]):
                # Should a step still overshoot, resume from the best image with fresh memory.
                with torch.no_grad():
                    x.copy_(self.best)
                optimizer = self._optimizer(x)

    def _optimizer(self, x: Tensor) -> torch.optim.Optimizer:
        if self.config.optimizer == "adam":
            return torch.optim.Adam([x], lr=self.config.lr)
        # One iteration per step() call (state persists between calls), so every evaluation is
        # reported and an interrupt loses nothing; without a line search each iteration costs
        # exactly one evaluation, as in the paper and neural-style.
        return torch.optim.LBFGS(
            [x], lr=self.config.lr, max_iter=1, history_size=self.config.lbfgs_history,
            tolerance_grad=-1.0, tolerance_change=-1.0,
        )

    def _emit(self, last: dict[str, Any], level: int, hw: tuple[int, int]) -> None:
        event = Iteration(
            iteration=len(self.history) + 1,
            total_iterations=self.total,
            scale=level,
            scales=len(self.config.scale_sizes()),
            height=hw[0],
            width=hw[1],
            seconds=time.perf_counter() - self.start,
            evaluations=last["evaluations"],
            losses=last["losses"],
            image=partial(self.render, last["x"]),
        )
        self.history.append(event.record())
        if self.on_iteration is not None:
            self.on_iteration(event)

    def render(self, x: Tensor) -> Tensor:
        """The optimised variable as the RGB image a user sees, in [0, 1] on the CPU."""
        x = x.detach().float().cpu()
        if self.luminance:
            return colour.combine_luminance(x, images.resize_to(self.content, *x.shape[-2:]))
        return x.clamp(0, 1)

    def result(self) -> Result:
        best = self.best if self.best is not None else torch.zeros(1, 3, 32, 32)
        return Result(
            tensor=self.render(best),
            history=self.history,
            config=self.config,
            seconds=time.perf_counter() - self.start,
            device=str(self.runtime.device),
            precision=self.runtime.precision,
        )


def evaluate(
    image: ImageSource,
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: TransferConfig | None = None,
) -> LossTerms:
    """The paper's objective of ``image`` for ``content`` and ``styles``, in float32.

    The one yardstick used to compare results across precisions, optimisers and tools: the
    content image is resized to the image's size and the styles as ``transfer`` would.
    """
    config = config or TransferConfig()
    fp32 = replace(config, precision="fp32", preserve_color="none", scales=1)
    img = _load(image, fp32)
    fp32 = replace(fp32, size=max(img.shape[-2:]))
    content_image = images.resize_to(_load(content, fp32), *img.shape[-2:])
    style_list = _as_list(styles)
    runtime = resolve_runtime(fp32.device, "fp32")
    weights = load_weights(fp32.weights, fp32.weights_format)
    run = _Run(fp32, runtime, weights, content_image, [_load(s, fp32) for s in style_list],
               fp32.blend(len(style_list)), None, time.perf_counter())
    targets, _ = run.targets(fp32.size)
    with torch.no_grad():
        x = runtime.prepare(img)
        return objective(run.net(x, run.layers), x, targets, run.weights)
