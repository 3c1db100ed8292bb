"""The optimisation path for video: resumable per frame, the temporal term and warped start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto import images
from impasto.config import TransferConfig
from impasto.errors import InputError
from impasto.events import CancelToken, Frames
from impasto.video import optimise
from impasto.video.metrics import frames_of
from impasto.video.optimise import VideoTransferConfig, frame_path, temporal_loss, transfer_video, work_folder
from impasto.video.synthetic import MOVES, camera_clip, write_clip

TINY = TransferConfig(size=48, scales=1, iterations=2, init="content", seed=5, precision="fp32")


@pytest.fixture
def clip(tmp_path: Path, tubingen_path: Path) -> Path:
    still = images.resize_long_side(images.load_image(tubingen_path), 128)
    return write_clip(camera_clip(still, MOVES["pan"], 3, 36, 48), tmp_path / "clip.mp4")


def test_temporal_loss_counts_only_reliable_pixels() -> None:
    warped = torch.zeros(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    loss = temporal_loss(warped, mask)
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 1.0  # differs only where the mask is 0
    assert float(loss({}, image)) == 0.0
    image[..., :4] = 0.1  # Ruder et al.'s 1/D mean, in 0-255 pixel units
    assert float(loss({}, image)) == pytest.approx(0.5 * 25.5**2, rel=1e-5)
    # At another scale the warped frame and the mask are resized to the image.
    large = torch.zeros(1, 3, 16, 16)
    large[..., 10:] = 1.0
    assert float(loss({}, large)) == 0.0


def test_resume_skips_finished_frames(clip: Path, tmp_path: Path, starry_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    real = optimise.transfer

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("init_image") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(optimise, "transfer", counting)
    output, cancel = tmp_path / "out.mp4", CancelToken()

    def stop_after_first(event: Frames) -> None:
        if event.step == 1:
            cancel.cancel()

    first = transfer_video(clip, [starry_path], output, VideoTransferConfig(TINY), on_event=stop_after_first,
                           cancel=cancel)
    assert not first.complete and first.frames == 1 and not output.exists()
    assert frame_path(work_folder(output), 0).is_file()
    assert calls == [False]

    events: list[Frames] = []
    second = transfer_video(clip, [starry_path], output, VideoTransferConfig(TINY), on_event=events.append)
    assert second.complete and second.frames == 3 and second.resumed == 1
    # Frame 0 was not redone; frames 1 and 2 started from the previous result, warped.
    assert calls == [False, True, True]
    assert [e.step for e in events] == [1, 2, 3]
    assert len(list(frames_of(output))) == 3
    assert not work_folder(output).exists()


def test_other_settings_do_not_mix_with_kept_frames(clip: Path, tmp_path: Path, starry_path: Path) -> None:
    output = tmp_path / "out.mp4"
    cancel = CancelToken()
    cancel.cancel()
    transfer_video(clip, [starry_path], output, VideoTransferConfig(TINY), cancel=cancel)
    other = VideoTransferConfig(TINY, temporal_weight=5.0)
    with pytest.raises(InputError, match="temporal_weight differs"):
        transfer_video(clip, [starry_path], output, other)


def test_transfer_video_cli(clip: Path, tmp_path: Path, starry_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from impasto.cli import main

    out = tmp_path / "new" / "out.mp4"  # its folder is made
    args = [str(clip), str(starry_path), "--size", "48", "--scales", "1", "--iterations", "2", "--init", "content",
            "--seed", "1", "--precision", "fp32"]
    assert main(["transfer-video", *args, "-o", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "saved" in captured.err and len(list(frames_of(out))) == 3
    summary = json.loads(captured.out)
    assert summary["outputs"] == [str(out)] and summary["frames"] == 3 and summary["seed"] == 1
    assert main(["transfer-video", *args, "-o", str(tmp_path / "out.gif")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "out.gif" in err
