"""A multi-style network as one ONNX graph holding all its styles, run on onnxruntime without torch.

``impasto export MODEL.pt --all-styles -o styles.onnx`` writes the conditional transformer as a
graph with two inputs, the images and one style vector each (γ, β and the three output gains, as
``fast.multistyle``'s table holds them), and writes every style's name and vector into the
graph's metadata. A style, a mix or a strength is then the same arithmetic on those vectors as
``fast.multistyle.model.style_vector`` (a weighted mean, moved from the identity), and nothing
but onnxruntime, numpy and Pillow runs: ``impasto apply`` with a shipped style starts in a
fraction of the time that importing torch takes. Each shipped multi-style model ships such a
graph beside its ``.pt`` file, with the file's SHA-256 in the metadata: a graph whose model file
has been replaced since is not used (the network then runs on torch).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from impasto import storage, style_spec
from impasto.config import images_per_call
from impasto.errors import InputError
from impasto.style_spec import GRAPH_SUFFIX, Mix

# The graph's inputs and output (``fast.backends.export_conditional_onnx`` names them).
IMAGE, VECTOR, OUTPUT = "image", "gammabeta", "stylised"
# Metadata: the styles' names and vectors, and the model file the graph was exported from.
STYLES_KEY = "impasto.styles"
SOURCE_KEY = "impasto.source_sha256"

# Images (B, 3, H, W) float32 RGB in [0, 1] to the stylised images alike.
Painter = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StylesGraph:
    """A styles graph loaded for onnxruntime: its session and its styles' vectors (K, code)."""

    label: str
    session: Any
    names: tuple[str, ...]
    table: np.ndarray
    source_sha256: str | None

    def vector(self, mix: Sequence[tuple[str, float]], strength: float = 1.0) -> np.ndarray:
        """The weighted mean of the named styles' vectors, moved from the identity (γ = 1, β = 0,
        gains 0: the photo itself) by ``strength``; shape (1, code)."""
        missing = [name for name, _ in mix if name not in self.names]
        if missing:
            raise InputError(f"--style: {self.label} has no style {missing[0]!r} (it has {', '.join(self.names)})",
                             field="style", problem=f"unknown style {missing[0]!r}")
        mean = sum((weight * self.table[self.names.index(name)] for name, weight in mix),
                   np.zeros(self.table.shape[1], dtype=np.float64))
        identity = identity_vector(self.table.shape[1])
        return (identity + strength * (mean - identity)).astype(np.float32)[None]

    def mix_of(self, mix: Mix | None) -> Mix:
        """``mix``, or the graph's only style when none is named."""
        if mix is not None:
            return mix
        if len(self.names) == 1:
            return ((self.names[0], 1.0),)
        raise InputError(f"{self.label}: holds {len(self.names)} styles ({', '.join(self.names)}); choose one with "
                         "--style NAME or mix them with --style NAME:WEIGHT,NAME:WEIGHT", field="style",
                         problem=f"choose one of {', '.join(self.names)}")

    def painter(self, mix: Sequence[tuple[str, float]], strength: float = 1.0) -> Painter:
        """The network with ``mix`` at ``strength``: a batch in, the stylised batch out, run an
        image or a few at a time (``config.images_per_call``, as ``fast.stylize`` does)."""
        vector = self.vector(mix, strength)

        def paint(images: np.ndarray) -> np.ndarray:
            per_call = images_per_call(*images.shape[-2:])
            return np.concatenate([
                self.session.run([OUTPUT], {IMAGE: np.ascontiguousarray(images[i:i + per_call], dtype=np.float32),
                                            VECTOR: vector})[0]
                for i in range(0, len(images), per_call)])

        return paint


def identity_vector(code_size: int) -> np.ndarray:
    """γ = 1, β = 0 and gains 0 for a code of ``code_size`` (2 × channels + 3), float64."""
    half = (code_size - 3) // 2
    return np.concatenate([np.ones(half), np.zeros(half + 3)])


def metadata(names: Sequence[str], table: np.ndarray, source_sha256: str | None) -> dict[str, str]:
    """The metadata entries a styles graph carries (written by ``fast.backends``)."""
    entries = {STYLES_KEY: json.dumps({"names": list(names), "vectors": np.asarray(table, np.float64).tolist()})}
    if source_sha256 is not None:
        entries[SOURCE_KEY] = source_sha256
    return entries


def read_graph(path: str | os.PathLike[str], label: str | None = None) -> StylesGraph:
    """A styles graph from its file; kept while the file is unchanged (a batch's worker reads it
    once). A file that is not one is an InputError line."""
    path = Path(path)
    try:
        identity = _identity(path)
    except OSError:
        raise InputError(f"{label or os.fsdecode(path)}: styles graph not found") from None
    return _read(path, label or os.fsdecode(path), *identity)


@lru_cache(maxsize=4)
def _read(path: Path, label: str, *identity: int) -> StylesGraph:
    import onnxruntime  # here: only the runs that use a graph pay for it

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        styles = json.loads(session.get_modelmeta().custom_metadata_map[STYLES_KEY])
        names, table = tuple(styles["names"]), np.asarray(styles["vectors"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{label}: not a styles graph of impasto ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # onnxruntime's own errors for files that are no graph at all
        raise InputError(f"{label}: cannot load the ONNX graph ({str(exc).splitlines()[0][:160]})") from None
    if table.ndim != 2 or len(names) != len(table) or not names:
        raise InputError(f"{label}: its styles' names and vectors do not match")
    return StylesGraph(label, session, names, table, session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY))


def shipped_graph(names: set[str]) -> StylesGraph | None:
    """The shipped styles graph holding all of ``names`` (None: none does, or onnxruntime is
    not installed; then the network runs on torch)."""
    folder = style_spec.models_folder() / "multistyle"
    if importlib.util.find_spec("onnxruntime") is None or not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(GRAPH_SUFFIX):
            with importlib.resources.as_file(entry) as path:
                graph = read_graph(path, label=f"shipped graph {entry.name!r}")
                model = path.with_suffix(style_spec.MODEL_SUFFIX)
                current = not model.is_file() or _sha256(model, *_identity(model)) == graph.source_sha256
            if current and names <= set(graph.names):
                return graph
    return None


def _identity(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_ino, found.st_size, found.st_mtime_ns


@lru_cache(maxsize=8)
def _sha256(path: Path, *identity: int) -> str:
    """A file's SHA-256, kept while its size, time and inode are the same."""
    return storage.sha256_of(path)
