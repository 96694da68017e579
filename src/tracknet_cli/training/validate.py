"""Validation inside `fit`: score the model through the inference engine, calibrate the threshold on
exactly what `tracknet predict` computes, and write what a validation produces (metrics row,
overlay, last/best weights, state), deciding best and early stopping.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tracknet_cli.training.artifacts import ValidationRow

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.training.session import Session


def calibrate_threshold(predictions: list[Any], protocol: str, default: float) -> float:
    """The decode threshold that maximises F1 on these (validation) predictions; ties keep the lower one."""
    import numpy as np

    from tracknet_cli.training.evaluate import score_predictions

    if not predictions:
        return default
    scores = np.concatenate([p.score[np.isfinite(p.score)] for p in predictions])
    candidates = (
        np.unique(
            np.round(np.concatenate([np.linspace(0.05, 0.95, 19), np.quantile(scores, np.linspace(0, 1, 41))]), 4)
        )
        if scores.size
        else np.array([default])
    )
    candidates = candidates[(candidates > 0) & (candidates < 1)]
    best_t, best_f1 = default, -1.0
    for t in candidates:
        f1 = score_predictions(predictions, protocol, float(t))[0].f1
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t


def validate(s: "Session") -> bool:
    """Evaluate, calibrate the threshold, record (metrics row, overlay, weights, best and early stopping),
    reset the counters once (`Session.validated`) and write the state; True when early stopping says stop.

    Under DDP rank 0 validates the whole validation set on the unwrapped model (so no padding of a
    sharded validation set can bias the metrics) while the others wait for its decisions.
    """
    s.read_losses()
    if not s.dist.is_main:
        return _follow(s)
    started = time.monotonic()
    report = _evaluate(s)
    metrics = _calibrate(s, report)
    row = _row(s, report, metrics)
    stop, is_best = _record(s, row, {**metrics.to_dict(), "val_loss": report.loss}, report.overlay)
    s.validated(time.monotonic() - started)
    s.save_state()
    s.log(f"validation: {row.as_dict()}{' (best)' if is_best else ''}")
    s.hooks.on_validation(row, is_best)
    state = s.state
    if s.dist.enabled:
        s.dist.broadcast(
            {
                "stop": stop,
                "threshold": state.threshold,
                "schedule": state.schedule.state_dict(),
                "best": state.best.state_dict(),
                "early_stopping": state.early.state_dict(),
            }
        )
    return stop


def _follow(s: "Session") -> bool:
    """A DDP follower takes rank 0's decisions."""
    shared = s.dist.broadcast(None)
    state = s.state
    state.schedule.load_state_dict(shared["schedule"])
    state.best.load_state_dict(shared["best"])
    state.early.load_state_dict(shared["early_stopping"])
    state.threshold = shared["threshold"]
    s.validated(None)
    return bool(shared["stop"])


def _evaluate(s: "Session") -> Any:
    """The validation windows through the engine `tracknet predict` runs, at the threshold in force."""
    from tracknet_cli.training.evaluate import evaluate

    tc, built = s.tc, s.built
    built.model.eval()
    report = evaluate(
        s.validation_engine(),
        built.val_ds,
        protocol=tc.protocol,
        threshold=s.state.threshold,
        loss_fn=built.loss_fn,
        overlay_frames=tc.overlay_frames,
        keep_predictions=tc.calibrate_threshold,
    )
    built.model.train()
    return report


def _calibrate(s: "Session", report: Any) -> Any:
    """With `training.calibrate_threshold`, the threshold that maximises F1 on these predictions becomes
    the one in force (the checkpoint's); the metrics at the threshold in force."""
    from tracknet_cli.training.evaluate import score_predictions

    tc, state = s.tc, s.state
    if not tc.calibrate_threshold:
        return report.metrics
    state.threshold = calibrate_threshold(report.predictions, tc.protocol, tc.threshold)
    return score_predictions(report.predictions, tc.protocol, state.threshold)[0]


def _row(s: "Session", report: Any, metrics: Any) -> ValidationRow:
    """metrics.csv's row: the training loss and loader waits since the last validation, the scores now."""
    state = s.state
    return ValidationRow(
        epoch=state.epoch,
        step=state.step,
        train_loss=state.losses.mean,
        val_loss=report.loss,
        precision=metrics.precision,
        recall=metrics.recall,
        f1=metrics.f1,
        accuracy=metrics.accuracy,
        l2_median=metrics.l2_median,
        lr=state.lr,
        data_wait=s.clock.data_wait(),
        seconds=s.clock.elapsed(),
        threshold=state.threshold,
        tp=metrics.tp,
        fp1=metrics.fp1,
        fp2=metrics.fp2,
        fn=metrics.fn,
        tn=metrics.tn,
    )


def _record(s: "Session", row: ValidationRow, values: dict[str, Any], overlay: Any) -> tuple[bool, bool]:
    """Best, schedule and early stopping see the scores (`values`); the metrics row, the overlay and
    the weights are written; (stop, is_best)."""
    state = s.state
    is_best = state.best.update(values, state.step)
    state.schedule.on_validation(values)
    stop = state.early.update(values)
    s.files.append_metrics(row)
    overlay_path = s.files.write_overlay(state.epoch, overlay)
    assert s.loggers is not None
    s.loggers.validation(row, overlay_path)
    meta = {k: v for k, v in row.as_dict().items() if isinstance(v, (int, float))}
    s.save_weights("last", meta)
    if is_best:
        s.save_weights("best", meta)
    return stop, is_best
