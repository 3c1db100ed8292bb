"""Reading and writing video with OpenCV (the ``video`` extra, with PyAV), frame batches as tensors.

Frames are decoded by OpenCV (``cv2.VideoCapture``) and encoded as H.264 by PyAV at a constant
rate factor when the ``video`` extra is installed, else as MPEG-4
Part 2 (``mp4v``, the codec every OpenCV build can write) by ``cv2.VideoWriter``, which takes no
quality setting (see ``CRF`` for what that costs). OpenCV drops the sound, which
``commit(audio_from=...)`` muxes back in with PyAV (see :mod:`impasto.video.audio`). The
writer writes a hidden temporary file next to the output and renames it when committed, so a
failed run leaves no partial video and an existing file untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from impasto import storage
from impasto.errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")
# What the writer can produce: the container follows the output's extension.
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_video_output(path: Path, source: Path) -> Path:
    """Refuse, before any work, an output the writer cannot produce or that would overwrite the input."""
    return storage.check_output_path(path, [source], OUTPUT_SUFFIXES)


def partial_files(output: Path) -> tuple[Path, Path]:
    """The hidden files a writer of ``output`` keeps until its ``commit``: the frames, and the
    frames with the sound. A writer killed mid-write leaves them; nothing else does."""
    return (output.with_name(f".{output.stem}.partial{output.suffix}"),
            output.with_name(f".{output.stem}.audio{output.suffix}"))


def cv2_module() -> Any:
    try:
        import cv2
    except ImportError:
        raise InputError("video needs OpenCV and PyAV (which keeps the sound): pip install 'impasto[video]'") from None
    return cv2


def to_tensor(frames: list[np.ndarray]) -> Tensor:
    """OpenCV's BGR uint8 frames as an RGB float batch (B, 3, H, W) in [0, 1]."""
    import torch  # here: checking and naming videos needs no torch

    batch = np.stack(frames)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().div_(255.0)


def to_frames(batch: Tensor) -> np.ndarray:
    """An RGB batch in [0, 1] as OpenCV's BGR uint8 frames."""
    import torch

    data = batch.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(data[..., ::-1])


class VideoReader:
    """A video's frames in batches; ``fps`` and ``total`` (0 when the container does not say)."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.cv2 = cv2_module()
        self.source = Path(source)
        if not self.source.is_file():
            raise InputError(f"{self.source}: video file not found" if not self.source.exists()
                             else f"{self.source}: not a file")
        self.capture = self.cv2.VideoCapture(os.fspath(self.source))
        if not self.capture.isOpened():
            self.capture.release()
            raise InputError(f"{self.source}: cannot be read as a video")
        fps = self.capture.get(self.cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else 25.0
        self.total = max(0, int(self.capture.get(self.cv2.CAP_PROP_FRAME_COUNT)))
        # The index of the next frame to be read.
        self.position = 0

    def skip(self, count: int) -> int:
        """Pass over the next ``count`` frames; returns how many there were. They are decoded
        (``grab``), not sought to: seeking lands on the key frame before the one asked for in some
        containers, and a segment of a clip must start on its exact frame."""
        skipped = 0
        while skipped < count and self.capture.grab():
            skipped += 1
        self.position += skipped
        return skipped

    def batches(self, size: int, count: int | None = None) -> Iterator[list[np.ndarray]]:
        """Frames in lists of up to ``size``, ``count`` frames at most (None: to the end); a
        frame of another size than the first is an InputError (the writer and the flow need one
        size throughout). The lists end on multiples of ``size`` counted from the clip's first
        frame: after :meth:`skip`, a segment's frames are grouped as a run over the whole clip
        groups them, and so go through a network in the same batches (whose arithmetic, down to
        the last bit, can depend on the batch's size)."""
        shape: tuple[int, ...] | None = None
        end = None if count is None else self.position + count
        while True:
            frames = []
            room = size - self.position % size
            while len(frames) < room and (end is None or self.position < end):
                ok, frame = self.capture.read()
                if not ok:
                    break
                shape = shape or frame.shape
                if frame.shape != shape:
                    raise InputError(f"{self.source}: frame {self.position} is {frame.shape[1]}x{frame.shape[0]}, "
                                     f"the first was {shape[1]}x{shape[0]}; the frame size must not change")
                frames.append(frame)
                self.position += 1
            if not frames:
                return
            yield frames

    def close(self) -> None:
        self.capture.release()


# H.264 (libx264, in PyAV's wheels) at a constant rate factor of 10, 4:2:0, tuned for grain.
# OpenCV's writer takes no quality setting and codes at about one bit per pixel, which blurs
# brush strokes, and blurs temporally consistent output most: the encoder predicts its moving,
# unchanging texture from blurred reference frames and drops the small residual that would
# restore it. x264's "grain" tuning keeps that residual (predicted frames quantised almost as
# finely as key frames, no dead zone, no decimation of small coefficients). Measured on stylised
# clips (docs/video.md), style loss after the round trip against the frames as computed:
# OpenCV +7 % per frame, +34 % temporal; CRF 16 +6 % / +24 %; CRF 10 +0.4 % / +13 %; CRF 10
# with grain tuning +4 % / +7 % on a 24-frame zoom, for files about 40 % larger.
CRF = 10
TUNE = "grain"
Encoder = Literal["auto", "pyav", "opencv"]
# The writers, best first; "auto" takes the first installed. Both code 4:2:0 video, whose sides
# must be even: an odd last row or column is dropped (OpenCV's writer did so silently).
ENCODERS: tuple[Encoder, ...] = ("pyav", "opencv")


class _OpenCVEncoder:
    """OpenCV's ``mp4v`` writer at its fixed bitrate: the fallback without PyAV."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        cv2 = cv2_module()
        self.writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self.writer.isOpened():
            raise InputError(f"{path}: OpenCV cannot write this video format")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def release(self) -> None:
        self.writer.release()


class _PyAVEncoder:
    """H.264 through PyAV at the constant rate factor ``CRF``, tuned ``TUNE``."""

    def __init__(self, av: Any, path: Path, fps: float, width: int, height: int) -> None:
        from fractions import Fraction

        self.av = av
        try:
            self.container: Any = av.open(os.fspath(path), "w")
        except (av.FFmpegError, ValueError) as exc:
            raise InputError(f"{path}: cannot write this video format ({exc})") from None
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options.update({"crf": str(CRF), "tune": TUNE})  # as measured (docs/video.md)

    def write(self, frame: np.ndarray) -> None:
        for packet in self.stream.encode(self.av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self.container.mux(packet)

    def release(self) -> None:
        if self.container is None:
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None


class VideoWriter:
    """Writes frames to a hidden temporary file; ``commit`` renames it to the output, ``close``
    without a commit removes it. ``encoder``: "pyav" (H.264 at ``CRF``), "opencv" (mp4v at
    OpenCV's fixed bitrate), or "auto": PyAV where installed. Frames with an odd side lose
    their last row or column (4:2:0 video has even sides)."""

    def __init__(self, output: Path, fps: float, encoder: Encoder = "auto") -> None:
        cv2_module()
        if encoder not in ("auto", *ENCODERS):
            raise ValueError(f"unknown encoder {encoder!r}")
        self.output, self.fps, self.encoder = output, fps, encoder
        self.partial, self.muxed = partial_files(output)
        self.writer: _OpenCVEncoder | _PyAVEncoder | None = None
        self.width = self.height = 0

    def write(self, batch: Tensor) -> None:
        from impasto.video.audio import av_module

        if self.writer is None:
            height, width = batch.shape[-2:]
            self.height, self.width = height - height % 2, width - width % 2
            storage.make_folder(self.partial.parent)
            av = av_module() if self.encoder != "opencv" else None
            if av is None and self.encoder == "pyav":
                raise InputError("this writer needs PyAV (pip install 'impasto[video]')")
            self.writer = (_PyAVEncoder(av, self.partial, self.fps, self.width, self.height) if av is not None
                           else _OpenCVEncoder(self.partial, self.fps, self.width, self.height))
        for frame in to_frames(batch[..., : self.height, : self.width]):
            self.writer.write(frame)

    def commit(self, audio_from: Path | None = None) -> bool:
        """Move the frames written into place, with ``audio_from``'s sound track when it has one
        and PyAV is installed; returns whether sound was kept."""
        from impasto.video.audio import has_audio, mux_audio

        # The encoders write to a path, not a handle, so storage.atomic_file cannot serve here;
        # the same temporary-file-and-rename scheme is kept by hand.
        if self.writer is None:
            raise ValueError("no frame was written")
        self.writer.release()
        if audio_from is None or not has_audio(audio_from):
            os.replace(self.partial, self.output)
            return False
        try:
            mux_audio(self.partial, audio_from, self.muxed)
            os.replace(self.muxed, self.output)
        finally:
            self.muxed.unlink(missing_ok=True)
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self.partial.unlink(missing_ok=True)
