"""Callbacks: hand-checked behaviour and a state round trip through torch.save / torch.load(weights_only=True)
that must give identical subsequent behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tracknet_cli.errors import ConfigError
from tracknet_cli.training.callbacks import (
    BestCheckpoint,
    EarlyStopping,
    LRSchedule,
    ReduceOnPlateau,
    WarmupCosine,
    build_schedule,
    metric_mode,
)

torch.set_num_threads(1)

F1S = [0.10, 0.30, 0.30, 0.305, 0.20, 0.50, float("nan"), 0.40, 0.45, 0.45, 0.44, 0.60]


def round_trip(state: dict, tmp_path: Path) -> dict:
    path = tmp_path / "state.pt"
    torch.save({"callback": state}, path)
    return torch.load(path, weights_only=True)["callback"]


def test_metric_mode() -> None:
    assert metric_mode("f1") == "max" and metric_mode("ap") == "max"
    assert metric_mode("val_loss") == "min" and metric_mode("l2_median") == "min"


def test_best_checkpoint_max_and_min() -> None:
    best = BestCheckpoint("f1")
    flags = [best.update({"f1": v}, step=i) for i, v in enumerate(F1S)]
    assert flags == [True, True, False, True, False, True, False, False, False, False, False, True]
    assert (best.best, best.best_step) == (0.60, 11)
    low = BestCheckpoint("val_loss")
    assert [low.update({"val_loss": v}, i) for i, v in enumerate([3.0, 2.0, 2.5, 1.0])] == [True, True, False, True]
    with pytest.raises(ConfigError, match="no metric 'f1'"):
        BestCheckpoint("f1").update({"recall": 0.5}, 0)
    assert BestCheckpoint("l2_median").update({"l2_median": None}, 0) is False  # undefined never wins


def test_early_stopping_patience_and_min_delta() -> None:
    stop = EarlyStopping("f1", patience=2, min_delta=0.01)
    # best 0.10 → 0.30 → (0.30 same: bad 1) → (0.305 < 0.31: bad 2 → stop)
    assert [stop.update({"f1": v}) for v in F1S[:4]] == [False, False, False, True]
    never = EarlyStopping("f1", patience=None)
    assert not any(never.update({"f1": 0.0}) for _ in range(50))
    with pytest.raises(ConfigError):
        EarlyStopping(patience=0)


def test_warmup_cosine_values() -> None:
    s = WarmupCosine(total_steps=10, warmup_steps=2, min_ratio=0.1)
    assert s.multiplier(0) == pytest.approx(0.5)
    assert s.multiplier(1) == pytest.approx(1.0)
    assert s.multiplier(2) == pytest.approx(1.0)  # cosine starts at its top
    assert s.multiplier(6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # halfway: 0.55
    assert s.multiplier(10) == pytest.approx(0.1) and s.multiplier(50) == pytest.approx(0.1)
    assert LRSchedule(warmup_steps=4).multiplier(1) == pytest.approx(0.5)
    assert LRSchedule().multiplier(0) == 1.0


def test_schedule_writes_param_groups_with_their_own_base_lr() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW([{"params": [model.weight], "lr": 1e-3}, {"params": [model.bias], "lr": 1e-4}])
    s = build_schedule("cosine", total_steps=4, warmup_steps=0)
    assert s.apply(opt, 0) == pytest.approx(1.0)
    m = s.apply(opt, 2)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 * m, 1e-4 * m])
    assert [g["base_lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-4])
    # base_lr lives in the optimizer's own state dict, so a resumed optimizer keeps it.
    opt2 = torch.optim.AdamW([{"params": [model.weight], "lr": 9.0}, {"params": [model.bias], "lr": 9.0}])
    opt2.load_state_dict(opt.state_dict())
    assert s.apply(opt2, 4) == pytest.approx(0.0)
    assert [g["base_lr"] for g in opt2.param_groups] == pytest.approx([1e-3, 1e-4])


def test_reduce_on_plateau() -> None:
    s = ReduceOnPlateau("f1", warmup_steps=0, factor=0.5, patience=2, cooldown=1, min_multiplier=0.2)
    scales = []
    for v in [0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.6]:
        s.on_validation({"f1": v})
        scales.append(s.multiplier(100))
    # two bad → 0.5; cooldown eats one; two more bad → 0.25; cooldown; two bad → floor 0.2; improvement keeps it.
    assert scales == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2])


def test_build_schedule_errors() -> None:
    with pytest.raises(ConfigError, match="step budget"):
        build_schedule("cosine")
    with pytest.raises(ConfigError, match="unknown scheduler"):
        build_schedule("step")
    assert isinstance(build_schedule("none", warmup_steps=3), LRSchedule)


def _drive(best: BestCheckpoint, stop: EarlyStopping, sched: LRSchedule, values: list[float], start: int) -> list:
    trace = []
    for i, v in enumerate(values, start=start):
        metrics = {"f1": v}
        sched.on_validation(metrics)
        trace.append((best.update(metrics, step=i), stop.update(metrics), sched.multiplier(i * 10)))
    return trace


@pytest.mark.parametrize("scheduler", ["cosine", "plateau", "none"])
def test_state_round_trip_gives_identical_behaviour(scheduler: str, tmp_path: Path) -> None:
    def fresh():
        return (
            BestCheckpoint("f1"),
            EarlyStopping("f1", patience=3, min_delta=0.001),
            build_schedule(
                scheduler, total_steps=100, warmup_steps=5, **({"patience": 1} if scheduler == "plateau" else {})
            ),
        )

    head, tail = F1S[:5], F1S[5:]
    reference = fresh()
    _drive(*reference, head, start=0)
    expected = _drive(*reference, tail, start=len(head))

    interrupted = fresh()
    _drive(*interrupted, head, start=0)
    saved = [round_trip(obj.state_dict(), tmp_path) for obj in interrupted]
    resumed = (
        BestCheckpoint("recall"),
        EarlyStopping("recall", patience=9),
        build_schedule(
            scheduler, total_steps=7, warmup_steps=0, **({"metric": "recall"} if scheduler == "plateau" else {})
        ),
    )
    for obj, state in zip(resumed, saved):
        obj.load_state_dict(state)
    assert _drive(*resumed, tail, start=len(head)) == expected
    assert [o.state_dict() for o in resumed] == [o.state_dict() for o in reference]


def test_load_rejects_a_foreign_state() -> None:
    with pytest.raises(ConfigError, match="does not match early_stopping"):
        EarlyStopping().load_state_dict(BestCheckpoint().state_dict())
    with pytest.raises(ConfigError):
        WarmupCosine(10).load_state_dict(ReduceOnPlateau().state_dict())
