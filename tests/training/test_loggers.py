"""TensorBoard / Weights & Biases: off by default, one line when asked for without the package, and real
TensorBoard events (scalars, overlay images, hyper-parameters) when tensorboard is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.cli.helpers import TINY, invoke
from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.training.artifacts import ValidationRow
from tracknet_cli.training.loggers import RunLoggers, flatten_config, open_loggers, validation_scalars

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
HAS_WANDB = importlib.util.find_spec("wandb") is not None


def test_flat_hyperparameters_are_scalars_or_strings() -> None:
    flat = flatten_config(TrackNetConfig())
    assert flat["training.lr"] == 1e-3 and flat["training.batch_size"] == 8
    assert flat["training.max_steps"] == "none" and flat["data.root"] == "data/tracknet"
    assert flat["model.upsampling.channels"] == "[256, 128, 64]"
    assert flat["training.tensorboard"] is False and flat["training.wandb"] == "off"
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())


def test_validation_scalars_name_every_metric() -> None:
    row = ValidationRow(
        epoch=1,
        step=30,
        train_loss=2.5,
        val_loss=2.0,
        precision=0.5,
        recall=0.25,
        f1=1 / 3,
        accuracy=0.4,
        l2_median=None,
        lr=1e-4,
        data_wait=0.1,
        seconds=9.0,
        threshold=0.3,
    )
    values = validation_scalars(row)
    assert values["val/f1"] == pytest.approx(1 / 3) and values["val/threshold"] == 0.3
    assert values["train/loss_window"] == 2.5
    assert "val/l2_median" not in values  # None (no detections) is left out, not sent as NaN


def test_nothing_enabled_opens_nothing(tmp_path: Path) -> None:
    loggers = open_loggers(TrackNetConfig(), tmp_path)
    assert loggers.trackers == []
    loggers.start({"device": "cpu"})
    loggers.step(1, 1.0, 1e-3, 10.0)
    loggers.close()
    assert list(tmp_path.iterdir()) == []
    assert RunLoggers().trackers == []


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed: the missing-package line cannot be seen")
def test_tensorboard_without_the_package_is_one_line(tmp_path: Path) -> None:
    result = invoke(
        "train",
        *TINY,
        "--set",
        "training.max_steps=4",
        "--set",
        "training.val_every=2",
        "--set",
        "training.tensorboard=true",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "training.tensorboard=true needs the tensorboard package" in lines[0]
    assert not (tmp_path / "run").exists(), "no run directory for a run that cannot start"


@pytest.mark.skipif(HAS_WANDB, reason="wandb is installed")
def test_wandb_without_the_package_is_one_line(tmp_path: Path) -> None:
    result = invoke(
        "train",
        *TINY,
        "--set",
        "training.max_steps=4",
        "--set",
        "training.val_every=2",
        "--set",
        "training.wandb=offline",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 2
    assert "training.wandb=offline needs the wandb package" in result.stderr


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard not installed (optional extra 'logging')")
def test_tensorboard_events_hold_scalars_overlays_and_hparams(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tracknet_cli.data.synth import synthesize

    root = tmp_path / "synth"
    synthesize(root, games=1, clips=3, frames=24, size=(256, 144), seed=3)
    run_dir = tmp_path / "run"
    result = invoke(
        "train",
        *TINY,
        "--set",
        "training.max_steps=4",
        "--set",
        "training.val_every=2",
        "--set",
        f"data.root={root}",
        "--set",
        "data.split.val=[game1/Clip3]",
        "--set",
        "training.tensorboard=true",
        "--out",
        str(run_dir),
    )
    assert result.exit_code == 0, result.stderr
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("val/f1")] == [2, 4]
    assert [e.step for e in events.Scalars("train/lr")] == [1, 2, 3, 4]
    assert [e.step for e in events.Images("val/overlay")] == [2, 4]
    assert events.Images("val/overlay")[0].width > 100
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"training.lr" in hparams["_hparams_/experiment"] and b"val/f1" in hparams["_hparams_/experiment"]


@pytest.mark.skipif(not HAS_WANDB, reason="wandb not installed (pip install wandb)")
def test_wandb_offline_run_holds_the_overlays_and_keeps_its_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracknet_cli.data.synth import synthesize

    monkeypatch.setenv("WANDB_SILENT", "true")
    root = tmp_path / "synth"
    synthesize(root, games=1, clips=3, frames=24, size=(256, 144), seed=3)
    run_dir = tmp_path / "run"
    result = invoke(
        "train",
        *TINY,
        "--set",
        "training.max_steps=4",
        "--set",
        "training.val_every=2",
        "--set",
        f"data.root={root}",
        "--set",
        "data.split.val=[game1/Clip3]",
        "--set",
        "training.wandb=offline",
        "--out",
        str(run_dir),
    )
    assert result.exit_code == 0, result.stderr
    run_id = (run_dir / "wandb_id").read_text().strip()
    assert len(list((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))) == 1
    assert len(list((run_dir / "wandb").rglob("overlay_*.png"))) == 2  # one per validation
