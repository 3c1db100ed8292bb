"""The experiments of Gatys, Ecker & Bethge (CVPR 2016) as reproducible figures.

Each function runs a set of transfers and writes everything into one output folder (created
if needed; nothing is written elsewhere): the images, the figures, ``results.json`` (settings,
per-run seconds, losses and histories) and an ``index.html`` that shows them. Each returns the
paths of the files it wrote. Callers that want progress pass ``on_event``, which receives every
run's :class:`~impasto.events.Iteration` events in turn (each run counts from step 1 again).

Departures from the paper are those of :class:`impasto.TransferConfig` (max pooling and the
coarse-to-fine schedule by default; pass ``base=TransferConfig(pooling="avg", scales=1)`` and
some 500 iterations for the paper's settings).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from impasto import images
from impasto.config import (
    ADAM_LEARNING_RATES,
    COMPARE_ITERATIONS,
    COMPARE_SIZE,
    PAPER_CONTENT_LAYERS,
    PAPER_STYLE_LAYERS,
    TRADEOFF_RATIOS,
    TransferConfig,
    to_dict,
)
from impasto.errors import InputError
from impasto.events import Callback
from impasto.gatys.api import Result, evaluate, transfer
from impasto.gatys.schedule import plan
from impasto.research import report
from impasto.research.report import HtmlFigure, Table
from impasto.storage import write_json

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Painting:
    """A style image of the paper's Fig. 3 and the α/β ratio the paper used with it."""

    key: str
    file: str
    artist: str
    title: str
    ratio: float
    reference: str


FIG3_CONTENT = "tubingen.jpg"
FIG3_PAINTINGS = (
    Painting("shipwreck", "shipwreck.jpg", "Turner", "The Shipwreck of the Minotaur", 1e-3,
             "neural-style_tubingen_shipwreck.png"),
    Painting("starry_night", "starry_night.jpg", "van Gogh", "The Starry Night", 1e-3,
             "neural-style_tubingen_starry.png"),
    Painting("the_scream", "the_scream.jpg", "Munch", "The Scream", 1e-3, "neural-style_tubingen_scream.png"),
    Painting("seated_nude", "seated_nude.jpg", "Picasso", "Femme nue assise", 8e-4,
             "neural-style_tubingen_seated_nude.png"),
    Painting("composition_vii", "composition_vii.jpg", "Kandinsky", "Composition VII", 5e-3,
             "neural-style_tubingen_composition_vii.png"),
)
# The paper's Fig. 4 columns: style matched on conv1_1, then conv1_1 to conv2_1, ... to conv5_1.
LAYER_SETS = tuple(PAPER_STYLE_LAYERS[:k] for k in range(1, len(PAPER_STYLE_LAYERS) + 1))
LOSS_LEVELS = (2.0, 1.2, 1.05)
INITS = ("noise", "content", "style")
# TRADEOFF_RATIOS, ADAM_LEARNING_RATES, COMPARE_SIZE and COMPARE_ITERATIONS, defaults that the
# figure commands and their job files share, come from ``impasto.config``, which needs no torch.


@dataclass(frozen=True)
class Run:
    """One finished transfer, saved as ``file``; ``fp32`` is its paper objective in float32."""

    name: str
    label: str
    file: Path
    result: Result
    fp32: dict[str, float] | None = None

    @property
    def best_total(self) -> float:
        return self.result.loss

    def record(self, folder: Path) -> dict[str, Any]:
        settings = self.result.config
        config = to_dict(settings)
        return {
            "name": self.name,
            "label": self.label,
            "file": self.file.relative_to(folder).as_posix(),
            "seconds": round(self.result.seconds, 3),
            "device": self.result.device,
            "precision": self.result.precision,
            "schedule": [[scale.size, scale.iterations] for scale in plan(settings)],
            "last": {k: v for k, v in self.result.history[-1].items() if k in report.LOSS_TERMS},
            "best_total": self.best_total,
            "fp32": self.fp32,
            "config": config,
            "history": self.result.history,
        }


# --- shared helpers ------------------------------------------------------------------------


def run_one(name: str, label: str, content: Tensor, styles: Sequence[Tensor], config: TransferConfig,
            folder: Path, on_event: Callback | None = None, *, fp32: bool = False) -> Run:
    """Run one transfer, save its image as ``folder/name.png`` and, if asked, its float32 loss."""
    result = transfer(content, list(styles), config, on_event)
    path = folder / f"{name}.png"
    images.save_image(result.tensor, path)
    loss = evaluate(result.tensor, content, list(styles), config).as_floats() if fp32 else None
    return Run(name, label, path, result, loss)


def _prepare(out_dir: PathLike) -> Path:
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the output folder ({exc.strerror or exc})") from None
    return folder


def _config(base: TransferConfig | None, size: int, iterations: int | None, seed: int,
            **changes: Any) -> TransferConfig:
    """``base`` (or the defaults) with the experiment's settings; ``iterations=None`` keeps the base's."""
    config = base or TransferConfig()
    return replace(config, size=size, iterations=config.iterations if iterations is None else iterations, seed=seed,
                   **changes)


def _load_pair(content: PathLike | Tensor, style: PathLike | Tensor) -> tuple[Tensor, Tensor]:
    """Both inputs, loaded once before any run so that a bad file fails before any work."""
    return _load(content), _load(style)


def _load(source: PathLike | Tensor) -> Tensor:
    return source if isinstance(source, Tensor) else images.load_image(source)


def _finish(folder: Path, written: list[Path], experiment: str, title: str, intro: str,
            figures: Sequence[HtmlFigure], runs: Sequence[Run], extra: dict[str, Any],
            tables: Sequence[Table] = ()) -> list[Path]:
    """Write results.json and index.html, and return every file written."""
    results = folder / "results.json"
    write_json(results, {"experiment": experiment, **extra, "runs": [r.record(folder) for r in runs]})
    shown = {f.file for f in figures}
    labels = {r.file.name: r.label for r in runs}
    links = [HtmlFigure(p.name, f"{p.name}: {labels.get(p.name, 'image')}") for p in written if p.name not in shown]
    links.append(HtmlFigure("results.json", "results.json: settings, seconds, losses and histories of every run"))
    index = report.write_index(folder, title, figures, intro=intro, tables=tables, links=links)
    return [*written, results, index]


def _seconds_table(runs: Sequence[Run]) -> Table:
    # The history's loss is computed in the network's precision; the fp32 column in float32.
    fp32 = all(r.fp32 for r in runs)
    header = ("run", "seconds", "loss", *(("fp32 loss",) if fp32 else ()))
    rows = [(r.label, f"{r.result.seconds:.1f}", f"{r.best_total:.4g}",
             *((f"{r.fp32['total']:.4g}",) if fp32 and r.fp32 else ())) for r in runs]
    return Table("runs", header, rows)


def _curves_and_row(folder: Path, runs: Sequence[Run], row_file: str,
                    caption: str) -> tuple[report.GridLayout, list[HtmlFigure], list[Path]]:
    """The runs' images in a row and their losses in ``loss.png``: the figures of a comparison."""
    report.comparison_curves({r.label: r.result.history for r in runs}, folder / "loss.png")
    layout = report.image_grid([[r.result.tensor for r in runs]], folder / row_file, titles=[[r.label for r in runs]])
    figures = [HtmlFigure(row_file, caption),
               HtmlFigure("loss.png", "Objective (weighted total loss) against iterations and wall-clock seconds.")]
    return layout, figures, [*(r.file for r in runs), folder / row_file, folder / "loss.png"]


def _warm_up(content: Tensor, style: Tensor, config: TransferConfig) -> None:
    """Two discarded iterations, so that one-time costs (weights, kernel selection, caches)
    do not burden whichever run comes first when runs are compared by their seconds."""
    transfer(content, [style], replace(config, iterations=2))


# --- Fig. 3: the gallery -------------------------------------------------------------------


def gallery(images_dir: PathLike, out_dir: PathLike, size: int = 512, iterations: int | None = None, seed: int = 0,
            with_reference: bool = False, *, base: TransferConfig | None = None,
            on_event: Callback | None = None) -> list[Path]:
    """The paper's Fig. 3: the Neckarfront photo (A) in the styles of five paintings (B-F).

    Reads ``content/tubingen.jpg`` and ``style/<painting>.jpg`` under ``images_dir``; α/β is
    1e-3 for B-D, 8e-4 for E and 5e-3 for F, content on conv4_2 and style on conv1_1 ... conv5_1
    (after their ReLUs). The schedule of scales is ``base``'s (TransferConfig's coarse-to-fine
    one by default) and ``iterations`` those of the final scale (default: ``base``'s). Writes
    ``A_photograph.png``, one PNG per painting, ``gallery.png`` and ``gallery.jpg`` (3 x 2
    panels, each painting inset bottom left as in the paper) and, with ``with_reference``,
    ``reference.png``: ours above neural-style's published results.
    """
    content_path, style_paths, reference_paths = _gallery_files(Path(images_dir), with_reference)
    shown = [p for p in FIG3_PAINTINGS if p.key in style_paths]
    configs = [_config(base, size, iterations, seed, content_weight=1.0, style_weight=1.0 / painting.ratio,
                       content_layers=PAPER_CONTENT_LAYERS, style_layers=PAPER_STYLE_LAYERS)
               for painting in shown]
    content = images.load_image(content_path)
    paintings = {p.key: images.load_image(style_paths[p.key]) for p in shown}
    folder = _prepare(out_dir)
    runs = {painting.key: run_one(f"{_letter(painting)}_{painting.key}", f"{_letter(painting)} {painting.artist}",
                                  content, [paintings[painting.key]], config, folder, on_event, fp32=True)
            for painting, config in zip(shown, configs, strict=True)}
    figure, files, grids = _gallery_figure(folder, content, runs, paintings)
    figures, written = [figure], [*(r.file for r in runs.values()), *files]
    if reference_paths:
        figure, grids["reference"] = _reference_figure(folder, runs, reference_paths)
        figures.append(figure)
        written.append(folder / figure.file)
    missing = [p.file for p in FIG3_PAINTINGS if p.key not in style_paths]
    extra = {"images_dir": str(images_dir), "size": size, "iterations": configs[0].iterations, "seed": seed,
             "ratios": {p.key: p.ratio for p in shown}, "grids": grids, "missing": missing}
    intro = ("Gatys et al. (2016), Fig. 3: the photograph (A) rendered in the styles of five paintings, "
             "each shown in the bottom-left corner of its panel.")
    if missing:
        intro += (f" Not in {images_dir}: {', '.join(missing)} (left blank; put your own copy in its style/ "
                  "folder to render it).")
    return _finish(folder, written, "gallery", "Fig. 3: style transfer gallery", intro, figures, list(runs.values()),
                   extra,
                   [_seconds_table(list(runs.values()))])


def _letter(painting: Painting) -> str:
    """The painting's panel in the paper's Fig. 3: B to F."""
    return "BCDEF"[FIG3_PAINTINGS.index(painting)]


def _gallery_files(root: Path, with_reference: bool) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """The gallery's input files, all checked before anything runs: the photo, and each painting
    the folder holds (by key; at least one) with, for ``with_reference``, its reference output.
    A missing painting leaves its panel blank (the shipped examples lack Picasso's, which is
    still protected in the EU)."""
    if not root.is_dir():
        raise InputError(f"{root}: images folder not found (it should hold content/ and style/)")
    content = root / "content" / FIG3_CONTENT
    if not content.is_file():
        raise InputError(f"{content}: file not found (the gallery needs it under {root})")
    styles = {p.key: root / "style" / p.file for p in FIG3_PAINTINGS if (root / "style" / p.file).is_file()}
    if not styles:
        names = ", ".join(p.file for p in FIG3_PAINTINGS)
        raise InputError(f"{root / 'style'}: none of the paper's paintings found (the gallery needs one of {names})")
    references = {p.key: root / "reference" / p.reference for p in FIG3_PAINTINGS if p.key in styles and with_reference}
    for path in references.values():
        if not path.is_file():
            raise InputError(f"{path}: file not found (--with-reference needs it under {root})")
    return content, styles, references


def _gallery_figure(folder: Path, content: Tensor, runs: Mapping[str, Run],
                    paintings: Mapping[str, Tensor]) -> tuple[HtmlFigure, list[Path], dict[str, Any]]:
    """The 3 x 2 grid (photo, then each result with its painting inset; a blank panel for a
    painting that was not there), as PNG and JPEG."""
    height, width = next(iter(runs.values())).result.tensor.shape[-2:]
    photo = images.resize_to(content, height, width)
    photo_file = folder / "A_photograph.png"
    images.save_image(photo, photo_file)
    panels: list[Tensor | None] = [photo]
    titles = ["A photograph"]
    for painting in FIG3_PAINTINGS:
        run = runs.get(painting.key)
        panels.append(report.with_inset(run.result.tensor, paintings[painting.key]) if run else None)
        titles.append(run.label if run else f"{_letter(painting)} {painting.artist} (not in style/)")
    layout = report.image_grid([panels[:3], panels[3:]], folder / "gallery.png", titles=[titles[:3], titles[3:]])
    images.save_image(images.load_image(folder / "gallery.png"), folder / "gallery.jpg", quality=92)
    caption = "; ".join(f"{runs[p.key].label}: {p.title} (α/β = {p.ratio:g})" for p in FIG3_PAINTINGS if p.key in runs)
    files = [photo_file, folder / "gallery.png", folder / "gallery.jpg"]
    return HtmlFigure("gallery.jpg", f"A: the photograph. {caption}."), files, {"gallery": layout.as_dict()}


def _reference_figure(folder: Path, runs: Mapping[str, Run],
                      references: Mapping[str, Path]) -> tuple[HtmlFigure, dict[str, Any]]:
    """``reference.png``: our results above neural-style's, resized to our panels."""
    shown = [p for p in FIG3_PAINTINGS if p.key in runs]
    ours = [runs[p.key].result.tensor for p in shown]
    height, width = ours[0].shape[-2:]
    theirs = [images.resize_to(images.load_image(references[p.key]), height, width) for p in shown]
    layout = report.image_grid([ours, theirs], folder / "reference.png", row_labels=("ours", "neural-style"),
                               col_labels=[p.artist for p in shown])
    caption = ("Ours (top) beside the published outputs of jcjohnson/neural-style (bottom; 512 px, L-BFGS, "
               "1000 iterations), resized to our panels.")
    return HtmlFigure("reference.png", caption), layout.as_dict()


# --- L-BFGS against Adam -------------------------------------------------------------------


def compare_optimizers(content: PathLike | Tensor, style: PathLike | Tensor, out_dir: PathLike,
                       size: int = COMPARE_SIZE, iterations: int = COMPARE_ITERATIONS, seed: int = 0,
                       adam_lrs: Sequence[float] = ADAM_LEARNING_RATES, *, levels: Sequence[float] = LOSS_LEVELS,
                       warm_up: bool = True, base: TransferConfig | None = None,
                       on_event: Callback | None = None) -> list[Path]:
    """L-BFGS (the paper's optimiser) against Adam at each learning rate in ``adam_lrs``.

    All runs start from the same seeded noise at one scale and size. Plots the objective (the
    history's total) against iterations and seconds, and tabulates the seconds each run needs to
    reach ``levels`` times the lowest loss any run reached. ``warm_up`` first runs two discarded
    iterations so that one-time costs (kernel selection, caches) do not burden the first run.
    """
    config = _config(base, size, iterations, seed, scales=1, init="noise")
    variants = {"lbfgs": ("L-BFGS", replace(config, optimizer="lbfgs", learning_rate=None))}
    for lr in adam_lrs:
        variants[f"adam_lr{lr:g}"] = (f"Adam lr {lr:g}", replace(config, optimizer="adam", learning_rate=lr))
    c, s = _load_pair(content, style)
    folder = _prepare(out_dir)
    if warm_up:
        _warm_up(c, s, config)
    runs = [run_one(name, label, c, [s], cfg, folder, on_event, fp32=True) for name, (label, cfg) in variants.items()]
    layout, figures, written = _curves_and_row(folder, runs, "outputs.png",
                                               "Final images, same start, same iterations.")
    table = time_to_loss(runs, levels)
    extra = {"size": size, "iterations": iterations, "seed": seed, "adam_lrs": list(adam_lrs),
             "levels": list(levels), "table": [list(map(str, r)) for r in table.rows],
             "table_markdown": table.markdown(), "grid": layout.as_dict()}
    return _finish(folder, written, "compare_optimizers", "L-BFGS vs Adam", _intro(config, "noise"), figures, runs,
                   extra, [table, _seconds_table(runs)])


def time_to_loss(runs: Sequence[Run], levels: Sequence[float]) -> Table:
    """Seconds (and iterations) each run takes to reach each multiple of the lowest loss reached."""
    best = min(run.best_total for run in runs)
    header = ("run", *(f"{level:g}x best ({level * best:.3g})" for level in levels))
    rows = []
    for run in runs:
        cells = [run.label]
        for level in levels:
            hit = next((r for r in run.result.history if r["total"] <= level * best), None)
            cells.append(f"{hit['seconds']:.2f} s (it {hit['iteration']})" if hit else "not reached")
        rows.append(tuple(cells))
    return Table(f"seconds to reach a loss (best reached: {best:.4g})", header, rows)


def _intro(config: TransferConfig, init: str) -> str:
    return (f"{config.size} px, {config.iterations} iterations, one scale, {init} start (seed {config.seed}), "
            f"α/β = {config.content_weight / config.style_weight:g}, {config.pooling} pooling.")


# --- Fig. 4: content against style ---------------------------------------------------------


def tradeoff(content: PathLike | Tensor, style: PathLike | Tensor, out_dir: PathLike, size: int = 512,
             iterations: int | None = None, seed: int = 0, ratios: Sequence[float] = TRADEOFF_RATIOS, *,
             layer_sets: Sequence[Sequence[str]] = LAYER_SETS, base: TransferConfig | None = None,
             on_event: Callback | None = None) -> list[Path]:
    """The paper's Fig. 4: one row per α/β ratio, one column per set of style layers
    (relu1_1, relu1_1 to relu2_1, ..., relu1_1 to relu5_1); the paper draws the transpose.
    Schedule and ``iterations`` as in :func:`gallery`."""
    if not ratios or not layer_sets or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise InputError(f"--ratios: need at least one positive α/β ratio and one layer set, got {list(ratios)}")
    configs = [[_config(base, size, iterations, seed, content_weight=1.0, style_weight=1.0 / ratio,
                        style_layers=tuple(layers), style_layer_weights=None) for layers in layer_sets]
               for ratio in ratios]
    c, s = _load_pair(content, style)
    folder = _prepare(out_dir)
    runs = [run_one(f"ratio{ratio:g}_{cfg.style_layers[-1]}", f"α/β {ratio:g}, {_layers_label(cfg.style_layers, '…')}",
                    c, [s], cfg, folder, on_event)
            for ratio, row in zip(ratios, configs, strict=True) for cfg in row]
    cells = [[r.result.tensor for r in runs[i * len(layer_sets):(i + 1) * len(layer_sets)]] for i in range(len(ratios))]
    layout = report.image_grid(cells, folder / "tradeoff.png", row_labels=[f"α/β = {r:g}" for r in ratios],
                               col_labels=[_layers_label(layers) for layers in layer_sets])
    figures = [HtmlFigure("tradeoff.png", "Rows: the content/style ratio α/β. Columns: the style layers matched. "
                          "Larger α/β keeps more of the photograph; deeper layers give larger-scale structure.")]
    extra = {"size": size, "iterations": configs[0][0].iterations, "seed": seed, "ratios": list(ratios),
             "layer_sets": [list(x) for x in layer_sets], "grid": layout.as_dict()}
    written = [*(r.file for r in runs), folder / "tradeoff.png"]
    return _finish(folder, written, "tradeoff", "Fig. 4: content/style trade-off", "", figures, runs, extra,
                   [_seconds_table(runs)])


def _layers_label(layers: Sequence[str], joint: str = "…\n") -> str:
    return layers[0] if len(layers) == 1 else f"{layers[0]}{joint}{layers[-1]}"


# --- initialisation ------------------------------------------------------------------------


def compare_init(content: PathLike | Tensor, style: PathLike | Tensor, out_dir: PathLike,
                 size: int = COMPARE_SIZE, iterations: int = COMPARE_ITERATIONS, seed: int = 0, *,
                 warm_up: bool = True, base: TransferConfig | None = None,
                 on_event: Callback | None = None) -> list[Path]:
    """White noise (the paper's start) against starting from the photograph or the painting,
    at equal iterations and one scale, so that the start is the only difference."""
    configs = {init: _config(base, size, iterations, seed, scales=1, init=init) for init in INITS}
    c, s = _load_pair(content, style)
    folder = _prepare(out_dir)
    if warm_up:
        _warm_up(c, s, configs["noise"])
    runs = [run_one(f"init_{init}", f"{init} start", c, [s], config, folder, on_event)
            for init, config in configs.items()]
    layout, figures, written = _curves_and_row(folder, runs, "init.png",
                                               "The results after equal iterations from each start.")
    extra = {"size": size, "iterations": iterations, "seed": seed, "grid": layout.as_dict()}
    return _finish(folder, written, "compare_init", "Initialisation: noise, photograph or painting",
                   _intro(runs[0].result.config, "each"), figures, runs, extra, [_seconds_table(runs)])

