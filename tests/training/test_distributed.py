"""DistributedDataParallel: the sharded sampler, the launcher's exit codes, and a real 2-process gloo run
through `tracknet train --devices 2` that writes one run directory."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, TINY, tracknet
from tracknet_cli.data.datasets import EpochSampler
from tracknet_cli.training.distributed import (
    SINGLE,
    DistContext,
    FollowerRunDirectory,
    _failure_result,
    context_from_env,
    torchrun_args,
)


# ---------------------------------------------------------------- the sharded sampler
def test_unsharded_sampler_is_unchanged() -> None:
    assert list(EpochSampler(5, shuffle=False)) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]


def test_ranks_split_one_order_padded_from_its_start() -> None:
    r0 = EpochSampler(5, shuffle=False, rank=0, world_size=2)
    r1 = EpochSampler(5, shuffle=False, rank=1, world_size=2)
    assert len(r0) == len(r1) == 3
    assert [i for _, i in r0] == [0, 2, 4]
    assert [i for _, i in r1] == [1, 3, 0]  # padded with the first index, as DistributedSampler does


def test_shuffled_shards_cover_every_window_and_resume_per_rank() -> None:
    import numpy as np

    size, world = 11, 3
    order = np.random.default_rng([7, 2]).permutation(size)  # the permutation every rank draws in epoch 2
    shards = []
    for rank in range(world):
        s = EpochSampler(size, shuffle=True, seed=7, rank=rank, world_size=world)
        s.set_epoch(2)
        shards.append([i for e, i in s if e == 2])
    assert all(len(sh) == 4 for sh in shards)
    assert set().union(*map(set, shards)) == set(range(size))
    padded = list(order) + list(order[:1])
    assert [shards[r][k] for k in range(4) for r in range(world)] == padded
    again = EpochSampler(size, shuffle=True, seed=7, rank=1, world_size=world)
    again.set_epoch(2, skip=3)  # resumed after 3 of this rank's samples
    assert len(again) == 1 and list(again) == [(2, shards[1][3])]


def test_sampler_rejects_a_rank_outside_the_world() -> None:
    with pytest.raises(ValueError):
        EpochSampler(4, shuffle=False, rank=2, world_size=2)


# ---------------------------------------------------------------- launch plumbing
def test_context_from_torchrun_environment() -> None:
    assert context_from_env({}) is SINGLE and not SINGLE.enabled and SINGLE.is_main
    ctx = context_from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert ctx == DistContext(rank=3, local_rank=1, world_size=4) and ctx.enabled and not ctx.is_main


def test_torchrun_command_line() -> None:
    assert torchrun_args(2, ["--quiet", "train", "--out", "x"]) == [
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--module",
        "tracknet_cli",
        "--quiet",
        "train",
        "--out",
        "x",
    ]


def test_exit_code_is_the_failing_workers_own() -> None:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def failure(rank: int, code: int) -> ProcessFailure:
        return ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=code, error_file="/nonexistent")

    stopped = ChildFailedError("train", {0: failure(0, -signal.SIGTERM), 1: failure(1, 2)})
    assert _failure_result(stopped).exit_code == 2 and _failure_result(stopped).message is None
    killed = ChildFailedError("train", {1: failure(1, -signal.SIGKILL)})
    result = _failure_result(killed)
    assert result.exit_code == 1 and "rank 1 was killed by SIGKILL" in (result.message or "")


def test_follower_run_directory_writes_nothing(tmp_path: Path) -> None:
    import torch

    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.training.artifacts import ValidationRow

    path = tmp_path / "run"
    follower = FollowerRunDirectory(path)
    follower.write_config(TrackNetConfig())
    follower.logger()("a line")
    follower.append_metrics(ValidationRow(0, 1, 1.0, 1.0, 0, 0, 0, 0, None, 0.1, 0.0, 1.0))
    follower.forget_rows_after(0)
    follower.save_weights("last", torch.nn.Linear(1, 1), TrackNetConfig(), threshold=0.5, loss="softmax", metrics={})
    follower.save_state({"step": 1})
    follower.write_overlay(0, None)
    follower.write_curves()
    assert not path.exists()


def test_single_process_collectives_are_identities() -> None:
    import torch

    values = torch.tensor([1.0, float("nan")])
    assert SINGLE.mean(values) is values
    assert SINGLE.broadcast({"a": 1}) == {"a": 1} and SINGLE.agree(True) is True


# ---------------------------------------------------------------- two real processes (gloo)
def test_two_processes_write_one_run_directory(synth_root: Path, tmp_path: Path) -> None:
    import torch

    from tracknet_cli.inference.checkpoint import load_model

    proc = tracknet(
        "train",
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "data.split.val=[game1/Clip3]",
        "--devices",
        "2",
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "launching 2 processes under torchrun (gloo on CPU)" in proc.stderr
    summary = json.loads(proc.stdout)  # one JSON document: only rank 0 printed
    assert summary["steps"] == 6 and summary["stopped_because"] == "max_steps"
    assert proc.stderr.count("run directory:") == 1 and "Traceback" not in proc.stderr

    runs = tmp_path / "runs" / "quickstart"
    assert [p.name for p in runs.iterdir()] == ["exp1"]
    run_dir = runs / "exp1"
    assert Path(summary["run_dir"]) == run_dir
    for rel in [
        "config.yaml",
        "train.log",
        "metrics.csv",
        "overlays/epoch_000.png",
        "curves.png",
        "weights/best.safetensors",
        "weights/last.safetensors",
        "state/last.pt",
    ]:
        assert (run_dir / rel).is_file(), rel
    assert not list(run_dir.rglob("*.tmp"))

    log = (run_dir / "train.log").read_text()
    assert log.count(" start: ") == 1 and "'world_size': 2" in log and "'effective_batch_size': 8" in log
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [3, 6]
    state = torch.load(run_dir / "state" / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["world_size"] == 2
    model, _ = load_model(run_dir / "weights" / "last.safetensors", "cpu")
    saved = model.state_dict()
    assert set(saved) == set(state["model"])  # the unwrapped model: no DDP "module." prefix
    for name, tensor in saved.items():
        assert torch.equal(tensor, state["model"][name]), name


def test_a_usage_error_on_every_rank_is_said_once_with_its_exit_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = tracknet(
        "train", *TINY, "--set", f"data.root={empty}", "--devices", "2", "--out", str(tmp_path / "run"), timeout=180
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no labelled clips" in errors[0], proc.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_stops_every_rank_then_resume_finishes(stop: signal.Signals, synth_root: Path, tmp_path: Path) -> None:
    """Ctrl-C, or SIGTERM to the launcher (`kill PID`, a scheduler): rank 0 saves the state, exit 130."""
    import torch

    run_dir = tmp_path / "interrupted"
    args = [a if a != "training.max_steps=6" else "training.max_steps=100000" for a in TINY]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracknet_cli",
            "train",
            *args,
            "--set",
            f"data.root={synth_root}",
            "--set",
            "training.val_every=1000",
            "--set",
            "training.scheduler=none",
            "--devices",
            "2",
            "--out",
            str(run_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    seen, deadline = "", time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if line.startswith("step ") or not line:
            break
    assert "step " in seen, seen
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + err
    assert "interrupted at step" in err and "Traceback" not in err
    assert err.count("error:") == 1, err
    stopped_at = torch.load(run_dir / "state" / "last.pt", weights_only=True)["step"]
    assert stopped_at >= 1

    resumed = tracknet(
        "train",
        "--resume",
        str(run_dir),
        "--set",
        f"training.max_steps={stopped_at + 2}",
        "--devices",
        "2",
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == stopped_at + 2
    assert torch.load(run_dir / "state" / "last.pt", weights_only=True)["step"] == stopped_at + 2
