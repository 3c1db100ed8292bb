"""Feed-forward style networks: trained once, then stylising a photo in one pass. Three families,
a folder each:

* ``single``: one network per painting (Johnson, Alahi & Fei-Fei, ECCV 2016), trained by
  ``single.train.train(style_image, data_dir, output, TrainConfig(...))``;
* ``multistyle``: one network, many named styles (Dumoulin et al. 2017): ``model`` (the
  style-vector table, model files, mixes, strength), ``train`` (joint
  training and ``--add-style``);
* ``arbitrary``: any painting (Ghiasi et al. 2017): ``style_code`` (the style predictor),
  ``model`` (model files, the held-out paintings, ``bind``), ``train``.

What they share: ``network`` (the image transformation network and its named variants),
``conditional`` (that network with conditional instance normalisation, for the last two
families), ``model`` (one-style model files), ``styles`` (from a style spec to a network, and
the shipped models' folder), ``training`` (the photos, the one
batch source, the one training loop and checkpoint format); and to apply any of them,
``backends`` (PyTorch, onnxruntime and OpenCV dnn, and ONNX export), ``graph`` (a multi-style
network's ONNX graph with all its styles, run without torch), ``stylize`` (a batch of images
through a network), ``apply`` (files, folders and videos) and ``frames`` (a video's frames).

>>> from impasto.fast import resolve, stylize
>>> model = resolve("starry_night")             # a shipped style, a mix of them, or a model file's path
>>> out = stylize(model, photo, preserve_color=True)
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded when first used: ``impasto.fast.graph`` runs a network without torch, and importing it
# must not import the torch modules of its siblings.
_LAZY = {
    "FastModel": "impasto.fast.model", "read_model": "impasto.fast.model", "save_model": "impasto.fast.model",
    "VARIANTS": "impasto.fast.network", "Architecture": "impasto.fast.network",
    "TransformNet": "impasto.fast.network", "build": "impasto.fast.network",
    "installed_styles": "impasto.fast.styles", "load_style": "impasto.fast.styles", "resolve": "impasto.fast.styles",
    "stylize": "impasto.fast.stylize",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'impasto.fast' has no attribute {name!r}")


__all__ = sorted(_LAZY)
