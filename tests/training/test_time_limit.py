"""`training.time_limit` is the whole run: training stops early enough for the final validation to
fit, whose length is the last validation's, or before the first an estimate timed on the model."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tracknet_cli.config.load import Selection, resolve
from tracknet_cli.training.build import build
from tracknet_cli.training.distributed import SINGLE
from tracknet_cli.training.loop import Hooks
from tracknet_cli.training.session import open_run_directory, open_session

SMALL = (
    "data.input_width=128",
    "data.input_height=72",
    "data.heatmap_width=64",
    "data.heatmap_height=36",
    "training.batch_size=4",
    "data.cache=off",
    "training.precision=fp32",
    "data.num_workers=0",
    "data.augment.crop_width=null",
    "data.augment.crop_height=null",
    "training.time_limit=100",
)


@pytest.fixture
def session(synth_root: Path, tmp_path: Path):
    with _session(synth_root, tmp_path) as s:
        yield s


@contextmanager
def _session(synth_root: Path, tmp_path: Path, *sets: str):
    config = resolve(
        Selection(profile="quickstart", sets=(f"data.root={synth_root}", *SMALL, *sets)), environ={}
    ).config
    files = open_run_directory(config, tmp_path / "run", resumed=False, dist=SINGLE)
    s = open_session(files, build(config), Hooks(), resume=None, dist=SINGLE)
    try:
        yield s
    finally:
        if s.loggers is not None:
            s.loggers.close()


def test_the_first_estimate_is_timed_once_and_logged(session) -> None:
    assert session.has_val and session.clock.val_seconds is None
    left = session.clock.training_seconds()
    estimate = session.clock.val_seconds
    assert estimate is not None and estimate > 0
    assert left == pytest.approx(max(100 - estimate, 50))
    assert session.clock.training_seconds() == left and session.clock.val_seconds == estimate  # not timed again
    log = (session.run_dir / "train.log").read_text()
    assert log.count("kept for the final validation") == 1


def test_training_stops_when_only_the_validation_fits(session) -> None:
    session.clock.val_seconds = 30.0  # as a validation that took 30 s leaves it
    session.clock.t0 = time.monotonic() - 65
    assert session.budget_spent() is None
    session.clock.t0 = time.monotonic() - 71
    assert session.budget_spent() == "time_limit"


def test_a_validation_longer_than_half_the_limit_still_leaves_half_for_training(session) -> None:
    session.clock.val_seconds = 80.0
    assert session.clock.training_seconds() == 50.0
    session.clock.t0 = time.monotonic() - 49
    assert session.budget_spent() is None


def test_the_schedule_decays_over_the_training_part(session) -> None:
    session.clock.val_seconds = 40.0
    session.clock.t0 = time.monotonic() - 30  # half of the 60 s left for training
    assert session.schedule_step() == pytest.approx(session.built.total_steps / 2, abs=session.built.total_steps * 0.02)


def test_data_preparation_does_not_eat_the_schedule(session) -> None:
    """Minutes of decoding and caching before the first batch are not schedule: the learning rate
    decays over the time left for training once the data is ready."""
    session.clock.val_seconds = 40.0
    session.clock.prep_s = 20.0  # the first batch came 20 s in: 40 s of the 60 left for training remain
    session.clock.t0 = time.monotonic() - 20.5
    assert session.schedule_step() == pytest.approx(0, abs=session.built.total_steps * 0.02)
    session.clock.t0 = time.monotonic() - 40  # half of those 40 s
    assert session.schedule_step() == pytest.approx(session.built.total_steps / 2, abs=session.built.total_steps * 0.02)


def test_train_log_says_where_the_time_went(synth_root: Path, tmp_path: Path) -> None:
    from tracknet_cli.training.loop import fit

    config = resolve(
        Selection(profile="quickstart", sets=(f"data.root={synth_root}", *SMALL, "training.max_steps=2")), environ={}
    ).config
    fit(config, tmp_path / "run")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "s of data preparation (opening clips, decoding, caching); the learning-rate schedule runs over" in log
    last = log.strip().splitlines()[-1]
    assert (
        " s in all: " in last
        and " s data preparation, " in last
        and " s validation, " in last
        and " s training" in last
    )


def test_a_validation_longer_than_half_the_limit_says_the_run_will_overrun(synth_root: Path, tmp_path: Path) -> None:
    with _session(synth_root, tmp_path, "training.time_limit=0.002") as s:  # any timed validation is longer
        assert s.clock.training_seconds() == 0.001
        line = next(x for x in (s.run_dir / "train.log").read_text().splitlines() if "time limit" in x)
        assert "more than half of it; training keeps 0 s and the run will take about" in line
        assert "data.split.val_ratio" in line
