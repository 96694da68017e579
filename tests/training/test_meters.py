"""The bookkeeping parts of training (training/meters.py) on their own: the loss meter and the clock."""

from __future__ import annotations

import math
import time

import pytest
import torch

from tracknet_cli.training.meters import Clock, LossMeter


def test_the_loss_meter_reads_back_what_it_kept_once_and_means_it_until_reset() -> None:
    meter = LossMeter()
    meter.keep(torch.tensor(2.0, requires_grad=True))
    meter.keep(torch.tensor(4.0))
    pending = meter.take()
    assert [float(x) for x in pending] == [2.0, 4.0] and not pending[0].requires_grad
    assert meter.take() == []
    for value in (2.0, 4.0):
        meter.add(value)
    assert (meter.mean, meter.last) == (3.0, 4.0)
    meter.reset()
    assert math.isnan(meter.mean) and meter.last == 4.0


def test_the_loss_meter_keeps_the_state_file_s_first_key_names() -> None:
    """state/last.pt written before the meter existed resumes: the keys stay window_loss and window_n."""
    meter = LossMeter()
    meter.add(1.5)
    assert meter.state_dict() == {"window_loss": 1.5, "window_n": 1}
    again = LossMeter()
    again.load_state_dict({"window_loss": 3, "window_n": 2})
    assert (again.sum, again.count, again.mean) == (3.0, 2, 1.5)


def test_the_clock_counts_preparation_waits_and_steps_and_a_validation_resets_the_waits() -> None:
    lines: list[str] = []
    clock = Clock(time_limit=100.0, estimate_validation=lambda: 10.0, log=lines.append)
    clock.start(trained_before=30.0)
    assert clock.elapsed() == pytest.approx(30.0, abs=0.5)
    clock.fetching()
    clock.got_batch()
    assert clock.prep_s is not None and clock.wait_s > 0
    assert len(lines) == 2 and lines[0].startswith("time limit 100 s: about 10 s kept for the final validation")
    assert lines[1].startswith("first batch after ") and lines[1].endswith("over the 90 s left for training")
    clock.stepped()
    assert 0 < clock.data_wait() <= 1
    clock.validated(4.0)
    assert (clock.wait_s, clock.busy_s, clock.val_seconds, clock.val_total_s) == (0.0, 0.0, 4.0, 4.0)
    clock.validated(None)  # a follower: rank 0 timed it
    assert (clock.val_seconds, clock.val_total_s, clock.data_wait()) == (4.0, 4.0, 0.0)


def test_without_a_time_limit_the_schedule_keeps_to_steps_and_a_run_without_validation_keeps_the_whole_limit() -> None:
    assert Clock().schedule_step(7, 100) == 7
    clock = Clock(time_limit=60.0)  # no validation set: nothing to estimate, nothing kept back
    clock.start(trained_before=0.0)
    assert clock.training_seconds() == 60.0 and clock.val_seconds is None
    clock.t0 = time.monotonic() - 61
    assert clock.out_of_time()
