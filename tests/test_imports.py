"""The architecture holds: nothing outside the CLI imports it, and the imports form no circles
(every import statement counts, lazy ones inside functions included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import impasto

ROOT = Path(impasto.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from impasto import images`` names a module; ``from impasto import __version__`` the package.
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_only_the_cli_imports_the_cli() -> None:
    graph = _graph()
    offenders = {m: sorted(t for t in targets if t.startswith("impasto.cli")) for m, targets in graph.items()
                 if not m.startswith("impasto.cli") and m != "impasto.__main__"}
    assert not {m: t for m, t in offenders.items() if t}


def test_video_never_imports_the_fast_path() -> None:
    # One way only: the fast path applies its networks over frames with the video package's
    # reading, writing and flow (``fast.frames``); the video package knows no fast network.
    graph = _graph()
    offenders = {m: sorted(t for t in targets if t == "impasto.fast" or t.startswith("impasto.fast."))
                 for m, targets in graph.items() if m == "impasto.video" or m.startswith("impasto.video.")}
    assert not {m: t for m, t in offenders.items() if t}


def test_the_imports_form_no_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, " -> ".join(cycle)


def test_the_layout_has_a_home_for_each_responsibility() -> None:
    graph = _graph()
    for module in ("impasto.config", "impasto.runtime", "impasto.storage", "impasto.events", "impasto.images",
                   "impasto.jobs", "impasto.losses.paper", "impasto.gatys.schedule", "impasto.gatys.loop",
                   "impasto.gatys.api", "impasto.fast.apply", "impasto.video.io", "impasto.research.report",
                   # the fast networks' three families, a folder each, and the training they share
                   "impasto.fast.single.train", "impasto.fast.multistyle.train", "impasto.fast.arbitrary.train",
                   "impasto.fast.training.loop", "impasto.fast.training.data"):
        assert module in graph
    # events has no I/O: it imports neither the file system helpers nor Pillow.
    events_source = (ROOT / "events.py").read_text()
    assert "storage" not in graph["impasto.events"] and "open(" not in events_source and "PIL" not in events_source


def test_the_configs_import_without_torch() -> None:
    # A fresh interpreter: this one has imported torch long since.
    code = "import impasto.config, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
