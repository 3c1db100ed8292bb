"""Where networks run and in which number format: one policy for every path (transfer, training,
evaluation, the fast back-ends).

* device "auto" is the first CUDA device when there is one, else the CPU; "cuda:N" names one.
* precision "auto" is bfloat16 on CUDA devices that support it (else float16); on a CPU it is
  bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX, with PyTorch's AVX-512 kernels
  in use) *and* a probe convolution measures it clearly faster than float32, else float32. The
  flags alone do not tell: bf16 convolutions ran 1.8x faster than float32 on an AMD EPYC with
  AVX512-BF16 but 1.6x slower on an Intel Xeon (Emerald Rapids, AMX hidden by its VM) whose
  flags say the same; on AVX2-only CPUs bf16 is emulated and always slower.
* VGG-19's input stage (preprocessing and conv1_1) always stays float32: ``VGG19.reduced`` says why.
* convolution "auto" computes VGG-19's deep convolutions by Winograd's F(4×4, 3×3) on a CPU in
  float32 (``impasto.winograd``), from the depth where a probe measures it faster than oneDNN's
  direct convolution: from conv3_1 with AVX2 kernels (256 channels: 1.9-2.4x; 512: 3.6-4.2x) and
  with AVX-512 ones, twice as fast (1.2-1.25x; 1.8-2.2x); a CPU whose direct kernels are faster
  still starts at conv4_1 or nowhere (the probe asks for 1.15x). Elsewhere
  "direct": CUDA's libraries choose their own algorithms, and in bfloat16 the transforms'
  coefficients would cost accuracy. ``impasto.evaluate`` always uses "direct", so that it scores
  every run by the same arithmetic.
"""

from __future__ import annotations

import copy
import functools
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import winograd
from impasto.config import check_device
from impasto.errors import InputError
from impasto.vgg import VGG19

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """A device and the number format networks run in there."""

    device: torch.device
    dtype: torch.dtype
    # Convolutions with at least this many outputs run in Winograd's form; None: none do.
    winograd_channels: int | None = None

    @property
    def precision(self) -> str:
        return next(name for name, dtype in DTYPES.items() if dtype == self.dtype)

    def prepare(self, image: Tensor) -> Tensor:
        """A VGG input: float32 (the input stage's format) on the device, channels-last (faster
        oneDNN and cuDNN kernels)."""
        return image.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)

    @property
    def convolution(self) -> str:
        return f"winograd from {self.winograd_channels} channels" if self.winograd_channels else "direct"

    def vgg(self, network: VGG19) -> VGG19:
        """``network`` on this device, in this format but for its float32 input stage, its deep
        convolutions in Winograd's form where this runtime says so."""
        network = network.reduced(self.device, self.dtype)
        if self.winograd_channels is not None:
            winograd.replace_deep_convolutions(network.layers, self.winograd_channels)
        return network

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed precision for a trained network's forward pass (not for VGG-19, whose
        layers carry their own formats)."""
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def resolve_runtime(device: str, precision: str, convolution: str = "auto") -> Runtime:
    """The device, number format and convolution algorithm for the given settings; fails
    clearly on an absent device or a combination that cannot run."""
    check_device(device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA device is available")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA devices")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else device.replace("auto", "cpu"))
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_prefers_bf16() else "fp32"
    if precision not in DTYPES:
        raise InputError(f"--precision: {precision!r} is not one of auto, {', '.join(DTYPES)}")
    if precision == "fp16" and dev.type == "cpu":
        raise InputError("--precision fp16: only on CUDA; use bf16 or fp32 on the CPU")
    if convolution not in ("auto", "direct", "winograd"):
        raise InputError(f"--convolution: {convolution!r} is not one of auto, direct, winograd")
    fp32_cpu = dev.type == "cpu" and precision == "fp32"
    if convolution == "winograd" and not fp32_cpu:
        raise InputError(f"--convolution winograd: only on the CPU in float32, not {dev.type} in {precision}")
    channels = {"direct": None, "winograd": winograd.MIN_CHANNELS,
                "auto": winograd_min_channels() if fp32_cpu else None}[convolution]
    return Runtime(dev, DTYPES[precision], channels)


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512-BF16 or AMX) and PyTorch uses its
    AVX-512 kernels: there bf16 convolutions run 2-5x faster than float32; elsewhere they are
    emulated and slower. ``ATEN_CPU_CAPABILITY=avx2`` (with ``ONEDNN_MAX_CPU_ISA=AVX2`` for the
    convolutions) makes such a CPU behave as an AVX2-only one, which is how CI checks the float32
    path on a bf16 machine."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or capability.startswith("AMX")):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


# bf16 must beat float32 by this factor on the probe: the measured gaps are 1.6-1.8x either
# way, so a margin keeps timing noise from flipping the choice between runs.
BF16_MARGIN = 1.25


def cpu_prefers_bf16() -> bool:
    """True where the CPU computes bfloat16 natively and a probe convolution runs it at least
    ``BF16_MARGIN`` times faster than float32 (measured once per process, about 0.2 s)."""
    return cpu_has_native_bf16() and _probe_speedup() >= BF16_MARGIN


@functools.cache
def _probe_speedup() -> float:
    """float32 time over bfloat16 time of a VGG-like step: a 3x3 convolution of 128 channels at
    64 x 64, forward and input gradient, channels-last, best of three after a warm-up."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).requires_grad_(False).to(memory_format=torch.channels_last)
    # Module.to converts in place, so the bfloat16 candidate is a copy of its own.
    half = copy.deepcopy(conv).to(torch.bfloat16)
    fp32, bf16 = _race([(conv, torch.float32), (half, torch.bfloat16)], 128, (64, 64), 3)
    return fp32 / bf16


# Winograd's form must beat the direct convolution by this factor on its probe: its gains are
# 1.5x or more where they exist, and a margin keeps timing noise from flipping the choice.
WINOGRAD_MARGIN = 1.15
# VGG-19's layers the probe stands for, at their size for a 512 x 384 image: conv3_2, conv4_2.
_WINOGRAD_PROBES = ((256, (96, 128)), (512, (48, 64)))


@functools.cache
def winograd_min_channels() -> int | None:
    """The fewest output channels from which Winograd's form runs at least ``WINOGRAD_MARGIN``
    times faster than the direct convolution on this CPU in float32 (256 or 512), or None;
    measured once per process (0.5-1.5 s). The gain depends on how fast the direct kernels are
    (AVX2 or AVX-512), while the transforms' memory traffic costs the same."""
    for channels, size in _WINOGRAD_PROBES:
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1).requires_grad_(False)
        fast_layer = winograd.WinogradConv2d(conv)
        direct, fast = _race([(conv.to(memory_format=torch.channels_last), torch.float32),
                              (fast_layer, torch.float32)], channels, size, 2)
        if direct >= WINOGRAD_MARGIN * fast:
            return channels
    return None


# Gradients on: the first caller may be scoring an image inside ``torch.no_grad()``.
@torch.enable_grad()
def _race(layers: list[tuple[torch.nn.Module, torch.dtype]], channels: int, size: tuple[int, int],
          runs: int) -> list[float]:
    """Best time of ``runs`` forward + input-gradient passes of each layer (in its dtype), after
    a warm-up. The layers take turns, so that a neighbour's load, which comes and goes, weighs
    on every candidate alike rather than deciding the race."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, *size, generator=generator).contiguous(memory_format=torch.channels_last)
    inputs = [x.to(dtype).requires_grad_(True) for _, dtype in layers]
    best = [float("inf")] * len(layers)
    for run in range(runs + 1):
        for index, ((layer, _), value) in enumerate(zip(layers, inputs, strict=True)):
            start = time.perf_counter()
            layer(value).sum().backward()
            if run:
                best[index] = min(best[index], time.perf_counter() - start)
    return best


def describe_cpu() -> str:
    """The CPU as benchmarks print it: PyTorch's kernel level, native bf16 or not (and whether
    the runtime chooses it there), and cores."""
    import os

    if not cpu_has_native_bf16():
        bf16 = "no native bf16"
    else:
        bf16 = f"native bf16 ({'used' if cpu_prefers_bf16() else 'slower than fp32 here, not used'})"
    return f"{torch.backends.cpu.get_cpu_capability()}, {bf16}, {os.cpu_count()} cores, torch {torch.__version__}"
