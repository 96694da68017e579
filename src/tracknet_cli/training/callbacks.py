"""Stateful training helpers: best checkpoint, early stopping, learning-rate schedules.

Each keeps its state as plain Python data (`state_dict()` / `load_state_dict()`: ints, floats, strs,
bools, None, lists, dicts), so the training state saves with `torch.save` and loads back with
`torch.load(weights_only=True)`; a resumed run behaves exactly like one that never stopped.
No torch import here: schedules produce multipliers and write them into optimizer param groups.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Protocol

from tracknet_cli.errors import ConfigError

Mode = Literal["max", "min"]

LOWER_IS_BETTER = frozenset({"val_loss", "loss", "l2_median", "l2_mean", "rmse"})


def metric_mode(metric: str) -> Mode:
    """'min' for losses and pixel errors, 'max' for rates such as F1."""
    return "min" if metric in LOWER_IS_BETTER else "max"


def _improves(value: float, best: float | None, mode: Mode, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _metric_value(metrics: Mapping[str, Any], metric: str) -> float:
    if metric not in metrics:
        raise ConfigError(
            f"validation produced no metric '{metric}'", hint=f"choose one of {', '.join(sorted(metrics))}"
        )
    value = metrics[metric]
    return float("nan") if value is None else float(value)


def _check_state(state: Mapping[str, Any], kind: str, keys: tuple[str, ...]) -> None:
    if state.get("kind") != kind or any(k not in state for k in keys):
        raise ConfigError(f"saved state does not match {kind} (keys: {', '.join(sorted(state))})")


class BestCheckpoint:
    """Tracks the best validation so far by one metric; `update` says whether the current one is it."""

    def __init__(self, metric: str = "f1", mode: Mode | None = None) -> None:
        self.metric = metric
        self.mode: Mode = mode or metric_mode(metric)
        self.best: float | None = None
        self.best_step: int | None = None

    def update(self, metrics: Mapping[str, Any], step: int) -> bool:
        """True when this validation is the new best (save weights/best.safetensors then). NaN never is."""
        value = _metric_value(metrics, self.metric)
        if not _improves(value, self.best, self.mode, 0.0):
            return False
        self.best, self.best_step = value, int(step)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "best_checkpoint",
            "metric": self.metric,
            "mode": self.mode,
            "best": self.best,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state(state, "best_checkpoint", ("metric", "mode", "best", "best_step"))
        self.metric, self.mode = str(state["metric"]), state["mode"]
        self.best = None if state["best"] is None else float(state["best"])
        self.best_step = None if state["best_step"] is None else int(state["best_step"])


class EarlyStopping:
    """Stop after `patience` validations in a row without an improvement larger than `min_delta`.

    `patience=None` disables it (`update` then always returns False but still tracks the best).
    """

    def __init__(
        self, metric: str = "f1", patience: int | None = None, min_delta: float = 0.0, mode: Mode | None = None
    ) -> None:
        if patience is not None and patience < 1:
            raise ConfigError(f"early stopping patience must be at least 1 (or unset), got {patience}")
        if min_delta < 0:
            raise ConfigError(f"early stopping min_delta must be >= 0, got {min_delta}")
        self.metric = metric
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode: Mode = mode or metric_mode(metric)
        self.best: float | None = None
        self.bad_validations = 0

    def update(self, metrics: Mapping[str, Any]) -> bool:
        """Record one validation; True when training should stop now."""
        value = _metric_value(metrics, self.metric)
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_validations = value, 0
        else:
            self.bad_validations += 1
        return self.patience is not None and self.bad_validations >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "early_stopping",
            "metric": self.metric,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "best": self.best,
            "bad_validations": self.bad_validations,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state(state, "early_stopping", ("metric", "patience", "min_delta", "mode", "best", "bad_validations"))
        self.metric, self.mode = str(state["metric"]), state["mode"]
        self.patience = None if state["patience"] is None else int(state["patience"])
        self.min_delta = float(state["min_delta"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_validations = int(state["bad_validations"])


# ---------------------------------------------------------------- learning-rate schedules
class _ParamGroups(Protocol):
    param_groups: list[dict[str, Any]]


class LRSchedule:
    """lr of a param group = its `base_lr` × `multiplier(step)`; linear warmup over `warmup_steps`.

    `step` counts optimizer steps from 0 (the one about to be taken). The loop stores each group's
    `base_lr` (lr × backbone multiplier, ...) in the group dict; `apply` fills it from `lr` when missing.
    Optimizer param groups keep extra keys in their state_dict, so `base_lr` survives a resume.
    """

    name: str = "none"

    def __init__(self, warmup_steps: int = 0) -> None:
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def warmup(self, step: int) -> float:
        """(step+1)/warmup_steps during warmup, reaching 1 at the last warmup step; 1 afterwards."""
        if step >= self.warmup_steps:
            return 1.0
        return (step + 1) / self.warmup_steps

    def multiplier(self, step: int) -> float:
        return self.warmup(step)

    def on_validation(self, metrics: Mapping[str, Any]) -> None:
        """Hook after each validation (only reduce-on-plateau uses it)."""

    def apply(self, optimizer: _ParamGroups, step: int) -> float:
        """Set every group's lr for `step`; returns the multiplier (for logs)."""
        m = self.multiplier(step)
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * m
        return m

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state(state, self.name, ("warmup_steps",))
        self.warmup_steps = int(state["warmup_steps"])


class WarmupCosine(LRSchedule):
    """Linear warmup, then cosine from 1 down to `min_ratio` at `total_steps` (flat after it)."""

    name = "cosine"

    def __init__(self, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> None:
        super().__init__(warmup_steps)
        if total_steps < 1:
            raise ConfigError(f"a cosine schedule needs total_steps >= 1, got {total_steps}")
        if not 0.0 <= min_ratio <= 1.0:
            raise ConfigError(f"min_ratio must be within [0, 1], got {min_ratio}")
        self.total_steps = int(total_steps)
        self.min_ratio = float(min_ratio)

    def multiplier(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup(step)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "total_steps": self.total_steps, "min_ratio": self.min_ratio}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state(state, self.name, ("warmup_steps", "total_steps", "min_ratio"))
        super().load_state_dict(state)
        self.total_steps = int(state["total_steps"])
        self.min_ratio = float(state["min_ratio"])


class ReduceOnPlateau(LRSchedule):
    """Linear warmup, then multiply the lr by `factor` after `patience` validations without improvement.

    Never below `min_multiplier`; `cooldown` validations after a cut are not counted as bad.
    """

    name = "plateau"

    def __init__(
        self,
        metric: str = "f1",
        warmup_steps: int = 0,
        factor: float = 0.5,
        patience: int = 2,
        min_delta: float = 0.0,
        cooldown: int = 0,
        min_multiplier: float = 1e-3,
        mode: Mode | None = None,
    ) -> None:
        super().__init__(warmup_steps)
        if not 0.0 < factor < 1.0:
            raise ConfigError(f"plateau factor must be within (0, 1), got {factor}")
        if patience < 1:
            raise ConfigError(f"plateau patience must be at least 1, got {patience}")
        self.metric = metric
        self.mode: Mode = mode or metric_mode(metric)
        self.factor = float(factor)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_multiplier = float(min_multiplier)
        self.scale = 1.0
        self.best: float | None = None
        self.bad_validations = 0
        self.cooldown_left = 0

    def multiplier(self, step: int) -> float:
        return self.warmup(step) * self.scale

    def on_validation(self, metrics: Mapping[str, Any]) -> None:
        value = _metric_value(metrics, self.metric)
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_validations = value, 0
        elif self.cooldown_left > 0:
            self.cooldown_left -= 1
        else:
            self.bad_validations += 1
        if self.bad_validations >= self.patience:
            self.scale = max(self.min_multiplier, self.scale * self.factor)
            self.bad_validations, self.cooldown_left = 0, self.cooldown

    _KEYS = (
        "metric",
        "mode",
        "factor",
        "patience",
        "min_delta",
        "cooldown",
        "min_multiplier",
        "scale",
        "best",
        "bad_validations",
        "cooldown_left",
    )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **{k: getattr(self, k) for k in self._KEYS}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state(state, self.name, ("warmup_steps", *self._KEYS))
        super().load_state_dict(state)
        self.metric, self.mode = str(state["metric"]), state["mode"]
        for key in ("factor", "min_delta", "min_multiplier", "scale"):
            setattr(self, key, float(state[key]))
        for key in ("patience", "cooldown", "bad_validations", "cooldown_left"):
            setattr(self, key, int(state[key]))
        self.best = None if state["best"] is None else float(state["best"])


SCHEDULERS: tuple[str, ...] = ("cosine", "plateau", "none")


def build_schedule(
    name: str, *, total_steps: int | None = None, warmup_steps: int = 0, metric: str = "f1", **opts: Any
) -> LRSchedule:
    """`cosine` needs `total_steps` (the run's step budget); `plateau` watches `metric`; `none` is warmup only."""
    if name == "cosine":
        if total_steps is None:
            raise ConfigError(
                "the cosine schedule needs a step budget",
                hint="set training.max_steps or training.epochs, or use training.scheduler=plateau",
            )
        return WarmupCosine(total_steps=total_steps, warmup_steps=warmup_steps, **opts)
    if name == "plateau":
        return ReduceOnPlateau(metric=metric, warmup_steps=warmup_steps, **opts)
    if name == "none":
        return LRSchedule(warmup_steps=warmup_steps)
    raise ConfigError(f"unknown scheduler '{name}'", hint=f"choose one of {', '.join(SCHEDULERS)}")
