"""Feed-forward style networks (Johnson, Alahi & Fei-Fei, ECCV 2016): one network per painting,
trained once, then stylising a photo in one pass.

* ``network``: the image transformation network and its named variants;
* ``model``: model files and the shipped styles;
* ``backends``: PyTorch, onnxruntime and OpenCV dnn back-ends, and ONNX export;
* ``data``: the training photos; ``train``: ``train(style_image, data_dir, output, TrainConfig(...))``;
* ``stylize``: a batch of images through a network; ``apply``: files, folders and videos;
* any painting (Ghiasi et al. 2017): ``conditional`` (the transformer with conditional instance
  normalisation), ``style_code`` (the style predictor), ``arbitrary`` (model files, the held-out
  paintings, ``bind``), ``train_arbitrary``;
* one network, many named styles (Dumoulin et al. 2017): ``multistyle`` (the style-vector table,
  model files, mixes, strength, ``resolve`` for ``apply``), ``train_multistyle`` (joint training
  and ``--add-style``).

>>> from impasto.fast import resolve, stylize
>>> model = resolve("starry_night")             # a shipped style, a mix of them, or a model file's path
>>> out = stylize(model, photo, preserve_color=True)
"""

from impasto.fast.model import FastModel, available_styles, load_model, save_model
from impasto.fast.multistyle import installed_styles, resolve
from impasto.fast.network import VARIANTS, Architecture, TransformNet, build
from impasto.fast.stylize import stylize

__all__ = [
    "VARIANTS",
    "Architecture",
    "FastModel",
    "TransformNet",
    "available_styles",
    "build",
    "installed_styles",
    "load_model",
    "resolve",
    "save_model",
    "stylize",
]
