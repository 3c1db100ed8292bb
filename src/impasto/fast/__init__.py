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
``backends`` (PyTorch, onnxruntime and OpenCV dnn, and ONNX export), ``stylize`` (a batch of
images through a network), ``apply`` (files, folders and videos) and ``frames`` (a video's frames).

>>> from impasto.fast import resolve, stylize
>>> model = resolve("starry_night")             # a shipped style, a mix of them, or a model file's path
>>> out = stylize(model, photo, preserve_color=True)
"""

from impasto.fast.model import FastModel, read_model, save_model
from impasto.fast.network import VARIANTS, Architecture, TransformNet, build
from impasto.fast.styles import installed_styles, load_style, resolve
from impasto.fast.stylize import stylize

__all__ = [
    "VARIANTS",
    "Architecture",
    "FastModel",
    "TransformNet",
    "build",
    "installed_styles",
    "load_style",
    "read_model",
    "resolve",
    "save_model",
    "stylize",
]
