"""Feed-forward style networks (Johnson, Alahi & Fei-Fei, ECCV 2016): one network per painting,
trained once, then stylising a photo in one pass.

* ``network``: the image transformation network and its named variants;
* ``train``: ``train.train(style_image, data_dir, output, TrainConfig(...))`` (not re-exported here,
  so that ``impasto.fast.train`` stays the module);
* ``apply``: model files, the shipped styles, ``stylize``;
* ``video``: ``stylize_video(model, "in.mp4", "out.mp4")``, frame by frame through OpenCV.

>>> from impasto.fast import load_model, stylize
>>> model = load_model("starry_night")          # a shipped style, or a model file's path
>>> out = stylize(model, photo, preserve_color=True)
"""

from impasto.fast.apply import FastModel, available_styles, load_model, save_model, stylize
from impasto.fast.network import VARIANTS, Architecture, TransformNet, build

__all__ = [
    "VARIANTS",
    "Architecture",
    "FastModel",
    "TransformNet",
    "available_styles",
    "build",
    "load_model",
    "save_model",
    "stylize",
]
