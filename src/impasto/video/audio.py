"""The sound track of a video carried over to its stylised copy, with PyAV (the ``video`` extra).

OpenCV reads and writes pictures only. After OpenCV has written the stylised frames, the
source's first audio stream is muxed in beside them: packets are copied as they are when the
output container takes the codec, else decoded and re-encoded as AAC. Audio past the end of the
video (a run stopped early) is left out.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from impasto.errors import InputError


def av_module() -> Any | None:
    """PyAV, or None when the ``video`` extra is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def has_audio(source: Path) -> bool:
    av = av_module()
    if av is None:
        return False
    try:
        with av.open(os.fspath(source)) as container:
            return bool(container.streams.audio)
    except av.FFmpegError:
        return False


def mux_audio(video: Path, source: Path, target: Path) -> None:
    """Write ``target``: ``video``'s frames with ``source``'s first audio stream."""
    av = av_module()
    if av is None:
        raise InputError("keeping the sound needs PyAV: pip install 'impasto[video]'")
    try:
        _mux(av, video, source, target, copy=True)
    except (av.FFmpegError, ValueError):
        # The output container does not take the source's codec as it is (PCM in MP4, say).
        _mux(av, video, source, target, copy=False)


def _mux(av: Any, video: Path, source: Path, target: Path, *, copy: bool) -> None:
    with av.open(os.fspath(video)) as pictures, av.open(os.fspath(source)) as sound, \
            av.open(os.fspath(target), "w") as out:
        v_in, a_in = pictures.streams.video[0], sound.streams.audio[0]
        v_out = out.add_stream_from_template(v_in)
        a_out = out.add_stream_from_template(a_in) if copy else out.add_stream("aac", rate=a_in.rate or 44100)
        end = _duration(pictures, v_in)
        for packet in pictures.demux(v_in):
            if packet.dts is not None:
                packet.stream = v_out
                out.mux(packet)
        if copy:
            _copy_packets(sound, a_in, a_out, out, end)
        else:
            _transcode(sound, a_in, a_out, out, end)


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / 1e6 or float("inf")


def _copy_packets(sound: Any, a_in: Any, a_out: Any, out: Any, end: float) -> None:
    for packet in sound.demux(a_in):
        if packet.dts is None:
            continue
        if packet.pts is not None and float(packet.pts * a_in.time_base) >= end:
            break
        packet.stream = a_out
        out.mux(packet)


def _transcode(sound: Any, a_in: Any, a_out: Any, out: Any, end: float) -> None:
    for frame in sound.decode(a_in):
        if frame.pts is not None and frame.time_base is not None and float(frame.pts * frame.time_base) >= end:
            break
        frame.pts = None
        frame.time_base = Fraction(1, a_out.rate)
        for packet in a_out.encode(frame):
            out.mux(packet)
    for packet in a_out.encode(None):
        out.mux(packet)
