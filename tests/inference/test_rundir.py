from __future__ import annotations

from pathlib import Path

import pytest

from tracknet_cli.atomic import atomic_write_text
from tracknet_cli.errors import InputError
from tracknet_cli.inference.rundir import create_run_dir


def test_run_dirs_auto_increment_and_never_reuse(tmp_path: Path) -> None:
    first = create_run_dir("quickstart", runs_root=tmp_path)
    second = create_run_dir("quickstart", runs_root=tmp_path)
    assert (first.name, second.name) == ("exp1", "exp2")
    (tmp_path / "quickstart" / "exp7").mkdir()
    assert create_run_dir("quickstart", runs_root=tmp_path).name == "exp8"


def test_out_must_be_new_or_empty(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    assert create_run_dir("x", out=out) == out
    (out / "config.yaml").write_text("x")
    with pytest.raises(InputError, match="already exists"):
        create_run_dir("x", out=out)


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_best_weights_in_a_run_or_a_runs_folder(tmp_path: Path) -> None:
    from tracknet_cli.inference.rundir import best_weights_in

    for n in (1, 2, 10):
        (tmp_path / "quickstart" / f"exp{n}" / "weights").mkdir(parents=True)
    (tmp_path / "quickstart" / "exp10" / "weights").rmdir()  # a run that died before saving weights
    for n in (1, 2):
        (tmp_path / "quickstart" / f"exp{n}" / "weights" / "best.safetensors").write_bytes(b"x")
    newest = tmp_path / "quickstart" / "exp2" / "weights" / "best.safetensors"
    assert best_weights_in(tmp_path / "quickstart") == newest
    assert (
        best_weights_in(tmp_path / "quickstart" / "exp1")
        == tmp_path / "quickstart" / "exp1" / "weights" / "best.safetensors"
    )
    with pytest.raises(InputError, match="no weights/best.safetensors or last.safetensors"):
        best_weights_in(tmp_path)
    # A run without validation has only last weights: used for that run, never over another run's best.
    last = tmp_path / "quickstart" / "exp3" / "weights" / "last.safetensors"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    assert best_weights_in(tmp_path / "quickstart" / "exp3") == last
    assert best_weights_in(tmp_path / "quickstart") == newest
    only_last = tmp_path / "nobest"
    for n in (1, 2):
        (only_last / f"exp{n}" / "weights").mkdir(parents=True)
        (only_last / f"exp{n}" / "weights" / "last.safetensors").write_bytes(b"x")
    assert best_weights_in(only_last) == only_last / "exp2" / "weights" / "last.safetensors"


def test_resume_forgets_metrics_rows_validated_after_the_saved_state(tmp_path: Path) -> None:
    """Killed between writing metrics.csv and the state: the resumed run measures those steps again."""
    from tracknet_cli.training.artifacts import RunDirectory, ValidationRow, read_metrics

    run = RunDirectory(tmp_path)
    for step in (2, 4, 6):
        run.append_metrics(ValidationRow(0, step, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, None, 0.1, 0.0, float(step)))
    resumed = RunDirectory(tmp_path, keep_rows=True)
    resumed.forget_rows_after(5)
    assert [r.step for r in read_metrics(tmp_path / "metrics.csv")] == [2, 4]
    resumed.append_metrics(ValidationRow(0, 6, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, None, 0.1, 0.0, 6.0))
    assert [(r.step, r.train_loss) for r in read_metrics(tmp_path / "metrics.csv")] == [(2, 1.0), (4, 1.0), (6, 0.9)]


def test_the_training_state_is_saved_and_loaded_by_the_run_directory(tmp_path: Path) -> None:
    import torch

    from tracknet_cli.training.artifacts import RunDirectory

    path = RunDirectory(tmp_path / "exp1").save_state({"step": 3, "w": torch.ones(2)})
    assert path == tmp_path / "exp1" / "state" / "last.pt"
    state = RunDirectory(tmp_path / "exp1").load_state()
    assert state["step"] == 3 and torch.equal(state["w"], torch.ones(2))
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(InputError, match=r"state/last.pt cannot be loaded: ") as info:
        RunDirectory(tmp_path / "exp1").load_state()
    assert "\n" not in info.value.line()
