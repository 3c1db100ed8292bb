"""The one event protocol and the cancel token: a cancelled transfer stops within one iteration
and returns its best image at the requested size."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

import impasto
from impasto.config import TransferConfig
from impasto.events import CancelToken, Event, Frames, History, Iteration, TrainStep, broadcast, is_cancelled


def test_token_cancels_once_and_reads_a_process_flag() -> None:
    token = CancelToken()
    assert not token.cancelled and not is_cancelled(token) and not is_cancelled(None)
    token.cancel()
    assert token.cancelled and is_cancelled(token)
    flag = multiprocessing.get_context("spawn").Event()
    shared = CancelToken(flag)
    flag.set()  # as another process would
    assert shared.cancelled


def test_every_event_is_a_step_of_a_total_with_a_json_row() -> None:
    image = torch.zeros(1, 3, 4, 4)
    events: list[Event] = [
        Iteration(2, 5, 0.5, {"total": 1.0}, 0, 2, 4, 4, 2, lambda: image),
        TrainStep(3, 9, 1.5, {"total": 2.0}, validation={"total": 3.0}),
        Frames(4, 0, 2.0, {}, "clip.mp4"),
    ]
    history = History()
    seen: list[Event] = []
    callback = broadcast(history, None, seen.append)
    for event in events:
        callback(event)
    assert seen == events
    assert history.rows[0]["iteration"] == 2 and history.rows[0]["total"] == 1.0
    assert history.rows[1]["validation"] == {"total": 3.0} and history.rows[2]["step"] == 4
    assert [e.describe() for e in events] == ["scale 1/2 4x4", "val 3", "clip.mp4"]


def _cancel_at(token: CancelToken, step: int):
    def callback(event: Iteration) -> None:
        if event.step == step:
            token.cancel()

    return callback


def test_cancel_during_the_final_scale_returns_the_best_image_within_one_iteration(content64, style64) -> None:
    config = TransferConfig(size=64, scales=2, min_scale_size=32, coarse_iterations=4, iterations=6, seed=0)
    token = CancelToken()
    result = impasto.transfer(content64, style64, config, _cancel_at(token, 6), cancel=token)
    assert len(result.history) == 6 and not result.complete
    assert result.scale_size == 64 and result.tensor.shape == content64.shape and result.scales_done == 1
    assert result.loss == min(row["total"] for row in result.history if row["scale"] == 1)


def test_cancel_during_a_coarse_scale_returns_it_at_the_requested_size(content64, style64) -> None:
    config = TransferConfig(size=64, scales=2, min_scale_size=32, coarse_iterations=4, iterations=6, seed=0)
    token = CancelToken()
    result = impasto.transfer(content64, style64, config, _cancel_at(token, 2), cancel=token)
    assert len(result.history) == 2 and not result.complete
    assert result.scale_size == 32 and result.tensor.shape == content64.shape
    # Not a picture yet: ``impasto.jobs`` leaves -o untouched (tests/test_jobs.py).
    assert result.scales_done == 0


def test_a_token_cancelled_before_the_start_stops_before_any_work(content64, style64) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(impasto.TransferInterrupted) as info:
        impasto.transfer(content64, style64, TransferConfig(size=64, iterations=3, seed=0), cancel=token)
    assert info.value.result is None
