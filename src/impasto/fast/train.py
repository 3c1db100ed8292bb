"""Training a feed-forward style network (Johnson, Alahi & Fei-Fei, ECCV 2016, §3.1).

The network learns to map photographs to images whose VGG-19 features keep the photo's
content (relu2_2) and whose Gram matrices match one painting's, by Adam on batches of random
crops. Photos are read in place from a folder; a fixed slice of it, chosen by a hash of the file
names, is held out for previews and a validation loss. Every batch is drawn from a generator
seeded by (seed, iteration), so a resumed run sees exactly the batches an uninterrupted one would.

Decoding a batch of small JPEGs takes milliseconds next to the seconds of a VGG pass on the
CPU, so by default photos load in the training process (workers would only compete for cores);
on a GPU an iteration takes milliseconds and ``workers`` processes decode batches ahead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import images
from impasto.config import TrainConfig
from impasto.errors import ImpastoError, InputError, WeightsError
from impasto.events import write_json
from impasto.fast.apply import MODEL_SUFFIX, FastModel, atomic_save, save_model
from impasto.fast.network import Architecture, architecture, build
from impasto.files import load_torch, reason
from impasto.losses import LossTerms, Weights, gram_batch, perceptual_objective
from impasto.transfer import Runtime, resolve_runtime
from impasto.vgg import VGG19, deepest, load_weights

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CHECKPOINT_FORMAT = "impasto-fast-checkpoint"
# A batch gives up on a folder where this many files in a row cannot be decoded.
MAX_BAD_IN_A_ROW = 50
# The final losses stored in the model: the mean of the last this many batches.
FINAL_WINDOW = 50


@dataclass(frozen=True)
class TrainStep:
    """One training iteration: the batch's weighted losses; at preview iterations also the
    held-out photos' losses and the preview file written (if any)."""

    iteration: int
    total_iterations: int
    seconds: float
    losses: dict[str, float]
    validation: dict[str, float] | None = None
    preview: Path | None = None
    checkpoint: Path | None = None


StepCallback = Callable[[TrainStep], None]


@dataclass
class TrainResult:
    model: FastModel
    path: Path
    iterations: int
    seconds: float
    validation: list[dict[str, float]] = field(default_factory=list)


class TrainingInterrupted(ImpastoError):
    """Raised on KeyboardInterrupt after the checkpoint (if any) has been written."""

    def __init__(self, iteration: int, checkpoint: Path | None) -> None:
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted at iteration {iteration}{where}")
        self.iteration = iteration
        self.checkpoint = checkpoint


class TrainingDiverged(ImpastoError):
    """The loss became NaN or infinite (too high a learning rate); the model is not written."""


def held_out(name: str, percent: float) -> bool:
    """Whether a photo belongs to the validation slice: a stable hash of its file name, so the
    split is the same on every machine and never needs files copied around."""
    bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 10_000
    return bucket < percent * 100


class Photos:
    """The photos of a folder, split by name into training and held-out files."""

    def __init__(self, folder: str | os.PathLike[str], holdout_percent: float) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: photo folder not found" if not self.folder.exists()
                             else f"{self.folder}: not a folder")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        self.held_out = [p for p in files if held_out(p.name, holdout_percent)]
        self.training = [p for p in files if not held_out(p.name, holdout_percent)]
        if not self.training:
            raise InputError(f"{self.folder}: no training photos (.jpg, .png, .webp) in this folder")
        self.unreadable: set[Path] = set()

    def load(self, path: Path) -> Tensor | None:
        """A photo, or None (and remembered) when it cannot be decoded."""
        if path in self.unreadable:
            return None
        try:
            return images.load_image(path)
        except InputError:
            self.unreadable.add(path)
            return None

    def batch(self, count: int, size: int, generator: torch.Generator) -> Tensor:
        """``count`` random ``size`` px square crops, randomly mirrored, as (count, 3, size, size)."""
        crops: list[Tensor] = []
        misses = 0
        while len(crops) < count:
            index = int(torch.randint(len(self.training), (1,), generator=generator))
            photo = self.load(self.training[index])
            if photo is None:
                misses += 1
                if misses >= MAX_BAD_IN_A_ROW or len(self.unreadable) == len(self.training):
                    raise InputError(f"{self.folder}: {len(self.unreadable)} photos cannot be decoded")
                continue
            misses = 0
            crops.append(random_crop(photo, size, generator))
        return torch.cat(crops)

    def previews(self, count: int, size: int) -> Tensor | None:
        """Centre crops of the first ``count`` readable held-out photos, or None if there are none."""
        crops = []
        for path in self.held_out:
            if len(crops) == count:
                break
            photo = self.load(path)
            if photo is not None:
                crops.append(centre_crop(photo, size))
        return torch.cat(crops) if crops else None


def _cover(photo: Tensor, size: int) -> Tensor:
    """Upscale so that the shorter side is at least ``size`` (the corpus has sides down to ~200 px)."""
    height, width = photo.shape[-2:]
    if min(height, width) >= size:
        return photo
    scale = size / min(height, width)
    return images.resize_to(photo, max(size, round(height * scale)), max(size, round(width * scale)))


def random_crop(photo: Tensor, size: int, generator: torch.Generator) -> Tensor:
    photo = _cover(photo, size)
    height, width = photo.shape[-2:]
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    crop = photo[..., top : top + size, left : left + size]
    return crop.flip(-1) if bool(torch.rand((), generator=generator) < 0.5) else crop


def centre_crop(photo: Tensor, size: int) -> Tensor:
    photo = _cover(photo, size)
    height, width = photo.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return photo[..., top : top + size, left : left + size]


class _Batches(torch.utils.data.Dataset[Tensor | str]):
    """Batch ``i`` of a run, the same in any process: a worker returns an error's message rather
    than raising, since DataLoader would re-raise it wrapped in a traceback."""

    def __init__(self, photos: Photos, config: TrainConfig) -> None:
        self.photos, self.config = photos, config

    def __len__(self) -> int:
        return self.config.iterations

    def __getitem__(self, iteration: int) -> Tensor | str:
        generator = _batch_generator(self.config.seed, iteration)
        try:
            return self.photos.batch(self.config.batch_size, self.config.crop_size, generator)
        except InputError as exc:
            return str(exc)


def batches(photos: Photos, config: TrainConfig, start: int, pin_memory: bool = False) -> Iterator[Tensor]:
    """The batches of iterations ``start`` ... ``config.iterations - 1``, in order."""
    loader = torch.utils.data.DataLoader(
        _Batches(photos, config), batch_size=None, sampler=range(start, config.iterations),
        num_workers=config.workers, pin_memory=pin_memory, persistent_workers=False,
        prefetch_factor=4 if config.workers else None,
    )
    for batch in loader:
        if isinstance(batch, str):
            raise InputError(batch)
        yield batch


def architecture_of(config: TrainConfig) -> Architecture:
    """The config's variant, with its width and number of blocks replaced where given."""
    base = architecture(config.variant)
    blocks = base.blocks if config.blocks is None else config.blocks
    return dataclasses.replace(base, width=config.width or base.width, blocks=blocks)


def _batch_generator(seed: int, iteration: int) -> torch.Generator:
    # One generator per iteration, derived from (seed, iteration): resuming needs no RNG state.
    return torch.Generator().manual_seed(seed * 1_000_003 + iteration)


class _Trainer:
    """The state of one training run: networks, targets, optimiser, photos and losses so far."""

    def __init__(self, style: Tensor, photos: Photos, config: TrainConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.photos = photos
        self.layers = (*config.content_layers, *config.style_layers)
        self.vgg = VGG19(load_weights(), deepest(self.layers)).to(runtime.device, runtime.dtype)
        self.vgg = self.vgg.to(memory_format=torch.channels_last)
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

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.runtime.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.runtime.device.type, dtype=self.runtime.dtype)

    def _style_grams(self, style: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            features = self.vgg(self.runtime.prepare(style), self.config.style_layers)
        return {name: gram_batch(f)[0] for name, f in features.items()}

    def objective(self, photos: Tensor) -> tuple[LossTerms, Tensor]:
        """The losses of the network's outputs for a batch of photos, and the outputs."""
        # Channels-last input: measured 7-10 % faster per iteration here than contiguous (bf16, oneDNN).
        x = photos.to(self.runtime.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            with torch.no_grad():
                content = self.vgg(x.to(self.runtime.dtype), self.config.content_layers)
            outputs = self.net(x)
            features = self.vgg(outputs.to(self.runtime.dtype), self.layers)
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
        atomic_save({
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
        state = _read_checkpoint(path)
        arch = self.net.arch.as_dict()
        if state.get("architecture") != arch:
            raise InputError(f"{path}: checkpoint of a network {state.get('architecture')}, not {arch}")
        if state.get("style") != style_name:
            raise InputError(f"{path}: checkpoint trained on style {state.get('style')!r}, not {style_name!r}")
        try:
            self.net.load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise WeightsError(f"{path}: checkpoint does not fit this network ({reason(exc)})") from None
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


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    state = load_torch(path, str(path), "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not an impasto training checkpoint")
    return state


def _runtime(config: TrainConfig) -> Runtime:
    runtime = resolve_runtime(config.device, config.precision)
    # fp16 training would need loss scaling; CUDA devices without bf16 train in float32.
    return Runtime(runtime.device, torch.float32) if runtime.dtype == torch.float16 else runtime


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """Check, before hours of training, that a model file can be written at ``path``."""
    out = Path(path)
    if out.suffix != MODEL_SUFFIX:
        # Also keeps the JSON record written beside it (OUTPUT with .json) from replacing it.
        raise InputError(f"{out}: model files end in {MODEL_SUFFIX}")
    if out.is_dir():
        raise InputError(f"{out}: is a directory, not a file")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    return out


def default_checkpoint(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


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
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train a network for one painting on the photos of ``data_dir``; write the model to ``output``.

    Previews (PNG strips of the held-out photos) go to ``preview_dir`` every
    ``config.preview_every`` iterations; a checkpoint (default ``OUTPUT.ckpt``) every
    ``config.checkpoint_every``. ``resume`` continues from that checkpoint. A JSON record of the
    settings and validation losses is written next to the model (``OUTPUT`` with ``.json``).
    """
    config = config or TrainConfig()
    out = check_model_path(output)
    ckpt = Path(checkpoint) if checkpoint is not None else default_checkpoint(out)
    if (config.checkpoint_every or resume) and not ckpt.parent.is_dir():
        raise InputError(f"{ckpt}: folder {ckpt.parent} does not exist")
    name = style_name or Path(style_image).stem
    style = images.resize_long_side(images.load_image(style_image), config.style_size)
    photos = Photos(data_dir, config.holdout_percent)
    previews = photos.previews(config.previews, config.crop_size) if config.previews else None
    preview_folder = Path(preview_dir) if preview_dir is not None else None
    if preview_folder is not None:
        preview_folder.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(style, photos, config, _runtime(config))
    if resume:
        trainer.restore(ckpt, name)
    loop = _Loop(trainer, previews, preview_folder, ckpt, name, on_step)
    loop.run()
    model = FastModel(trainer.net.eval().requires_grad_(False), name, _training_info(trainer, loop, photos), str(out))
    save_model(model.network, out, name, model.training)
    write_json(out.with_suffix(".json"), {"model": str(out), "style_image": os.fspath(style_image),
                                          "data": os.fspath(data_dir), **model.training})
    return TrainResult(model, out, trainer.iteration, trainer.seconds, loop.validation)


class _Loop:
    """Iterations, with previews, checkpoints and events at their intervals."""

    def __init__(
        self,
        trainer: _Trainer,
        previews: Tensor | None,
        preview_folder: Path | None,
        checkpoint: Path,
        style_name: str,
        on_step: StepCallback | None,
    ) -> None:
        self.trainer, self.previews, self.preview_folder = trainer, previews, preview_folder
        self.checkpoint, self.style_name, self.on_step = checkpoint, style_name, on_step
        self.validation: list[dict[str, float]] = []

    def run(self) -> None:
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
                                           "resume from the last checkpoint with a lower --lr")
                self._after_step(losses)
                start = time.perf_counter()
        except KeyboardInterrupt:
            saved = self.checkpoint if config.checkpoint_every else None
            if saved is not None:
                t.checkpoint(saved, self.style_name)
            raise TrainingInterrupted(t.iteration, saved) from None

    def _after_step(self, losses: dict[str, float]) -> None:
        t, config = self.trainer, self.trainer.config
        last = t.iteration == config.iterations
        validation, preview, saved = None, None, None
        if self.previews is not None and config.preview_every and (t.iteration % config.preview_every == 0 or last):
            validation, preview = self.preview()
        if config.checkpoint_every and (t.iteration % config.checkpoint_every == 0 or last):
            t.checkpoint(self.checkpoint, self.style_name)
            saved = self.checkpoint
        if self.on_step is not None:
            self.on_step(TrainStep(t.iteration, config.iterations, t.seconds, losses, validation, preview, saved))

    def preview(self) -> tuple[dict[str, float], Path | None]:
        assert self.previews is not None
        losses, outputs = self.trainer.validate(self.previews)
        self.validation.append({"iteration": self.trainer.iteration, **losses})
        if self.preview_folder is None:
            return losses, None
        path = self.preview_folder / f"iter_{self.trainer.iteration:05d}.png"
        # One strip: the held-out photos side by side.
        images.save_image(torch.cat(list(outputs), dim=-1), path)
        return losses, path


def _training_info(trainer: _Trainer, loop: _Loop, photos: Photos) -> dict[str, Any]:
    recent = trainer.history[-FINAL_WINDOW:]
    final = {k: sum(row[k] for row in recent) / len(recent) for k in recent[0]} if recent else {}
    return {
        "settings": _plain(dataclasses.asdict(trainer.config)),
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


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as types ``torch.load(weights_only=True)`` and JSON both accept (lists, not tuples)."""
    return {k: list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v for k, v in settings.items()}
