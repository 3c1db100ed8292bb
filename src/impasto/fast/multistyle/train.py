"""Training a multi-style network (Dumoulin, Shlens & Kudlur 2017, §3): every painting's style
vector and the shared convolutions together, or (``base``, ``impasto train --add-style``) only
new paintings' vectors with the convolutions frozen (their §4: "a new style can be learned by
training only its γ/β", 2,500 steps in the paper).

Which style each image gets: image j of batch i is stylised with the trainable style number
(i × batch_size + j) mod K, K trainable styles. Styles take turns in a fixed order, so every
style gets the same share of images (to within one), each batch mixes min(batch size, K) of them
(as Dumoulin et al.'s batches of random styles do), and the assignment depends on the iteration
alone: a resumed run repeats an uninterrupted one batch for batch, as ``fast.training.data`` makes the
photo crops do.

The objective of each style is the paper's (Gatys et al. 2016, eq. 7; ``fast.multistyle.model.Objective``),
computed as ``impasto transfer`` computes it: E_l = Σ (G - A)² / (4 N² M²) with M the crop's
positions and A the painting's Gram matrix brought to M positions (``gatys.targets``: the painting
at ``style_size`` px has its own number of positions), so that a network's output can be scored
by ``impasto.evaluate`` on the very objective it was trained on. Departure: each
image's loss is divided by its style's loss of a black image (``fast.single.train._loss_scale``), so that
paintings of very different Gram energy pull the shared convolutions alike; each style's own
optimum is unchanged, the reported losses stay in the paper's units.

Everything else is every training's (``fast.training.loop``): the loop, previews, checkpoints,
resume, cancellation and runtime policy (the network under autocast, VGG-19 in the runtime's
formats with a float32 input stage, never cast wholesale).
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from impasto import images
from impasto.config import Precision, TrainConfig, from_dict, to_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken
from impasto.fast.multistyle.model import (
    MultiStyleModel,
    MultiStyleNet,
    StyleEntry,
    check_layout,
    objective_of,
    read_multistyle,
    save_multistyle,
)
from impasto.fast.network import Architecture
from impasto.fast.single.train import _loss_scale, architecture_of
from impasto.fast.training.data import Photos
from impasto.fast.training.droplets import droplet_probe
from impasto.fast.training.loop import (
    FINAL_WINDOW,
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

CHECKPOINT_FORMAT = "impasto-multistyle-checkpoint"


def style_assignment(iteration: int, batch_size: int, trainable: list[int]) -> Tensor:
    """The style index of each image of batch ``iteration`` (the module's docstring)."""
    first = iteration * batch_size
    return torch.tensor([trainable[(first + j) % len(trainable)] for j in range(batch_size)])


class _Trainer(PreviewTrainer):
    """The state of one run, with the interface ``fast.training.loop``'s loop drives."""

    checkpoint_format = CHECKPOINT_FORMAT
    checkpoint_what = "an impasto multi-style training checkpoint"

    def __init__(self, paintings: list[Tensor], photos: Photos, config: TrainConfig, runtime: Runtime,
                 base: MultiStyleModel | None, *, label: str = "", previews: Previews | None = None) -> None:
        super().__init__()
        self.config: TrainConfig = config
        self.runtime, self.photos = runtime, photos
        # The styles' names, comma-separated: a checkpoint continues only the same styles.
        self.label = label
        self.previews = previews or Previews(None, None, 0)
        self.target = objective_of(config)
        self.layers = (*config.content_layers, *config.style_layers)
        self.vgg = runtime.vgg(VGG19(load_weights(), deepest(self.layers)))
        self.net, self.trainable = self._network(len(paintings), base)
        self.net.to(runtime.device)
        frozen = base is not None
        params = [self.net.styles[i] for i in self.trainable] if frozen else list(self.net.parameters())
        self.optimizer = torch.optim.Adam(params, lr=config.learning_rate)
        self.weights = Weights(config.content_weight, config.style_weight, config.tv_weight,
                               dict(self.target.content_layers), dict(self.target.style_layers), config.grid_weight,
                               config.droplet_weight)
        # Per trainable style: A_l / (N_l M_l) for each style layer, the painting's statistics
        # per position, which ``batch_style_loss`` asks of a crop of any size.
        self.grams = dict(zip(self.trainable, (self._style_grams(p) for p in paintings), strict=True))
        self.scales = {k: _loss_scale(config, self.weights, g) for k, g in self.grams.items()}

    def _network(self, count: int, base: MultiStyleModel | None) -> tuple[MultiStyleNet, list[int]]:
        if base is None:
            arch = architecture_of(self.config)
            check_layout(arch)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                return MultiStyleNet(arch, count), list(range(count))
        net = copy.deepcopy(base.network).requires_grad_(False)
        added = [net.add_style() for _ in range(count)]
        for index in added:
            net.styles[index].requires_grad_(True)
        return net, added

    def _style_grams(self, painting: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            features = self.vgg(self.runtime.prepare(painting), self.config.style_layers)
        return {n: gram_batch(f)[0] for n, f in features.items()}

    def objective(self, photos: Tensor, styles: Tensor) -> tuple[dict[int, LossTerms], Tensor]:
        """Each style's losses over its images of the batch, and the outputs."""
        x = self.runtime.prepare(photos)
        with torch.no_grad():
            content = self.vgg(x, self.config.content_layers)
        with self.runtime.autocast(), droplet_probe(self.net, self.weights.droplet > 0) as probe:
            outputs = self.net(x, styles)
        droplets = probe.per_image() if probe else None
        features = self.vgg(self.runtime.prepare(outputs.float()), self.layers)
        terms = {}
        for k in sorted(set(styles.tolist())):
            rows = (styles == k).nonzero().flatten().to(outputs.device)
            drops = None if droplets is None else droplets[rows]
            terms[k] = perceptual_objective({n: f[rows] for n, f in features.items()}, outputs[rows],
                                            {n: c[rows] for n, c in content.items()}, self.grams[k], self.weights,
                                            "gatys", self.net.arch.multiple, drops)
        return terms, outputs

    def _record(self, terms: dict[int, LossTerms], counts: dict[int, int]) -> dict[str, Any]:
        """Losses averaged over the images (paper units), and each style's total."""
        total = sum(counts.values())
        row: dict[str, Any] = {}
        for k, t in terms.items():
            for name, value in t.as_floats().items():
                row[name] = row.get(name, 0.0) + value * counts[k] / total
        row["styles"] = {str(k): t.as_floats()["total"] for k, t in terms.items()}
        return row

    def step(self, batch: Tensor) -> dict[str, float]:
        self.net.train()
        styles = style_assignment(self.iteration, batch.shape[0], self.trainable)
        terms, _ = self.objective(batch, styles)
        counts = {k: int((styles == k).sum()) for k in terms}
        loss = sum(terms[k].total * self.scales[k] * counts[k] / batch.shape[0] for k in terms)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        self.optimizer.step()
        self.iteration += 1
        row = self._record(terms, counts)
        self.history.append(row)
        return {k: v for k, v in row.items() if k != "styles"}

    def held_out(self, previews: Tensor) -> tuple[dict[str, float], Tensor]:
        """Held-out losses of every preview under every trainable style, and the previews as
        (photos, 3, styles × H, W): the preview strip then shows one row per style."""
        self.net.eval()
        count, k = previews.shape[0], len(self.trainable)
        styles = torch.tensor(self.trainable).repeat_interleave(count)
        with torch.no_grad():
            terms, outputs = self.objective(previews.repeat(k, 1, 1, 1), styles)
        row = self._record(terms, {s: count for s in terms})
        losses = {n: v for n, v in row.items() if n != "styles"}
        losses.update({f"total/{s}": v for s, v in row["styles"].items()})
        h, w = outputs.shape[-2:]
        grid = outputs.float().cpu().reshape(k, count, 3, h, w).permute(1, 2, 0, 3, 4).reshape(count, 3, k * h, w)
        return losses, grid

    def continue_from(self, model: MultiStyleModel, label: str) -> None:
        """Carry on a model's training from its file alone (a checkpoint does not survive a change
        of machine, the model file does): its weights, iteration count (so the batches go on
        where they stopped) and seconds; Adam starts afresh. The upsampling may differ: the
        weights fit either, so a nearest-neighbour network can go on training as a bilinear one."""
        if replace(model.network.arch, upsample=self.net.arch.upsample) != self.net.arch:
            found = model.network.arch
            raise InputError(f"--init-from: {label} is a {found} network, not {self.net.arch}: give its --width "
                             f"{found.width}, --blocks {found.blocks} and --kernel {found.kernel}")
        self.net.load_state_dict(model.network.state_dict())
        self.iteration = int(model.training.get("iterations", 0))
        self.seconds = float(model.training.get("seconds", 0.0))
        # The held-out curve goes on from the file's, so that it spans every machine it ran on.
        self.validation = list(model.training.get("validation", []))

    def checkpoint_fields(self) -> dict[str, Any]:
        return {"styles": self.label, "trainable": self.trainable}

    def check_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        super().check_checkpoint(path, state)
        if state.get("styles") != self.label or state.get("trainable") != self.trainable:
            raise InputError(f"{path}: checkpoint trained styles {state.get('styles')!r}, not {self.label!r}")


def train_multistyle(
    style_images: list[str | os.PathLike[str]],
    data_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    names: list[str] | None = None,
    base: str | os.PathLike[str] | None = None,
    init_from: str | os.PathLike[str] | None = None,
    preview_dir: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult[MultiStyleModel]:
    """Train one network for several paintings (or, with ``base`` a multi-style model file, only
    the new paintings' vectors) on the photos of ``data_dir``; write the model to ``output``.

    ``init_from``: a model file this run's training continues (same paintings, names and layout;
    ignored with ``resume``, where the checkpoint holds more). ``names`` default to the
    paintings' file names. Previews (a grid: a row per style, a column
    per held-out photo), checkpoints (default ``OUTPUT.ckpt``), ``resume``, ``on_event`` and
    ``cancel`` behave as in ``fast.single.train.train``.
    """
    config = config or TrainConfig()
    out = check_model_path(output)
    ckpt = checkpoint_path(out, checkpoint, bool(config.checkpoint_every or resume))
    objective_of(config)  # refuses objectives without the paper's form before any loading
    base_model = read_multistyle(base) if base is not None else None
    start = read_multistyle(init_from) if init_from is not None and not resume else None
    if start is not None:
        config = _with_layout(config, start.network.arch)
    names = _names(style_images, names, base_model)
    paintings = [images.resize_long_side(images.load_image(p), config.style_size) for p in style_images]
    photos = Photos(data_dir, config.holdout_percent)
    previews = Previews.of(photos, config.previews, config.crop_size, config.preview_every, preview_dir)
    label = ",".join([*(base_model.names if base_model else []), *names])
    trainer = _Trainer(paintings, photos, config, training_runtime(config), base_model, label=label,
                       previews=previews)
    if resume:
        trainer.restore(ckpt)
    elif start is not None:
        _continue(trainer, start, label)
    complete = run(trainer, ckpt, on_event, cancel)
    trainer.net.eval().requires_grad_(False)
    model = _model(trainer, trainer.validation, names, style_images, base_model, photos, str(out))
    save_multistyle(model, out)
    return TrainResult(model, out, trainer.iteration, trainer.seconds, trainer.validation, complete)


def held_out_loss(model: MultiStyleModel, paintings: list[Path], data: str | os.PathLike[str],
                  like: MultiStyleModel | None = None, precision: Precision | None = None) -> dict[str, Any]:
    """The held-out row (``training.validation``) a training would record for ``model`` at its
    iteration: its recorded settings (or ``like``'s: one objective for files trained with others),
    on the device and in the precision it ran in unless ``precision``; ``paintings`` its styles'
    files, ``data`` its photo folder. Scores model files from before the curve was recorded."""
    record = (like or model).training
    config = _with_layout(from_dict(TrainConfig, record["settings"], "training.settings"), model.network.arch)
    runtime = training_runtime(replace(config, device=record.get("device", "cpu"),
                                       precision=precision or record.get("precision", "auto")))
    photos = Photos(data, config.holdout_percent)
    trainer = _Trainer([images.resize_long_side(images.load_image(p), config.style_size) for p in paintings], photos,
                       config, runtime, None, label=",".join(model.names),
                       previews=Previews.of(photos, config.previews, config.crop_size, config.preview_every, None))
    trainer.continue_from(model, model.source)
    trainer.validate()
    return {**trainer.validation[-1], "precision": runtime.precision, "grid_weight": config.grid_weight,
            "droplet_weight": config.droplet_weight}


def _with_layout(config: TrainConfig, arch: Architecture) -> TrainConfig:
    """``config`` with the layout of the model it continues where it gives none."""
    return replace(config, width=config.width or arch.width,
                   blocks=arch.blocks if config.blocks is None else config.blocks,
                   kernel=config.kernel or arch.kernel, upsample=config.upsample or arch.upsample)


def _continue(trainer: _Trainer, model: MultiStyleModel, label: str) -> None:
    if trainer.trainable != list(range(trainer.net.count)):
        raise InputError("--init-from continues a whole multi-style training; it does not go with --add-style")
    if ",".join(model.names) != label:
        raise InputError(f"--init-from: {model.source} holds styles {','.join(model.names)}, not {label}: "
                         "give the same paintings (and --name) in the same order")
    trainer.continue_from(model, model.source)


def _names(style_images: list[str | os.PathLike[str]], names: list[str] | None,
           base: MultiStyleModel | None) -> list[str]:
    if not style_images:
        raise InputError("train: at least one painting is needed")
    if base is None and len(style_images) < 2:
        raise InputError("train: a multi-style model needs at least two paintings (or --add-style to a model)")
    chosen = list(names) if names else [Path(p).stem for p in style_images]
    if len(chosen) != len(style_images):
        raise InputError(f"--name: {len(chosen)} names given for {len(style_images)} paintings")
    taken = base.names if base is not None else []
    for i, name in enumerate(chosen):
        if not name or any(c in name for c in ",:/\\") or name != name.strip():
            raise InputError(f"--name: {name!r} cannot name a style (no commas, colons, slashes or outer spaces)")
        if name in chosen[:i] or name in taken:
            raise InputError(f"--name: two styles would be named {name!r}; give distinct names with --name")
    return chosen


def _model(trainer: _Trainer, validation: list[dict[str, float]], names: list[str],
           style_images: list[str | os.PathLike[str]], base: MultiStyleModel | None, photos: Photos,
           source: str) -> MultiStyleModel:
    objective = trainer.target.as_dict()
    entries = list(base.styles) if base is not None else []
    last = validation[-1] if validation else {}
    for index, name, painting in zip(trainer.trainable, names, style_images, strict=True):
        recent = [row["styles"][str(index)] for row in trainer.history[-FINAL_WINDOW:] if str(index) in row["styles"]]
        entries.append(StyleEntry(name, objective, {
            "painting": os.fspath(Path(painting).name),
            "how": "jointly with the convolutions" if base is None else "--add-style (convolutions frozen)",
            "iterations": trainer.iteration,
            "final_loss": sum(recent) / len(recent) if recent else None,
            "validation": last.get(f"total/{index}"),
            "settings": to_dict(trainer.config),
        }))
    info = dict(base.training) if base is not None else _run_info(trainer, photos)
    return MultiStyleModel(trainer.net, entries, info, source)


def _run_info(trainer: _Trainer, photos: Photos) -> dict[str, Any]:
    return {
        "settings": to_dict(trainer.config),
        "iterations": trainer.iteration,
        "seconds": round(trainer.seconds, 1),
        "photos": len(photos.training),
        "held_out": len(photos.held_out),
        "device": str(trainer.runtime.device),
        "precision": trainer.runtime.precision,
        "torch": str(torch.__version__),
        # Every held-out evaluation (iteration, training seconds, losses): the training curve.
        "validation": trainer.validation,
    }

