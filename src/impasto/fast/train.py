"""Training a feed-forward style network (Johnson, Alahi & Fei-Fei, ECCV 2016, §3.1).

The network learns to map photographs to images whose VGG-19 features keep the photo's
content (relu2_2) and whose Gram matrices match one painting's, by Adam on batches of random
crops (``fast.data``). The network trains under the runtime's mixed precision; VGG-19 runs as
the runtime policy says, its float32 input stage included, and is never cast wholesale.

Decoding a batch of small JPEGs takes milliseconds next to the seconds of a VGG pass on the
CPU, so by default photos load in the training process (workers would only compete for cores);
on a GPU an iteration takes milliseconds and ``workers`` processes decode batches ahead.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import images, storage
from impasto.config import TrainConfig, TrainingSettings, to_dict
from impasto.errors import ImpastoError, InputError, WeightsError
from impasto.events import Callback, CancelToken, TrainStep, is_cancelled
from impasto.fast.data import Photos, batches
from impasto.fast.model import MODEL_SUFFIX, FastModel, save_model
from impasto.fast.network import Architecture, architecture, build
from impasto.losses import LossTerms, Weights, gram_batch, perceptual_objective
from impasto.runtime import Runtime, resolve_runtime
from impasto.storage import load_torch, reason
from impasto.vgg import VGG19, deepest, load_weights

CHECKPOINT_FORMAT = "impasto-fast-checkpoint"
# The final losses stored in the model: the mean of the last this many batches.
FINAL_WINDOW = 50


@dataclass
class TrainResult:
    model: FastModel
    path: Path
    iterations: int
    seconds: float
    validation: list[dict[str, float]] = field(default_factory=list)
    complete: bool = True


class TrainingInterrupted(ImpastoError):
    """Raised on KeyboardInterrupt after the checkpoint (if any) has been written."""

    def __init__(self, iteration: int, checkpoint: Path | None) -> None:
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted at iteration {iteration}{where}")
        self.iteration = iteration
        self.checkpoint = checkpoint


class TrainingDiverged(ImpastoError):
    """The loss became NaN or infinite (too high a learning rate); the model is not written."""


def architecture_of(config: TrainConfig) -> Architecture:
    """The config's variant, with its width, number of blocks, edge kernel and upsampling
    replaced where given."""
    base = architecture(config.variant)
    blocks = base.blocks if config.blocks is None else config.blocks
    return dataclasses.replace(base, width=config.width or base.width, blocks=blocks,
                               kernel=config.kernel or base.kernel, upsample=config.upsample or base.upsample)


class _Trainer:
    """The state of one training run: networks, targets, optimiser, photos and losses so far."""

    def __init__(self, style: Tensor, photos: Photos, config: TrainConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.photos = photos
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
        )
        self.grams = self._style_grams(style)
        self.loss_scale = _loss_scale(config, self.weights, self.grams)
        self.iteration = 0
        self.seconds = 0.0
        self.history: list[dict[str, float]] = []

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
        with self.runtime.autocast():
            outputs = self.net(x)
        # VGG-19 outside autocast: its layers carry their own formats (float32 input stage).
        features = self.vgg(self.runtime.prepare(outputs.float()), self.layers)
        terms = perceptual_objective(features, outputs, content, self.grams, self.weights, self.config.objective)
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

    def validate(self, previews: Tensor) -> tuple[dict[str, float], Tensor]:
        """Held-out losses and the stylised previews (float32, on the CPU)."""
        self.net.eval()
        with torch.no_grad():
            terms, outputs = self.objective(previews)
        return terms.as_floats(), outputs.float().cpu()

    def checkpoint(self, path: Path, style_name: str) -> None:
        storage.save_torch({
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "iteration": self.iteration,
            "seconds": self.seconds,
            "architecture": self.net.arch.as_dict(),
            "style": style_name,
            "network": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
        }, path)

    def restore(self, path: Path, style_name: str) -> None:
        state = read_checkpoint(path, CHECKPOINT_FORMAT, "an impasto training checkpoint")
        arch = self.net.arch.as_dict()
        if state.get("architecture") != arch:
            raise InputError(f"{path}: checkpoint of a network {state.get('architecture')}, not {arch}")
        if state.get("style") != style_name:
            raise InputError(f"{path}: checkpoint trained on style {state.get('style')!r}, not {style_name!r}")
        load_training_state(path, state, self.net, self.optimizer, self.config.learning_rate)
        self.iteration, self.seconds = int(state["iteration"]), float(state["seconds"])
        self.history = list(state.get("history", []))


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


def read_checkpoint(path: Path, format_name: str, what: str) -> dict[str, Any]:
    """A training checkpoint of format ``format_name`` (``what`` names it in the error)."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    state = load_torch(path, str(path), "checkpoint")
    if not isinstance(state, dict) or state.get("format") != format_name:
        raise WeightsError(f"{path}: not {what}")
    return state


def load_training_state(path: Path, state: dict[str, Any], net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        learning_rate: float) -> None:
    """A checkpoint's network and optimiser state into ``net`` and ``optimizer``; one line if they
    do not fit. The run's ``learning_rate`` replaces the checkpoint's (Adam's moments are kept), so
    that ``--resume --learning-rate`` lowers the rate from there on: a step schedule run by hand, as long
    trainings are continued session after session."""
    try:
        net.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: checkpoint does not fit this network ({reason(exc)})") from None
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def training_runtime(config: TrainingSettings) -> Runtime:
    """The runtime a training runs under (``train`` and ``train_arbitrary``)."""
    runtime = resolve_runtime(config.device, config.precision)
    # fp16 training would need loss scaling; CUDA devices without bf16 train in float32.
    return Runtime(runtime.device, torch.float32) if runtime.dtype == torch.float16 else runtime


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """Check, before hours of training, that a model file can be written at ``path``."""
    # The suffix also keeps the job file written beside it (OUTPUT.job.json) from replacing it.
    return storage.check_output_path(path, suffixes=(MODEL_SUFFIX,))


def checkpoint_path(output: Path, checkpoint: str | os.PathLike[str] | None, used: bool) -> Path:
    """The checkpoint file (default ``OUTPUT.ckpt``); where it will be ``used`` (written or read),
    its folder is checked before any work."""
    ckpt = Path(checkpoint) if checkpoint is not None else output.with_name(output.name + ".ckpt")
    if used:
        storage.check_folder(ckpt.parent, os.fsdecode(ckpt))
    return ckpt


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
    previews = photos.previews(config.previews, config.crop_size) if config.previews else None
    preview_folder = Path(preview_dir) if preview_dir is not None else None
    if preview_folder is not None:
        preview_folder.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(style, photos, config, training_runtime(config))
    if resume:
        trainer.restore(ckpt, name)
    loop = _Loop(trainer, previews, preview_folder, ckpt, name, on_event, cancel)
    loop.run()
    model = FastModel(trainer.net.eval().requires_grad_(False), name, _training_info(trainer, loop, photos), str(out))
    save_model(model.network, out, name, model.training)
    complete = loop.finished
    return TrainResult(model, out, trainer.iteration, trainer.seconds, loop.validation, complete)


class _Loop:
    """Iterations, with previews, checkpoints and events at their intervals."""

    def __init__(
        self,
        trainer: _Trainer,
        previews: Tensor | None,
        preview_folder: Path | None,
        checkpoint: Path,
        style_name: str,
        on_event: Callback | None,
        cancel: CancelToken | None,
    ) -> None:
        self.trainer, self.previews, self.preview_folder = trainer, previews, preview_folder
        self.checkpoint, self.style_name, self.on_event, self.cancel = checkpoint, style_name, on_event, cancel
        self.validation: list[dict[str, float]] = []
        self.finished = False

    def run(self) -> None:
        """Train to the last iteration or the time limit (``finished``), or until cancelled."""
        t, config = self.trainer, self.trainer.config
        if t.iteration == 0 and self.previews is not None and config.preview_every:
            self.preview()
        try:
            start = time.perf_counter()
            for batch in batches(t.photos, config, t.iteration, t.runtime.device.type == "cuda"):
                losses = t.step(batch)
                t.seconds += time.perf_counter() - start
                if not math.isfinite(losses["total"]):
                    raise TrainingDiverged(f"training diverged at iteration {t.iteration} (loss {losses['total']}); "
                                           "resume from the last checkpoint with a lower --learning-rate")
                self.finished = self._after_step(losses)
                if self.finished:
                    return
                if is_cancelled(self.cancel):
                    if config.checkpoint_every:
                        t.checkpoint(self.checkpoint, self.style_name)
                    return
                start = time.perf_counter()
        except KeyboardInterrupt:
            saved = self.checkpoint if config.checkpoint_every else None
            if saved is not None:
                t.checkpoint(saved, self.style_name)
            raise TrainingInterrupted(t.iteration, saved) from None
        self.finished = True

    def _after_step(self, losses: dict[str, float]) -> bool:
        """Previews, checkpoints and the event after an iteration; whether it was the last."""
        t, config = self.trainer, self.trainer.config
        last = t.iteration == config.iterations or out_of_time(config, t.seconds)
        validation, preview, saved = None, None, None
        if self.previews is not None and config.preview_every and (t.iteration % config.preview_every == 0 or last):
            validation, preview = self.preview()
        if config.checkpoint_every and (t.iteration % config.checkpoint_every == 0 or last):
            t.checkpoint(self.checkpoint, self.style_name)
            saved = self.checkpoint
        if self.on_event is not None:
            self.on_event(TrainStep(t.iteration, config.iterations, t.seconds, losses, validation, preview, saved))
        return last

    def preview(self) -> tuple[dict[str, float], Path | None]:
        assert self.previews is not None
        losses, outputs = self.trainer.validate(self.previews)
        self.validation.append({"iteration": self.trainer.iteration, **losses})
        if self.preview_folder is None:
            return losses, None
        path = self.preview_folder / storage.snapshot_name(self.trainer.iteration)
        # One strip: the held-out photos side by side.
        images.save_image(torch.cat(list(outputs), dim=-1), path)
        return losses, path


def out_of_time(config: TrainingSettings, seconds: float) -> bool:
    """Whether a run with ``seconds`` of training behind it has used its ``minutes``."""
    return config.minutes is not None and seconds >= 60 * config.minutes


def _training_info(trainer: _Trainer, loop: _Loop, photos: Photos) -> dict[str, Any]:
    recent = trainer.history[-FINAL_WINDOW:]
    final = {k: sum(row[k] for row in recent) / len(recent) for k in recent[0]} if recent else {}
    return {
        "settings": to_dict(trainer.config),
        "iterations": trainer.iteration,
        "seconds": round(trainer.seconds, 1),
        "final_losses": final,
        "validation": loop.validation[-1] if loop.validation else None,
        "photos": len(photos.training),
        "held_out": len(photos.held_out),
        "unreadable": sorted(p.name for p in photos.unreadable),
        "device": str(trainer.runtime.device),
        "precision": trainer.runtime.precision,
        # torch.__version__ is a str subclass that weights-only loading refuses.
        "torch": str(torch.__version__),
    }
