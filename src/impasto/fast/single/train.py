"""Training a feed-forward style network (Johnson, Alahi & Fei-Fei, ECCV 2016, §3.1).

The network learns to map photographs to images whose VGG-19 features keep the photo's
content (relu2_2) and whose Gram matrices match one painting's, by Adam on batches of random
crops (``fast.training.data``). The network trains under the runtime's mixed precision; VGG-19 runs as
the runtime policy says, its float32 input stage included, and is never cast wholesale.

Decoding a batch of small JPEGs takes milliseconds next to the seconds of a VGG pass on the
CPU, so by default photos load in the training process (workers would only compete for cores);
on a GPU an iteration takes milliseconds and ``workers`` processes decode batches ahead.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import images
from impasto.config import TrainConfig, to_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken
from impasto.fast.model import FastModel, save_model
from impasto.fast.network import Architecture, architecture, build
from impasto.fast.training.data import Photos
from impasto.fast.training.droplets import droplet_probe
from impasto.fast.training.loop import (
    Previews,
    PreviewTrainer,
    TrainResult,
    check_model_path,
    checkpoint_path,
    run,
    training_runtime,
)
from impasto.losses import LossTerms, Weights, gram_batch, perceptual_objective
from impasto.runtime import Runtime
from impasto.vgg import VGG19, deepest, load_weights

CHECKPOINT_FORMAT = "impasto-fast-checkpoint"


def architecture_of(config: TrainConfig) -> Architecture:
    """The config's variant, with its width, number of blocks, edge kernel and upsampling
    replaced where given."""
    base = architecture(config.variant)
    blocks = base.blocks if config.blocks is None else config.blocks
    return dataclasses.replace(base, width=config.width or base.width, blocks=blocks,
                               kernel=config.kernel or base.kernel, upsample=config.upsample or base.upsample)


class _Trainer(PreviewTrainer):
    """The state of one training run: networks, targets, optimiser, photos and losses so far."""

    checkpoint_format = CHECKPOINT_FORMAT
    checkpoint_what = "an impasto training checkpoint"

    def __init__(self, style: Tensor, photos: Photos, config: TrainConfig, runtime: Runtime, *,
                 style_name: str = "", previews: Previews | None = None) -> None:
        super().__init__()
        self.config: TrainConfig = config
        self.runtime = runtime
        self.photos = photos
        self.style_name = style_name
        self.previews = previews or Previews(None, None, 0)
        self.layers = (*config.content_layers, *config.style_layers)
        self.vgg = runtime.vgg(VGG19(load_weights(), deepest(self.layers)))
        with torch.random.fork_rng(devices=[]):
            # Seeded initialisation without touching the caller's global RNG.
            torch.manual_seed(config.seed)
            self.net = build(architecture_of(config)).to(runtime.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate)
        self.weights = Weights(
            config.content_weight, config.style_weight, config.tv_weight,
            dict.fromkeys(config.content_layers, 1.0 / len(config.content_layers)),
            dict(zip(config.style_layers, config.style_layer_weights or
                     (1.0 / len(config.style_layers),) * len(config.style_layers), strict=True)),
            config.grid_weight,
            config.droplet_weight,
        )
        self.grams = self._style_grams(style)
        self.loss_scale = _loss_scale(config, self.weights, self.grams)

    def _style_grams(self, style: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            features = self.vgg(self.runtime.prepare(style), self.config.style_layers)
        return {name: gram_batch(f)[0] for name, f in features.items()}

    def objective(self, photos: Tensor) -> tuple[LossTerms, Tensor]:
        """The losses of the network's outputs for a batch of photos, and the outputs."""
        # Channels-last input: measured 7-10 % faster per iteration here than contiguous (bf16, oneDNN).
        x = self.runtime.prepare(photos)
        with torch.no_grad():
            content = self.vgg(x, self.config.content_layers)
        with self.runtime.autocast(), droplet_probe(self.net, self.weights.droplet > 0) as probe:
            outputs = self.net(x)
        # VGG-19 outside autocast: its layers carry their own formats (float32 input stage).
        features = self.vgg(self.runtime.prepare(outputs.float()), self.layers)
        terms = perceptual_objective(features, outputs, content, self.grams, self.weights, self.config.objective,
                                     architecture_of(self.config).multiple, probe.per_image() if probe else None)
        return terms, outputs

    def step(self, batch: Tensor) -> dict[str, float]:
        self.net.train()
        terms, _ = self.objective(batch)
        self.optimizer.zero_grad(set_to_none=True)
        (terms.total * self.loss_scale).backward()
        self.optimizer.step()
        self.iteration += 1
        losses = terms.as_floats()
        self.history.append(losses)
        return losses

    def held_out(self, previews: Tensor) -> tuple[dict[str, float], Tensor]:
        """Held-out losses and the stylised previews (float32, on the CPU)."""
        self.net.eval()
        with torch.no_grad():
            terms, outputs = self.objective(previews)
        return terms.as_floats(), outputs.float().cpu()

    def checkpoint_fields(self) -> dict[str, Any]:
        return {"style": self.style_name}

    def check_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        super().check_checkpoint(path, state)
        if state.get("style") != self.style_name:
            raise InputError(f"{path}: checkpoint trained on style {state.get('style')!r}, not {self.style_name!r}")


def _loss_scale(config: TrainConfig, weights: Weights, grams: dict[str, Tensor]) -> float:
    """What the objective is multiplied by for the backward pass. The paper's terms reach 1e13 on
    256 px crops, and their bf16 gradients overflow to inf within tens of iterations; divided by
    the style loss of a black image they are of order one. Adam's steps do not depend on the
    scale, and the losses reported stay in the paper's units."""
    if config.objective != "gatys":
        return 1.0
    layers = weights.style_layers.items()
    black = weights.style * sum(w * 0.25 * float(grams[n].float().pow(2).sum()) for n, w in layers)
    return 1.0 / black if black > 0 else 1.0


def train(
    style_image: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    style_name: str | None = None,
    preview_dir: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train a network for one painting on the photos of ``data_dir``; write the model to ``output``.

    Previews (PNG strips of the held-out photos) go to ``preview_dir`` every
    ``config.preview_every`` iterations; a checkpoint (default ``OUTPUT.ckpt``) every
    ``config.checkpoint_every``. ``resume`` continues from that checkpoint. ``on_event``
    receives a :class:`~impasto.events.TrainStep` after every iteration. ``cancel`` stops after
    the current iteration: the checkpoint and the model as trained so far are written
    (``TrainResult.complete`` false). KeyboardInterrupt writes the checkpoint only.
    """
    config = config or TrainConfig()
    out = check_model_path(output)
    ckpt = checkpoint_path(out, checkpoint, bool(config.checkpoint_every or resume))
    name = style_name or Path(style_image).stem
    style = images.resize_long_side(images.load_image(style_image), config.style_size)
    photos = Photos(data_dir, config.holdout_percent)
    previews = Previews.of(photos, config.previews, config.crop_size, config.preview_every, preview_dir)
    trainer = _Trainer(style, photos, config, training_runtime(config), style_name=name, previews=previews)
    if resume:
        trainer.restore(ckpt)
    complete = run(trainer, ckpt, on_event, cancel)
    model = FastModel(trainer.net.eval().requires_grad_(False), name, _training_info(trainer, photos), str(out))
    save_model(model.network, out, name, model.training)
    return TrainResult(model, out, trainer.iteration, trainer.seconds, trainer.validation, complete)


def _training_info(trainer: _Trainer, photos: Photos) -> dict[str, Any]:
    return {
        "settings": to_dict(trainer.config),
        "iterations": trainer.iteration,
        "seconds": round(trainer.seconds, 1),
        "final_losses": trainer.final_losses(),
        "validation": trainer.validation[-1] if trainer.validation else None,
        "photos": len(photos.training),
        "held_out": len(photos.held_out),
        "unreadable": sorted(p.name for p in photos.unreadable),
        "device": str(trainer.runtime.device),
        "precision": trainer.runtime.precision,
        # torch.__version__ is a str subclass that weights-only loading refuses.
        "torch": str(torch.__version__),
    }
