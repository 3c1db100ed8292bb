"""Training the arbitrary-style network (Ghiasi et al. 2017, "Exploring the structure of a
real-time, arbitrary neural artistic stylization network", §3-4) on a folder of photos and a
folder of paintings.

Each batch pairs random photo crops with random training paintings; the style predictor turns
each painting's VGG-19 statistics into γ/β, the conditional transformer stylises its photo, and
the loss is Johnson et al.'s perceptual objective against that painting (as Ghiasi et al.),
with the terms of ``losses.perceptual_objective`` in its "relative" normalisation: each painting's
style term is divided by its own Gram energy. Why: across a thousand paintings the raw Gram
energies span orders of magnitude, and the batch's gradient would follow the loudest paintings;
relative terms weigh every painting alike. (``--strength 0`` needs no term of its own: the
transformer's residual output returns the photo at the identity vector, ``fast.conditional``.)

Held-out photos (``fast.training.data.Photos``) × held-out paintings (``fast.arbitrary.model.Paintings``)
give the validation loss; neither is ever in a training batch. Batch ``i`` is drawn from a generator
seeded by (seed, i), so ``resume`` continues batch for batch. VGG-19 runs under the runtime's
policy (float32 input stage, never cast wholesale); the transformer trains under autocast.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import images, storage
from impasto.config import ArbitraryConfig, to_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken, Event, TrainStep
from impasto.fast.arbitrary.model import (
    ArbitraryModel,
    ArbitraryNet,
    Paintings,
    is_arbitrary_file,
    read_arbitrary,
    resize_short_side,
    save_arbitrary,
)
from impasto.fast.arbitrary.objective import objective_of
from impasto.fast.arbitrary.style_code import STATISTIC_LAYERS, feature_statistics
from impasto.fast.multistyle.model import MultiStyleModel, read_multistyle
from impasto.fast.network import Architecture
from impasto.fast.training.data import Photos, batch_generator, batch_stream, centre_crop, random_crop
from impasto.fast.training.droplets import droplet_probe
from impasto.fast.training.loop import Trainer, TrainResult, check_model_path, checkpoint_path, run, training_runtime
from impasto.losses import LossTerms, gram_batch, perceptual_objective
from impasto.runtime import Runtime
from impasto.vgg import VGG19, deepest, load_weights

CHECKPOINT_FORMAT = "impasto-arbitrary-checkpoint"
# The settings that split photos and paintings into training and held-out: a resumed run keeps them.
SPLIT_SETTINGS = ("holdout_percent", "painting_holdout_percent")
# Training paintings whose statistics standardise the style predictor's input (a few seconds).
STANDARDISING_PAINTINGS = 64


@dataclass(frozen=True)
class Batch:
    photos: Tensor
    paintings: Tensor
    painting_files: tuple[Path, ...]


def painting_crop(path: Path, size: int, generator: torch.Generator | None) -> Tensor:
    """A painting at shorter side ``size``, cropped square (randomly, or centred without a generator)."""
    image = resize_short_side(images.load_image(path), size)
    return random_crop(image, size, generator) if generator is not None else centre_crop(image, size)


def make_batch(photos: Photos, paintings: Paintings, config: ArbitraryConfig, iteration: int) -> Batch:
    """Batch ``iteration`` of a run: photo crops, then one training painting per photo."""
    generator = batch_generator(config.seed, iteration)
    crops = photos.batch(config.batch_size, config.crop_size, generator)
    picks = torch.randint(len(paintings.training), (config.batch_size,), generator=generator).tolist()
    files = tuple(paintings.training[i] for i in picks)
    return Batch(crops, torch.cat([painting_crop(f, config.style_crop_size, generator) for f in files]), files)


class _Trainer(Trainer):
    """Networks, optimiser, and the losses of a batch."""

    checkpoint_format = CHECKPOINT_FORMAT
    checkpoint_what = "an arbitrary-style training checkpoint"

    def __init__(self, config: ArbitraryConfig, runtime: Runtime, photos: Photos, paintings: Paintings,
                 held: tuple[Tensor, Tensor]) -> None:
        super().__init__()
        self.config: ArbitraryConfig = config
        self.runtime, self.photos, self.paintings, self.held = runtime, photos, paintings, held
        objective = objective_of(config)
        self.content_layers, self.style_layers = tuple(objective.content_layers), tuple(objective.style_layers)
        layers = (*self.content_layers, *self.style_layers, *STATISTIC_LAYERS)
        self.vgg = runtime.vgg(VGG19(load_weights(), deepest(layers)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            arch = Architecture(config.width, config.blocks, config.kernel)
            self.net = ArbitraryNet(arch, config.style_crop_size).to(runtime.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate)
        self.weights = objective.training_weights(config.grid_weight, config.droplet_weight)
        self.origin: dict[str, Any] | None = None

    def batches(self) -> Iterator[Batch]:
        return batch_stream(functools.partial(make_batch, self.photos, self.paintings, self.config), self.config,
                            self.iteration)

    def standardise(self) -> None:
        """Standardise the style predictor's input by the statistics of up to
        ``STANDARDISING_PAINTINGS`` training paintings spread through the list (centre crops)."""
        files = self.paintings.training
        chosen = files[:: max(1, len(files) // STANDARDISING_PAINTINGS)][:STANDARDISING_PAINTINGS]
        if len(chosen) < 2:
            return
        with torch.no_grad():
            statistics = [feature_statistics(self.vgg(self.runtime.prepare(painting_crop(f, self.config.style_crop_size,
                                                                                        None)), STATISTIC_LAYERS))
                          for f in chosen]
        self.net.predictor.standardise(torch.cat(statistics))

    def initialise(self, base: MultiStyleModel) -> None:
        """Start from ``base`` (``initialise_from``), and remember which model that was."""
        initialise_from(self.net, base)
        self.origin = {"model": Path(base.source).name, "styles": base.names,
                       "iterations": base.training.get("iterations")}

    def continue_from(self, model: ArbitraryModel) -> None:
        """Continue a model's training from its file alone, as on a machine that no longer has the
        checkpoint: its weights, iteration count (so the batches go on where it stopped), training
        seconds and held-out curve. Adam's moments, which only the checkpoint holds, start afresh."""
        info = model.training
        self._check_fits(model.source, model.network.arch.as_dict(), model.network.style_size,
                         {name: (info.get("settings") or {}).get(name) for name in SPLIT_SETTINGS})
        self.net.load_state_dict(model.network.state_dict())
        self.iteration, self.seconds = int(info.get("iterations", 0)), float(info.get("seconds", 0.0))
        self.validation = list(info.get("validation", []))
        self.origin = {"model": Path(model.source).name, "iterations": self.iteration,
                       "initialised_from": info.get("initialised_from")}

    def _check_fits(self, source: str | Path, arch: object, style_size: object, split: dict[str, Any]) -> None:
        """One line unless a checkpoint or model has this run's network, style size and held-out split."""
        mine = self.net.arch.as_dict()
        if arch != mine:
            raise InputError(f"{source}: a network {arch}, not {mine}: give its --width, --blocks and --kernel")
        if style_size != self.net.style_size:
            raise InputError(f"--style-crop-size: {source} was trained at {style_size}, not {self.net.style_size}")
        # Files written before the split was recorded have none to compare.
        for name, value in split.items():
            if value is not None and getattr(self.config, name) != value:
                raise InputError(f"--{name.replace('_', '-')}: {source} was trained with {value}, not "
                                 f"{getattr(self.config, name)} (its held-out files must stay held out)")

    def objective(self, photos: Tensor, paintings: Tensor) -> LossTerms:
        """The perceptual losses of stylising each photo with its painting."""
        with torch.no_grad():
            style = self.vgg(self.runtime.prepare(paintings), {*self.style_layers, *STATISTIC_LAYERS})
            grams = {n: gram_batch(style[n]) for n in self.style_layers}
            statistics = feature_statistics(style)
            x = self.runtime.prepare(photos)
            content = self.vgg(x, self.content_layers)
        with self.runtime.autocast(), droplet_probe(self.net, self.weights.droplet > 0) as probe:
            outputs = self.net(x, statistics)
        features = self.vgg(self.runtime.prepare(outputs.float()), (*self.content_layers, *self.style_layers))
        return perceptual_objective(features, outputs, content, grams, self.weights, "relative",
                                    self.net.arch.multiple, probe.per_image() if probe else None)

    def step(self, batch: Batch) -> dict[str, float]:
        self.net.train()
        terms = self.objective(batch.photos, batch.paintings)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.iteration += 1
        losses = terms.as_floats()
        self.history.append(losses)
        return losses

    @property
    def validate_every(self) -> int:
        return self.config.validate_every

    def validate(self) -> tuple[dict[str, Any], None]:
        """Held-out losses over every held-out photo × held-out painting pair (no preview)."""
        photos, paintings = self.held
        self.net.eval()
        n, m = photos.shape[0], paintings.shape[0]
        with torch.no_grad():
            terms = self.objective(photos.repeat_interleave(m, dim=0), paintings.repeat(n, 1, 1, 1))
            statistics = feature_statistics(self.vgg(self.runtime.prepare(paintings), STATISTIC_LAYERS))
            vectors = self.net.predictor.gammabeta(self.net.predictor.code(statistics))
        # How far apart the held-out paintings' γ/β lie: 0 means one style for every painting (a
        # collapsed predictor), which the losses alone show only as a plateau.
        spread = float(vectors.std(dim=0).mean()) if m > 1 else 0.0
        row = {"iteration": self.iteration, "seconds": round(self.seconds, 1), **terms.as_floats(),
               "code_spread": spread}
        self.validation.append(row)
        return row, None

    def checkpoint_fields(self) -> dict[str, Any]:
        return {"style_size": self.net.style_size,
                "split": {name: getattr(self.config, name) for name in SPLIT_SETTINGS},
                "initialised_from": self.origin}

    def check_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        self._check_fits(path, state.get("architecture"), state.get("style_size"), state.get("split") or {})

    def restore_fields(self, state: dict[str, Any]) -> None:
        self.origin = state.get("initialised_from")


def initialise_from(net: ArbitraryNet, base: MultiStyleModel) -> None:
    """Start ``net`` from a trained multi-style network: its convolutions, and a predictor whose
    every painting first gets the mean of ``base``'s style vectors. Why: on a CPU, thousands of
    batches go into a transformer learning to paint at all; one that already paints the paper's
    five styles leaves the predictor to learn where each new painting lies among them."""
    if base.network.arch != net.arch:
        raise InputError(f"--init-from: {base.source} is a {base.network.arch} network, not {net.arch}: give "
                         "its --width, --blocks and --kernel")
    with torch.no_grad():
        net.transformer.load_state_dict(base.network.transformer.state_dict())
        mean = base.network.table().mean(dim=0).to(net.predictor.head.bias.dtype)
        identity = net.predictor.identity
        # The predictor's head adds its output to the identity, the gains through a sigmoid.
        net.predictor.head.bias[:-3] = mean[:-3] - identity[:-3]
        net.predictor.head.bias[-3:] = torch.logit(mean[-3:].clamp(0.01, 0.99))


def validation_set(photos: Photos, paintings: Paintings, config: ArbitraryConfig) -> tuple[Tensor, Tensor]:
    """The first held-out photos and paintings, centre-cropped: the same every run."""
    if not paintings.held_out:
        raise InputError(f"{paintings.folder}: no painting is held out; raise --painting-holdout-percent")
    held = photos.previews(config.validation_photos, config.crop_size)
    if held is None:
        raise InputError(f"{photos.folder}: no photo is held out; raise --holdout-percent")
    chosen = paintings.held_out[: config.validation_paintings]
    return held, torch.cat([painting_crop(p, config.style_crop_size, None) for p in chosen])


def train_arbitrary(
    photo_dir: str | os.PathLike[str],
    painting_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: ArbitraryConfig | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    init_from: str | os.PathLike[str] | None = None,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult[ArbitraryModel]:
    """Train the arbitrary-style network; write the model to ``output`` (a .pt file).

    ``init_from``: a model file of the same architecture to start from: a multi-style model
    (``initialise_from``), or an arbitrary-style model to continue without its checkpoint
    (``_Trainer.continue_from``); ignored by a resumed run, whose weights and recorded start are
    the checkpoint's.

    A checkpoint (default ``OUTPUT.ckpt``) every ``checkpoint_every`` iterations; ``resume``
    continues from it. ``on_event`` receives a TrainStep per iteration (with the held-out
    losses every ``validate_every``). ``cancel`` stops after the current iteration, writing the
    checkpoint and the model as trained so far; KeyboardInterrupt writes the checkpoint only.
    """
    config = config or ArbitraryConfig()
    out = check_model_path(output)
    ckpt = checkpoint_path(out, checkpoint, bool(config.checkpoint_every or resume))
    photos = Photos(photo_dir, config.holdout_percent)
    paintings = Paintings(painting_dir, config.painting_holdout_percent)
    held = validation_set(photos, paintings, config)
    trainer = _Trainer(config, training_runtime(config), photos, paintings, held)
    if resume:
        trainer.restore(ckpt)
    elif init_from is not None and is_arbitrary_file(init_from):
        trainer.continue_from(read_arbitrary(init_from))
    else:
        trainer.standardise()
        if init_from is not None:
            trainer.initialise(read_multistyle(init_from))
    complete = run(trainer, ckpt, on_event, cancel)
    net = trainer.net.eval().requires_grad_(False)
    info = _training_info(trainer, photos, paintings)
    save_arbitrary(net, out, info)
    return TrainResult(ArbitraryModel(net, info, str(out)), out, trainer.iteration, trainer.seconds,
                       trainer.validation, complete)


class ValidationLog:
    """Appends the held-out losses of each validation to a JSON-lines file: a log, not an output
    (one line per validation, flushed, so that a background run can be followed with ``tail -f``,
    and a resumed run continues the same file)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainStep) and event.validation is not None:
            storage.make_folder(self.path.parent)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event.validation) + "\n")


def _training_info(trainer: _Trainer, photos: Photos, paintings: Paintings) -> dict[str, Any]:
    return {
        "settings": to_dict(trainer.config),
        "iterations": trainer.iteration,
        "seconds": round(trainer.seconds, 1),
        "validation": trainer.validation,
        "initialised_from": trainer.origin,
        "photos": len(photos.training),
        "paintings": len(paintings.training),
        "held_out_paintings": len(paintings.held_out),
        "device": str(trainer.runtime.device),
        "precision": trainer.runtime.precision,
        "torch": str(torch.__version__),
    }
