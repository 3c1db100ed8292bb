"""Typed configs: JSON round trips, one-line errors, devices and the runtime policy."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import time

import pytest
import torch

from impasto import runtime
from impasto.config import ApplyConfig, ArbitraryConfig, TrainConfig, TransferConfig, from_dict, to_dict
from impasto.errors import InputError


@pytest.mark.parametrize("config", [
    TransferConfig(size=96, style_layer_weights=(0.5,) * 5, style_blend=(1.0, 2.0), seed=4, device="cuda:1"),
    TrainConfig(width=8, blocks=1, style_layers=("relu1_1",)),
    ArbitraryConfig(width=4, kernel=3, painting_holdout_percent=12.5, validate_every=0, device="cuda"),
    ApplyConfig("starry_night", backend="onnxruntime", size=256),
])
def test_configs_round_trip_through_json(config) -> None:
    data = json.loads(json.dumps(to_dict(config)))
    assert from_dict(type(config), data) == config


def test_from_dict_takes_a_subset_and_names_bad_fields() -> None:
    assert from_dict(TransferConfig, {"size": 64}) == TransferConfig(size=64)
    with pytest.raises(InputError, match="unknown setting 'colour'"):
        from_dict(TransferConfig, {"colour": 1})
    with pytest.raises(InputError, match=r"config\.style_weight: expected a number"):
        from_dict(TransferConfig, {"style_weight": "heavy"})
    with pytest.raises(InputError, match=r"config\.content_layers: expected a list"):
        from_dict(TransferConfig, {"content_layers": "relu4_2"})
    with pytest.raises(InputError, match="--iterations"):
        from_dict(TransferConfig, {"iterations": 0})


def test_devices_are_checked_by_name() -> None:
    for good in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert TransferConfig(device=good).device == good
    for bad in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(InputError, match="--device"):
            TransferConfig(device=bad)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="--device cuda:1: no CUDA device"):
            runtime.resolve_runtime("cuda:1", "auto")


def test_the_runtime_policy() -> None:
    cpu = runtime.resolve_runtime("cpu", "auto")
    assert cpu.dtype == (torch.bfloat16 if runtime.cpu_prefers_bf16() else torch.float32)
    assert runtime.resolve_runtime("cpu", "fp32").precision == "fp32"
    with pytest.raises(InputError, match="only on CUDA"):
        runtime.resolve_runtime("cpu", "fp16")
    image = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    prepared = cpu.prepare(image)
    assert prepared.dtype == torch.float32 and prepared.is_contiguous(memory_format=torch.channels_last)


def test_an_avx2_only_cpu_gets_float32(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not runtime.cpu_has_native_bf16()
    assert runtime.resolve_runtime("cpu", "auto").dtype == torch.float32


def test_native_bf16_is_chosen_only_where_measured_faster(monkeypatch) -> None:
    # Flags alone do not tell: one AVX512-BF16 CPU ran bf16 1.8x faster, another 1.6x slower.
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(runtime, "_probe_speedup", lambda: 0.6)
    assert runtime.resolve_runtime("cpu", "auto").dtype == torch.float32
    assert runtime.resolve_runtime("cpu", "bf16").dtype == torch.bfloat16
    monkeypatch.setattr(runtime, "_probe_speedup", lambda: 1.8)
    assert runtime.resolve_runtime("cpu", "auto").dtype == torch.bfloat16
    assert "used" in runtime.describe_cpu()


def test_the_bf16_probe_measures_a_ratio() -> None:
    # As an AVX2-only CPU (bf16 emulated) the ratio was 0.03; on bf16 CPUs 0.6 and 1.8.
    ratio = runtime._probe_speedup()
    assert math.isfinite(ratio) and ratio > 0


def test_a_probe_race_times_each_candidate_in_its_own_format() -> None:
    class Slow(torch.nn.Module):
        """The same convolution, plus a fixed 20 ms."""

        def __init__(self, conv: torch.nn.Module) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            time.sleep(0.02)
            return self.conv(x)

    conv = torch.nn.Conv2d(8, 8, 3, padding=1).requires_grad_(False)
    fast, slow = runtime._race([(conv, torch.float32), (Slow(conv), torch.float32)], 8, (16, 16), 2)
    assert 0 < fast < slow and slow >= 0.02
    # Each candidate gets its input in its own dtype (a bf16 layer is not fed float32).
    half = torch.nn.Conv2d(8, 8, 3, padding=1).requires_grad_(False).to(torch.bfloat16)
    assert all(t > 0 for t in runtime._race([(conv, torch.float32), (half, torch.bfloat16)], 8, (16, 16), 1))


def test_apply_config_errors() -> None:
    for kwargs, phrase in [({"size": 8}, "--size"), ({"batch_size": 0}, "--batch-size"),
                           ({"backend": "tpu"}, "--backend")]:
        with pytest.raises(InputError, match=phrase):
            dataclasses.replace(ApplyConfig("x"), **kwargs)


@pytest.mark.parametrize(("change", "message"), [
    ({"kernel": 4}, "--kernel: must be odd, got 4"),
    ({"blocks": -1}, "--blocks"),
    ({"painting_holdout_percent": 100.0}, r"--painting-holdout-percent: must lie in \[0, 100\)"),
    ({"validation_paintings": 0}, "--validation-paintings"),
    ({"validate_every": -1}, "--validate-every"),
    # the settings shared with TrainConfig, checked by the same code
    ({"batch_size": 0}, "--batch-size"),
    ({"learning_rate": float("nan")}, "--learning-rate"),
    ({"holdout_percent": -1.0}, "--holdout-percent"),
    ({"content_weight": 0.0, "style_weight": 0.0}, "both zero"),
    ({"precision": "fp16"}, "--precision"),
    ({"device": "gpu"}, "--device"),
])
def test_arbitrary_config_errors_name_the_option(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ArbitraryConfig(**change)


def test_an_input_error_names_the_setting_it_is_about() -> None:
    with pytest.raises(InputError) as caught:
        TransferConfig(style_weight=-1.0)
    assert caught.value.field == "style_weight"
    assert caught.value.problem == "must be a non-negative number, got -1.0"
    assert str(caught.value) == "--style-weight: must be a non-negative number, got -1.0"
    with pytest.raises(InputError) as caught:
        ApplyConfig("starry_night", strength=2.0)
    assert caught.value.field == "strength"
    # Errors cross process boundaries (the studio's worker) with their field.
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.field, again.problem, str(again)) == (caught.value.field, caught.value.problem, str(caught.value))


def test_a_probe_race_runs_inside_no_grad() -> None:
    # The first image scored may be inside torch.no_grad(); the race still needs its gradients.
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).requires_grad_(False)
    with torch.no_grad():
        assert all(t > 0 for t in runtime._race([(conv, torch.float32)], 8, (16, 16), 1))
