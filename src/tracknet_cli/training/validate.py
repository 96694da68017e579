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
    """Validate, calibrate the threshold, write metrics/overlay/weights/state; True when early stopping says stop.

    Under DDP rank 0 validates the whole validation set on the unwrapped model (so no padding of a
    sharded validation set can bias the metrics) while the others wait for its decisions.
    """
    s.read_losses()
    if not s.dist.is_main:
        return _follow(s)
    started = time.monotonic()
    row, stop, is_best = _score_and_record(s)
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


def _score_and_record(s: "Session") -> tuple[ValidationRow, bool, bool]:
    """Evaluate, calibrate, append the metrics row, write overlay and weights; (row, stop, is_best)."""
    from tracknet_cli.training.evaluate import evaluate, score_predictions

    tc, state, built = s.tc, s.state, s.built
    built.model.eval()
    report = evaluate(
        s.validation_engine(),
        built.val_ds,
        protocol=tc.protocol,
        threshold=state.threshold,
        loss_fn=built.loss_fn,
        overlay_frames=tc.overlay_frames,
        keep_predictions=tc.calibrate_threshold,
    )
    built.model.train()
    metrics = report.metrics
    if tc.calibrate_threshold:
        state.threshold = calibrate_threshold(report.predictions, tc.protocol, tc.threshold)
        metrics = score_predictions(report.predictions, tc.protocol, state.threshold)[0]
    busy = s.wait_s + s.busy_s
    row = ValidationRow(
        epoch=state.epoch,
        step=state.step,
        train_loss=state.mean_loss_since_validation,
        val_loss=report.loss,
        precision=metrics.precision,
        recall=metrics.recall,
        f1=metrics.f1,
        accuracy=metrics.accuracy,
        l2_median=metrics.l2_median,
        lr=state.lr,
        data_wait=s.wait_s / busy if busy > 0 else 0.0,
        seconds=time.monotonic() - s.t0,
        threshold=state.threshold,
        tp=metrics.tp,
        fp1=metrics.fp1,
        fp2=metrics.fp2,
        fn=metrics.fn,
        tn=metrics.tn,
    )
    values = {**metrics.to_dict(), "val_loss": report.loss}
    is_best = state.best.update(values, state.step)
    state.schedule.on_validation(values)
    stop = state.early.update(values)
    s.files.append_metrics(row)
    overlay_path = s.files.write_overlay(state.epoch, report.overlay)
    assert s.loggers is not None
    s.loggers.validation(row, overlay_path)
    meta = {k: v for k, v in row.as_dict().items() if isinstance(v, (int, float))}
    s.save_weights("last", meta)
    if is_best:
        s.best_row = row
        s.save_weights("best", meta)
    return row, stop, is_best
