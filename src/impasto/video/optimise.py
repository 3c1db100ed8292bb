"""Gatys et al. style transfer for video, made temporally consistent as in Ruder, Dosovitskiy &
Brox (GCPR 2016), "Artistic style transfer for videos".

The first frame is optimised as a still. Each later frame t starts from the previous result
warped onto it by optical flow (the paper's "prevWarped" initialisation) and is optimised with
the paper's short-term temporal loss added to content and style:

    L_temporal(x) = 1/D Σ_k c_k (x_k − ω_k)²

with ω the warped previous result, c the reliability mask (forward–backward consistency and
motion boundaries, :func:`impasto.video.flow.reliable`) and D the number of values (pixels ×
channels), pixels in 0–255 as in the paper. Departures: OpenCV's DIS flow instead of
DeepFlow/EpicFlow; no long-term term or multi-pass algorithm (the paper's §3.2–3.3); the mask
also drops pixels whose flow leaves the frame.

Resumable: every finished frame is written as a PNG into a work folder next to the output
(``NAME.frames/``) with the run's settings (seed included); a stopped run given the same
command continues after the last finished frame and redoes none. The folder is removed once
the video is written.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from impasto import images, storage
from impasto.config import VideoTransferConfig, to_dict
from impasto.errors import InputError
from impasto.events import Callback, CancelToken, Frames, is_cancelled
from impasto.gatys.api import transfer
from impasto.losses import Term
from impasto.video.flow import Motion
from impasto.video.io import VideoReader, VideoWriter, check_video_output, to_tensor
from impasto.video.temporal import warp_sharp

SETTINGS = "settings.json"


@dataclass(frozen=True)
class VideoTransferResult:
    frames: int
    resumed: int
    fps: float
    seconds: float
    complete: bool
    audio: bool
    work: Path
    seed: int


def temporal_loss(warped: Tensor, mask: Tensor) -> Callable[[Mapping[str, Tensor], Tensor], Tensor]:
    """Ruder et al.'s short-term temporal loss against ``warped`` where ``mask`` is 1, at
    whatever size the optimised image has (both are resized to it)."""

    def loss(features: Mapping[str, Tensor], image: Tensor) -> Tensor:
        size = image.shape[-2:]
        target = warped if warped.shape[-2:] == size else F.interpolate(warped, size=size, mode="bilinear")
        weight = mask if mask.shape[-2:] == size else F.interpolate(mask, size=size, mode="bilinear")
        target, weight = target.to(image.device), weight.to(image.device)
        return (weight * (image.float() - target).mul(255.0).pow(2)).mean()

    return loss


def work_folder(output: Path) -> Path:
    return output.with_name(f"{output.stem}.frames")


def frame_path(work: Path, index: int) -> Path:
    return work / f"frame_{index:06d}.png"


def _settings(source: Path, styles: Sequence[Path], config: VideoTransferConfig, seed: int) -> dict[str, object]:
    run = replace(config.transfer, seed=seed)
    return {"source": os.fspath(source.absolute()), "styles": [os.fspath(s.absolute()) for s in styles],
            "transfer": to_dict(run), "temporal": config.temporal, "temporal_weight": config.temporal_weight,
            "flow": config.flow}


def _open_work(work: Path, source: Path, styles: Sequence[Path], config: VideoTransferConfig) -> int:
    """Create the work folder, or check that the one there was made with these settings; the
    run's seed (the given one, the recorded one, or a new draw)."""
    recorded = work / SETTINGS
    if recorded.is_file():
        previous = storage.read_json(recorded)
        seed = config.transfer.seed if config.transfer.seed is not None else previous["transfer"]["seed"]
        wanted = _settings(source, styles, config, seed)
        for key, value in wanted.items():
            if previous.get(key) != value:
                raise InputError(f"{work}: holds frames made with other settings ({key} differs); run the "
                                 "same command to continue, or delete the folder to start again")
        return seed
    if work.exists() and any(work.iterdir()):
        raise InputError(f"{work}: exists and is not an impasto work folder; move it away")
    seed = config.transfer.seed if config.transfer.seed is not None else secrets.randbits(31)
    storage.make_folder(work)
    storage.write_json(recorded, _settings(source, styles, config, seed))
    return seed


def transfer_video(
    source: str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: VideoTransferConfig | None = None,
    *,
    on_event: Callback | None = None,
    cancel: CancelToken | None = None,
) -> VideoTransferResult:
    """Stylise every frame of ``source`` after ``styles`` (see the module's docstring) into
    ``output``. ``on_event`` receives a :class:`~impasto.events.Frames` after each frame;
    ``cancel`` stops after the current frame (the finished ones stay in the work folder and no
    video is written). Raises InputError for unusable inputs, TransferInterrupted on Ctrl-C."""
    config = config or VideoTransferConfig()
    source, output = Path(source), check_video_output(Path(output), Path(source))
    style_paths = [Path(s) for s in styles]
    style_images = [images.load_image(s, max_pixels=config.transfer.max_pixels) for s in style_paths]
    reader = VideoReader(source)
    work = work_folder(output)
    try:
        seed = _open_work(work, source, style_paths, config)
        run = replace(config.transfer, seed=seed)
        done, resumed, start = _stylise_frames(reader, style_images, work, replace(config, transfer=run), on_event,
                                               cancel)
    finally:
        reader.close()
    complete = not is_cancelled(cancel)
    if not done and complete:
        raise InputError(f"{source}: no frame could be decoded")
    audio = _write_video(work, done, output, reader.fps, source) if complete else False
    if complete:
        shutil.rmtree(work)
    return VideoTransferResult(done, resumed, reader.fps, time.perf_counter() - start, complete, audio, work, seed)


def _stylise_frames(
    reader: VideoReader, styles: list[Tensor], work: Path, config: VideoTransferConfig,
    on_event: Callback | None, cancel: CancelToken | None,
) -> tuple[int, int, float]:
    """Optimise the frames not yet in ``work``; returns (frames done, of which resumed, start time)."""
    motion = Motion(config.flow) if config.temporal else None
    previous: Tensor | None = None
    done = resumed = 0
    start = time.perf_counter()
    for batch in reader.batches(1):
        frame = images.resize_long_side(to_tensor(batch), config.transfer.size)
        step = motion.step(frame) if motion is not None else None
        path = frame_path(work, done)
        if path.is_file():
            previous, resumed = None, resumed + 1
        else:
            if is_cancelled(cancel):
                break
            if step is not None and previous is None and done:
                previous = images.load_image(frame_path(work, done - 1))
            previous = _one_frame(frame, styles, config, step, previous, cancel)
            if previous is None:
                break
            images.save_image(previous, path)
        done += 1
        if on_event is not None:
            on_event(Frames(done, reader.total, time.perf_counter() - start, {}, reader.source.name))
    return done, resumed, start


def _one_frame(
    frame: Tensor, styles: list[Tensor], config: VideoTransferConfig, step: tuple[Tensor, Tensor] | None,
    previous: Tensor | None, cancel: CancelToken | None,
) -> Tensor | None:
    """One frame's result, or None when cancelled before it finished."""
    terms: list[Term] = []
    init = None
    if step is not None and previous is not None:
        backward, mask = step
        # A sharp (Lanczos) warp: a bilinear one blurs the strokes a little at every frame, and
        # the temporal term then holds each frame to that blur, so the picture dissolves.
        init = warp_sharp(previous, backward)
        if config.temporal_weight > 0:
            terms.append(Term("temporal", config.temporal_weight, temporal_loss(init, mask)))
    result = transfer(frame, styles, config.transfer, cancel=cancel, extra_terms=terms, init_image=init)
    return result.tensor if result.complete else None


def _write_video(work: Path, frames: int, output: Path, fps: float, source: Path) -> bool:
    writer = VideoWriter(output, fps)
    try:
        for index in range(frames):
            writer.write(images.load_image(frame_path(work, index)))
        return writer.commit(audio_from=source)
    finally:
        writer.close()
