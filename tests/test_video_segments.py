"""A video in segments: stylised apart (in this process, on a local pool, on a loopback Ray
cluster) and joined, it gives the frames, the sound and the warping error of the run in one
piece; a rerun skips the segments done; a broken video or segment fails alone, and no video is
joined from a missing segment."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import clip_with_tone
from impasto import batch, images, jobs
from impasto.cli import main
from impasto.config import ApplyConfig
from impasto.fast.frames import stylize_video
from impasto.fast.styles import resolve
from impasto.fast.stylize import stylize
from impasto.video import segments as cut
from impasto.video.metrics import frames_of, video_warping_error
from impasto.video.synthetic import MOVES, camera_clip, write_clip
from impasto.video.temporal import TemporalBlender

av = pytest.importorskip("av")

# Ray on the loopback address alone (read when ray is imported), as in test_batch.py.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
LOOPBACK = "127.0.0.1"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs the cluster extra (ray): pip install -e '.[cluster]'")
FRAMES, FPS = 40, 10
# 12 frames a segment: segments start at 0, 12, 24, 36, each after a warm-up of 8 frames.
SEGMENT_FRAMES = 12
STYLE = "starry_night"
# Measured on these clips: the segments' warping error is the sequential run's to 0.05 %
# (bench/video_segments.py: within 0.1 %); their frames, before the H.264 writer, within 5 levels
# of 255 at the cuts and 0.1 on average, where the writer itself moves them by about 5 on average.
WARPING_TOLERANCE = 0.01
LARGEST_LEVELS, MEAN_LEVELS = 8, 0.5
# x264 does not code the same frames to the same bits every time on a busy machine (two runs of
# the same frames differed by up to 0.5 levels of 255 on average): videos are compared decoded.
ENCODER_LEVELS = 1.0


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The references run with one thread, as the workers do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def still(tubingen_path: Path) -> torch.Tensor:
    return images.resize_long_side(images.load_image(tubingen_path), 192)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, still: torch.Tensor) -> Path:
    frames = camera_clip(still, MOVES["pan_zoom"], FRAMES, 72, 96)
    return clip_with_tone(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, FPS, len(frames) / FPS)


@pytest.fixture(scope="module")
def in_one_piece(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> dict[bool, Path]:
    """The clip stylised by ``impasto apply``'s path, temporally consistent (True) and not."""
    folder = tmp_path_factory.mktemp("one_piece")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for temporal in (True, False):
            stylize_video(resolve(STYLE), clip, folder / f"{temporal}.mp4", temporal=temporal)
    finally:
        torch.set_num_threads(threads)
    return {temporal: folder / f"{temporal}.mp4" for temporal in (True, False)}


def _plan(clip: Path, output: Path) -> list[batch.Task]:
    """The clip in segments, temporally consistent (``clip_starry_night.mp4``) and frame by frame
    (``clip_flicker.mp4``)."""
    steady = batch.Style(STYLE, ApplyConfig(STYLE))
    flicker = batch.Style("flicker", ApplyConfig(STYLE, temporal=False))
    return [*batch.video_tasks(clip, steady, output, segment_frames=SEGMENT_FRAMES),
            *batch.video_tasks(clip, flicker, output, segment_frames=SEGMENT_FRAMES)]


@pytest.fixture(scope="module")
def on_the_pool(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> tuple[Path, batch.Summary]:
    output = tmp_path_factory.mktemp("pool")
    return output, batch.run(_plan(clip, output), output, batch.LocalPool(workers=2))


def _has_sound(video: Path) -> float:
    """Seconds of sound in ``video``."""
    with av.open(str(video)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def _levels(frames: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    return [(f * 255).round() for f in frames]


def _apart(a: Path, b: Path) -> float:
    """The mean absolute difference of two videos' frames, in levels of 255 (same frame count)."""
    gaps = [float((x - y).abs().mean()) * 255 for x, y in zip(frames_of(a), frames_of(b), strict=True)]
    return sum(gaps) / len(gaps)


# --- in this process: the segments' frames as computed -----------------------------------------


def test_a_clip_splits_into_whole_key_intervals_and_the_last_segment_runs_to_the_end() -> None:
    assert cut.segment_length(100, 4, segments=3) == 36
    assert cut.segment_length(100, 4, frames=10) == 12
    parts = cut.plan(100, 36, 8)
    assert [(p.start, p.stop, p.lead) for p in parts] == [(0, 36, 0), (36, 72, 8), (72, None, 8)]
    assert [(p.start, p.stop) for p in cut.plan(0, 36, 8)] == [(0, None)]  # the count unknown: one piece


def test_a_video_in_a_manifest_or_a_job_file_is_split_too(tmp_path: Path, still: torch.Tensor) -> None:
    source = write_clip(camera_clip(still, MOVES["pan"], cut.DEFAULT_SEGMENT_FRAMES + 8, 24, 32), tmp_path / "long.mp4")
    (tmp_path / "jobs.csv").write_text("content,style,output\nlong.mp4,the_scream,long_scream.mp4\n")
    planned = batch.plan_manifest(tmp_path / "jobs.csv", tmp_path / "out")
    row = f"{tmp_path / 'jobs.csv'}, line 2"
    assert [t.label for t in planned] == [f"{row}, frames 0–119", f"{row}, frames 120–end", row]
    assert planned[-1].needs == (planned[0].key, planned[1].key)
    assert planned[-1].files[0] == tmp_path / "out" / "long_scream.mp4"
    job = jobs.ApplyJob((source,), tmp_path / "out" / "long_starry.mp4", ApplyConfig(STYLE))
    (tmp_path / "long.job.json").write_text(json.dumps(jobs.to_record(job)))
    assert [len(t.needs) for t in batch.plan_job_files([tmp_path / "long.job.json"])] == [0, 0, 2]
    # Frame by frame (no carried shading), the segments need no warm-up.
    flicker = batch.video_tasks(source, batch.Style("flicker", ApplyConfig(STYLE, temporal=False)), tmp_path,
                                segments=2)
    assert [t.record["job"]["lead"] for t in flicker[:-1]] == [0, 0]


def test_segments_compute_the_frames_of_the_run_in_one_piece(tmp_path: Path, still: torch.Tensor) -> None:
    # A pan, then a cut to a zoom at frame 10, between two regular keys: the flow loses track, a
    # key comes there, and the regular keys stay on 12, 16, … so that the segments start on keys.
    frames = camera_clip(still, MOVES["pan"], 10, 72, 96) + camera_clip(still.flip(-1), MOVES["zoom"], 22, 72, 96)
    source = write_clip(frames, tmp_path / "cut.mp4")
    model, decoded = resolve(STYLE), list(frames_of(source))
    # Through the network four frames at a time, as `impasto apply` does (a batch's last bits
    # can depend on its size; a segment's batches are those of the whole clip).
    network = [out[None] for i in range(0, len(decoded), 4) for out in stylize(model, torch.cat(decoded[i:i + 4]))]
    blender, keys, reference = TemporalBlender(), [], []
    for i, (frame, out) in enumerate(zip(decoded, network, strict=True)):
        before = blender.keys
        reference.append((blender.blend(frame, out).clamp(0, 1) * 255).round())
        keys += [i] if blender.keys > before else []
    assert keys[:5] == [0, 4, 8, 10, 12]
    for temporal in (True, False):
        config = ApplyConfig(STYLE, temporal=temporal)
        lead = cut.OVERLAP_KEYS * 4 if temporal else 0
        made: list[torch.Tensor] = []
        for part in cut.plan(len(decoded), SEGMENT_FRAMES, lead):
            path = cut.segment_path(tmp_path / str(temporal), part.index)
            jobs.run(jobs.VideoSegmentJob(source, path, part.start, part.stop, part.lead, config))
            made += _levels(frames_of(path))
        if not temporal:
            expected = [(out.clamp(0, 1) * 255).round() for out in network]
            assert all(torch.equal(a, b) for a, b in zip(made, expected, strict=True))
            continue
        gaps = [(a - b).abs() for a, b in zip(made, reference, strict=True)]
        assert all(float(g.max()) == 0 for g in gaps[:SEGMENT_FRAMES])  # the first segment: exactly
        assert max(float(g.max()) for g in gaps) <= LARGEST_LEVELS
        assert sum(float(g.mean()) for g in gaps) / len(gaps) <= MEAN_LEVELS
        assert not list((tmp_path / f"{temporal}").glob(".*"))  # no partial file left


# --- on a local pool ---------------------------------------------------------------------------


@pytest.mark.slow
def test_segments_on_a_local_pool_give_the_video_in_one_piece_with_its_sound(
    on_the_pool: tuple[Path, batch.Summary], clip: Path, in_one_piece: dict[bool, Path]
) -> None:
    output, summary = on_the_pool
    assert summary.complete and len(summary.done) == 10, summary.describe()
    # The work folders are gone: the folder holds the videos, their job files and the ledger.
    assert sorted(p.name for p in output.iterdir()) == sorted([
        batch.LEDGER_NAME, "clip_flicker.job.json", "clip_flicker.mp4", "clip_starry_night.job.json",
        "clip_starry_night.mp4"])
    # Frame by frame, the segments' frames are the same (to the bit, as written before the
    # encoder: test_segments_compute_the_frames_of_the_run_in_one_piece), so is the video.
    assert _apart(output / "clip_flicker.mp4", in_one_piece[False]) <= ENCODER_LEVELS
    steady = output / "clip_starry_night.mp4"
    assert _has_sound(steady) == pytest.approx(FRAMES / FPS, abs=0.15)
    # Temporally consistent, the frames after each cut differ a little before the encoder, which
    # then codes the clip a little differently throughout (1.2 levels on average measured).
    assert _apart(steady, in_one_piece[True]) <= 2 * ENCODER_LEVELS
    alone, joined = video_warping_error(clip, in_one_piece[True]), video_warping_error(clip, steady)
    assert len(joined.per_frame) == FRAMES - 1
    assert joined.mean == pytest.approx(alone.mean, rel=WARPING_TOLERANCE)
    # The job file is the apply job of the whole clip: `impasto run` repeats it in one piece.
    record = json.loads((output / "clip_starry_night.job.json").read_text())
    assert record["kind"] == "apply" and record["job"]["inputs"] == [os.fspath(clip)]
    assert (record["result"]["segments"], record["result"]["frames"], record["result"]["audio"]) == (4, FRAMES, True)


@pytest.mark.slow
def test_a_rerun_skips_the_segments_done_and_a_failed_segment_is_never_joined(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    tasks = batch.video_tasks(clip, batch.Style(STYLE, ApplyConfig(STYLE)), output, segment_frames=SEGMENT_FRAMES)
    assert [len(t.needs) for t in tasks] == [0, 0, 0, 0, 4]
    # The second segment's worker cannot read the clip (as if its node lost the shared folder).
    record = json.loads(json.dumps(tasks[1].record))
    record["job"]["source"] = os.fspath(tmp_path / "gone.mp4")
    broken = [*tasks[:1], dataclasses.replace(tasks[1], text=json.dumps(record)), *tasks[2:]]
    first = batch.run(broken, output, batch.LocalPool(workers=2))
    assert len(first.done) == 3 and [label for label, _ in first.failed] == [tasks[1].label, tasks[4].label]
    assert "gone.mp4: video file not found" in first.failed[0][1]
    assert first.failed[1][1] == f"not run: it needs {tasks[1].label}, which failed"
    work = cut.work_folder(output / "clip_starry_night.mp4")
    assert not (output / "clip_starry_night.mp4").exists()
    assert sorted(p.name for p in work.glob("*.mkv")) == [cut.segment_path(work, i).name for i in (0, 2, 3)]
    assert not list(work.glob(".*"))

    second = batch.run(tasks, output, batch.LocalPool(workers=2))
    assert set(second.skipped) == {tasks[i].label for i in (0, 2, 3)}
    assert second.done == [tasks[1].label, tasks[4].label] and second.complete
    assert (output / "clip_starry_night.mp4").is_file() and not work.exists()
    # Joined, the segments' files are gone, and nothing is done again.
    third = batch.run(tasks, output, batch.LocalPool(workers=2))
    assert not third.ended and len(third.skipped) == 5


@pytest.mark.slow
def test_a_broken_video_fails_alone_with_its_one_line_error(clip: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    (folder / "broken.mp4").write_bytes(b"\0" * 2048)
    output = tmp_path / "out"
    code = main(["batch", str(folder), "--style", STYLE, "-o", str(output), "--segment-frames", "20",
                 "--workers", "1", "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and (report["done"], report["failed"]) == (3, 1)
    [failure] = report["failures"]
    assert failure["job"] == "broken.mp4 × starry_night"
    assert failure["error"].endswith("broken.mp4: cannot be read as a video") and "\n" not in failure["error"]
    assert (output / "clip_starry_night.mp4").is_file()

    assert main(["batch", str(tmp_path / "missing.mp4"), "--style", STYLE, "-o", str(output)]) == 2
    assert "missing.mp4: video not found" in capsys.readouterr().err
    assert main(["batch", str(folder), "--style", STYLE, "-o", str(output), "--segments", "0"]) == 2
    assert "--segments: must be a positive integer" in capsys.readouterr().err


def _writing(pid: int, name: str) -> bool:
    """Whether process ``pid`` holds open a file whose name contains ``name``."""
    try:
        return any(name in os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes in /proc (Linux)")
def test_a_worker_killed_while_writing_a_segment_has_it_made_again(
    on_the_pool: tuple[Path, batch.Summary], clip: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    killed: list[int] = []

    def kill_a_writer() -> None:
        # A pool worker is a spawned child of this process; killed while its segment is half written.
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in _children(os.getpid()):
                if _writing(pid, ".partial"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_a_writer, daemon=True)
    watcher.start()
    summary = batch.run(_plan(clip, output), output, batch.LocalPool(workers=2))
    watcher.join()
    assert killed and summary.complete, summary.describe()
    with batch.Ledger(output) as ledger:
        assert max(r["attempts"] for r in ledger.rows()) == 2
    pool = on_the_pool[0]
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in pool.iterdir())
    for name in ("clip_starry_night.mp4", "clip_flicker.mp4"):
        assert _apart(output / name, pool / name) <= ENCODER_LEVELS, name


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# --- on Ray ------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_ray
def test_segments_on_a_ray_cluster_give_the_local_pools_video(
    on_the_pool: tuple[Path, batch.Summary], clip: Path, tmp_path: Path, deadline: None
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK})
    try:
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes(timeout=60)
        output, address = tmp_path / "ray", cluster.address
        summary = batch.run(_plan(clip, output), output, batch.RayCluster(address))
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert summary.complete and len(summary.done) == 10, summary.describe()
    assert summary.executor == f"Ray at {address}"
    pool = on_the_pool[0]
    for name in ("clip_starry_night.mp4", "clip_flicker.mp4"):
        assert _apart(output / name, pool / name) <= ENCODER_LEVELS, name
    assert not (output / "clip_starry_night.segments").exists()
