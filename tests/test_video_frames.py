"""Frame-by-frame video: a cancel token stops after the current batch and keeps a shorter video."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto.events import CancelToken, Frames
from impasto.fast.frames import stylize_video
from impasto.fast.model import FastModel
from impasto.fast.network import Architecture, TransformNet

cv2 = pytest.importorskip("cv2")


def _clip(path: Path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (48, 32))
    for i in range(frames):
        x = torch.linspace(0, 1, 48).view(1, -1).expand(32, -1)
        frame = torch.stack([(x + i / frames) % 1, x.flip(-1), torch.full_like(x, 0.5)], dim=-1)
        writer.write(frame.mul(255).round().to(torch.uint8).numpy().copy())
    writer.release()


def _frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_cancel_keeps_the_frames_done_so_far(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = FastModel(TransformNet(Architecture(4, 1)).eval(), "tiny")
    source, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    _clip(source, 9)
    token = CancelToken()
    seen: list[Frames] = []

    def cancel_after_first_batch(event: Frames) -> None:
        seen.append(event)
        token.cancel()

    result = stylize_video(model, source, out, batch_size=2, on_event=cancel_after_first_batch, cancel=token)
    assert [e.step for e in seen] == [2] and seen[0].total == 9
    assert result.frames == 2 and not result.complete
    assert _frames(out) == 2
    assert not list(tmp_path.glob(".*partial*"))
