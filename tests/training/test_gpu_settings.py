"""GPU settings exercised on CPU: reading the loss back every N steps changes nothing but when the host
learns it, and channels_last trains the same model into a checkpoint that loads."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.cli.helpers import TINY, invoke


@pytest.fixture(scope="module")
def reference(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """A run reading the loss back every step (the CPU default)."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    result = invoke("train", *TINY, "--set", f"data.root={synth_root}", "--out", str(run_dir))
    assert result.exit_code == 0, result.stderr
    return _rows(run_dir)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "metrics.csv").open()))


def test_deferred_loss_reads_give_the_same_run(
    synth_root: Path, reference: list[dict[str, str]], tmp_path: Path
) -> None:
    import torch

    run_dir = tmp_path / "deferred"
    result = invoke(
        "train",
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.sync_every=4",
        "--set",
        "training.checkpoint_every=2",
        "--out",
        str(run_dir),
    )
    assert result.exit_code == 0, result.stderr
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == ["3", "6"]
    for a, b in zip(reference, rows):  # every batch loss still counted, in the same order
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"], (a, b)
    state = torch.load(run_dir / "state" / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["window_n"] == 0  # the key of LossMeter.count (TrainState.losses)


def test_channels_last_trains_the_same_model(synth_root: Path, reference: list[dict[str, str]], tmp_path: Path) -> None:
    import torch

    from tracknet_cli.inference.checkpoint import load_model

    run_dir = tmp_path / "cl"
    result = invoke(
        "train",
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.channels_last=true",
        "--set",
        "training.max_steps=3",
        "--out",
        str(run_dir),
    )
    assert result.exit_code == 0, result.stderr
    (row,) = _rows(run_dir)  # other kernels, the same arithmetic up to rounding
    assert float(row["train_loss"]) == pytest.approx(float(reference[0]["train_loss"]), rel=1e-3)
    model, _ = load_model(run_dir / "weights" / "last.safetensors", "cpu")
    assert all(t.is_contiguous() for t in model.state_dict().values())
    frames = torch.rand(1, 3, 3, 72, 128)
    assert torch.isfinite(model.eval()(frames)).all()
