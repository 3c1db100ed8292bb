"""Loss functions, pure: nothing here modifies its inputs.

* :mod:`~impasto.losses.paper`: the objective of Gatys et al. (2016), open to extra named terms;
* :mod:`~impasto.losses.perceptual`: the batched training objectives of feed-forward networks.
"""

from impasto.losses.paper import (
    GuidedStyle,
    LossTerms,
    Targets,
    Term,
    Weights,
    content_layer_loss,
    gram,
    guide_mass,
    guided_gram,
    guided_style_layer_loss,
    guided_style_loss,
    objective,
    style_layer_loss,
    total_variation,
)
from impasto.losses.perceptual import (
    batch_content_loss,
    batch_lattice_energy,
    batch_style_loss,
    batch_total_variation,
    gram_batch,
    lattice_pattern,
    mean_lattice_energy,
    mean_total_variation,
    outlier_inflation,
    perceptual_objective,
    relative_content_loss,
    relative_style_loss,
)

__all__ = [
    "GuidedStyle",
    "LossTerms",
    "Targets",
    "Term",
    "Weights",
    "batch_content_loss",
    "batch_lattice_energy",
    "batch_style_loss",
    "batch_total_variation",
    "content_layer_loss",
    "gram",
    "gram_batch",
    "guide_mass",
    "guided_gram",
    "guided_style_layer_loss",
    "guided_style_loss",
    "lattice_pattern",
    "mean_lattice_energy",
    "mean_total_variation",
    "objective",
    "outlier_inflation",
    "perceptual_objective",
    "relative_content_loss",
    "relative_style_loss",
    "style_layer_loss",
    "total_variation",
]
