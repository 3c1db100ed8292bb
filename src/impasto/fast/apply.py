"""Stylising files, folders and videos with a trained network (``apply``): what every front end
(CLI, web studio, job files) calls.

``apply`` expands folders into their images and videos, names the outputs, checks every output
before any work, batches consecutive photos of one size, and writes each file atomically.

Photos go through as numpy arrays. With the automatic back-end, photos in a shipped style (or
mix) run on that model's styles graph (``fast.graph``) with onnxruntime, and torch is not
imported unless ``--size`` or ``--preserve-color`` asks for its resampling or colour code; videos,
model files and the other back-ends run on torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impasto import images, storage
from impasto.config import ApplyConfig
from impasto.errors import InputError
from impasto.events import Callback, CancelToken, Photos, is_cancelled
from impasto.fast.graph import Painter, read_graph, shipped_graph
from impasto.style_spec import GRAPH_SUFFIX, ModelFile, Shipped
from impasto.video.io import VIDEO_SUFFIXES, check_video_output, cv2_module, is_video


@dataclass(frozen=True)
class Written:
    """One output file and how long its input took (per photo of its batch; per video)."""

    source: Path
    output: Path
    seconds: float
    width: int
    height: int
    frames: int = 0
    fps: float = 0.0


def expand_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files to stylise: each path given, with folders replaced by their images and videos."""
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in images.IMAGE_SUFFIXES +
                       VIDEO_SUFFIXES)
        if not found:
            raise InputError(f"{path}: no images or videos in this folder")
        files += found
    return files


def output_paths(paths: Sequence[str | os.PathLike[str]], inputs: list[Path], output: Path, style: str,
                 config: ApplyConfig | None = None) -> list[Path]:
    """Output path of each input: ``output`` itself for one file, else ``output/<name>_<style>.png``
    (``.mp4`` for videos); an ``output`` without a suffix that is not there is a folder too
    (``-o stylised/``). Every output is checked here, before any work (images also for
    ``config``'s bit depth and output profile); then the folder (and any missing parent) is made."""
    single = len(paths) == 1 and not Path(paths[0]).is_dir() and not output.is_dir() and output.suffix
    if single:
        targets = [output]
    else:
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: several inputs need an output folder, not a file")
        targets = [output / f"{p.stem}_{style}{'.mp4' if is_video(p) else '.png'}" for p in inputs]
        clash = next((t for i, t in enumerate(targets) if t in targets[:i]), None)
        if clash is not None:
            raise InputError(f"{clash}: two inputs of the same name would both be written here; rename one")
    for source, target in zip(inputs, targets, strict=True):
        if is_video(source):
            check_video_output(target, source)
        else:
            images.check_output_path(target, inputs, bit_depth=config.bit_depth if config else None,
                                     profile=config.output_profile if config else "source")
    if not single:
        storage.make_folder(output)  # the job file goes in it, whatever is written
    return targets


def apply(
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: ApplyConfig,
    *,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> list[Written]:
    """Stylise photos, videos and folders of them with ``config.style``'s network; write to
    ``output`` (a file for one input, else a folder). Returns what was written, in input order
    for photos, then videos. ``cancel`` stops between batches and frames; what was written stays."""
    inputs = expand_inputs(paths)
    videos = any(map(is_video, inputs))
    if videos:
        cv2_module()  # refuses, before any file is written, a video without the video extra
    graph = _graph_painter(config, videos)
    if graph is not None:
        style, painter = graph
        outputs = output_paths(paths, inputs, Path(output), style, config)
        return _apply_to_photos(painter, config, list(zip(inputs, outputs, strict=True)), on_event, cancel)
    return _apply_with_torch(paths, inputs, Path(output), config, on_event, cancel)


def _graph_painter(config: ApplyConfig, videos: bool) -> tuple[str, Painter] | None:
    """The style's name and its painter on a styles graph: a graph file given as the model, or,
    with the automatic back-end, the graph of the shipped model holding the style or mix."""
    spec = config.spec
    if isinstance(spec, ModelFile) and spec.path.suffix.lower() == GRAPH_SUFFIX:
        if videos or config.backend != "auto":
            raise InputError(f"{spec.path}: a styles graph paints photos with --backend auto; for videos and the "
                             "other back-ends, give its .pt model", field="backend",
                             problem="a styles graph paints photos with the automatic back-end")
        graph = read_graph(spec.path)
        mix = graph.mix_of(spec.mix)
    elif isinstance(spec, Shipped) and config.backend == "auto" and not videos:
        mix, graph = spec.mix, shipped_graph({name for name, _ in spec.mix})
        if graph is None:
            return None
    else:
        return None
    return "+".join(name for name, _ in mix), graph.painter(mix, spec.strength)


def _apply_with_torch(paths: Sequence[str | os.PathLike[str]], inputs: list[Path], output: Path,
                      config: ApplyConfig, on_event: Callback | None, cancel: CancelToken | None) -> list[Written]:
    import torch

    from impasto.fast.backends import make_backend
    from impasto.fast.frames import stylize_video
    from impasto.fast.styles import load_style
    from impasto.fast.stylize import stylize

    model = load_style(config.spec)
    outputs = output_paths(paths, inputs, output, model.style, config)
    backend = make_backend(config.backend, model)
    pairs = list(zip(inputs, outputs, strict=True))

    def painter(batch: np.ndarray) -> np.ndarray:
        return stylize(model, torch.from_numpy(batch), backend=backend).numpy()

    written = _apply_to_photos(painter, config, [(i, o) for i, o in pairs if not is_video(i)], on_event, cancel)
    for source, out in pairs:
        if is_video(source) and not is_cancelled(cancel):
            start = time.perf_counter()
            video = stylize_video(model, source, out, backend=backend, size=config.size,
                                  preserve_color=config.preserve_color, batch_size=config.batch_size,
                                  temporal=config.temporal, on_event=on_event, cancel=cancel)
            written.append(Written(source, out, time.perf_counter() - start, video.width, video.height, video.frames,
                                   video.fps))
    return written


def _apply_to_photos(
    painter: Painter, config: ApplyConfig, pairs: list[tuple[Path, Path]], on_event: Callback | None,
    cancel: CancelToken | None,
) -> list[Written]:
    """Stylise photos, stacking consecutive ones of one size into batches of ``batch_size``.

    The network sees each photo in sRGB; with ``preserve_color`` the result takes the network's
    luminance and the photo's colours in the photo's own colour space, so that colours outside
    sRGB (a Display P3 photo's) come back as they were. Each is written as ``images.save_photo``
    writes an image made from a photo: in its profile, with its EXIF, at its bit depth. A
    :class:`~impasto.events.Photos` event follows each batch written."""
    pending: list[tuple[Path, Path, np.ndarray, np.ndarray, images.PhotoInfo]] = []
    written: list[Written] = []
    began = time.perf_counter()

    def flush() -> None:
        if not pending:
            return
        start = time.perf_counter()
        result = painter(np.concatenate([image for _, _, image, _, _ in pending]))
        each = (time.perf_counter() - start) / len(pending)
        for (source, out, _, photo, info), image in zip(pending, result, strict=True):
            space = info.icc_profile if config.preserve_color else None
            styled = _with_colours(image[None], photo) if config.preserve_color else image[None]
            images.save_photo(styled, out, info, space=space, profile=config.output_profile,
                              bit_depth=config.bit_depth, quality=config.quality)
            written.append(Written(source, out, each, image.shape[-1], image.shape[-2]))
        if on_event is not None:
            on_event(Photos(len(written), len(pairs), time.perf_counter() - began, {}, pending[-1][0].name))
        pending.clear()

    for source, out in pairs:
        if is_cancelled(cancel):
            break
        photo, info = images.read_photo(source)
        if config.size:
            photo = images.resize_long_side(photo, config.size)
        image = images.to_srgb(photo, info.icc_profile, os.fsdecode(source))
        if pending and (len(pending) == config.batch_size or pending[0][2].shape != image.shape):
            flush()
        pending.append((source, out, image, photo, info))
    if not is_cancelled(cancel):
        flush()
    return written


def _with_colours(image: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The network's luminance with the photo's colours (``colour.combine_luminance``)."""
    import torch

    from impasto import colour

    combined = colour.combine_luminance(colour.luminance(torch.from_numpy(image)), torch.from_numpy(photo))
    return combined.numpy()
