"""The training loop: `fit`, a short coordinator a reader can hold in their head.

The order of events is all here, top to bottom: open the run directory, build the run, open the
session (a fresh or resumed state), train epochs of steps (each step followed by a validation or the
periodic state when one is due), validate the last step, close. Each job lives in its own function:
`build` (data, model, precision, loss, optimizer, schedule: training/build.py), `open_session` (the
training state, resume, the clock: training/session.py), `train_step` (the arithmetic,
training/step.py), `validate` (scoring through the inference engine, calibration, artefacts,
training/validate.py). `fit` never prints and never exits the process: it reports through `Hooks`
(training/hooks.py; the CLI renders them) and raises project exceptions. Every file it writes goes
through `RunDirectory` (atomic writes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import Interrupted, RuntimeFailure
from tracknet_cli.training.artifacts import ValidationRow
from tracknet_cli.training.hooks import Hooks  # also imported from here (`training.loop.Hooks`) by the CLI

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.training.distributed import DistContext
    from tracknet_cli.training.session import Session


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    epochs_done: int
    stopped_because: str
    best: ValidationRow | None
    last: ValidationRow | None
    rows: list[ValidationRow] = field(default_factory=list)


def fit(
    config: TrackNetConfig,
    run_dir: Path,
    hooks: Hooks | None = None,
    *,
    resume: dict[str, Any] | None = None,
    init_from: Path | None = None,
    dist: "DistContext | None" = None,
) -> TrainResult:
    """Train `config` into `run_dir` until a budget runs out. Ctrl-C saves the state and raises Interrupted.

    `resume` is a state loaded from `state/last.pt`: the run continues at its step with the optimizer,
    schedule, loss scale, callbacks, RNG and data order restored. `init_from` starts from a trained
    model's weights. `dist` (inside an initialised process group) trains this rank's shard under
    DistributedDataParallel: rank 0 alone validates and writes; the others follow its decisions
    (docs/training/distributed.md).
    """
    from tracknet_cli.training.build import build
    from tracknet_cli.training.distributed import SINGLE
    from tracknet_cli.training.session import open_run_directory, open_session

    dist = dist or SINGLE
    files = open_run_directory(config, run_dir, resumed=resume is not None, dist=dist)
    built = build(config, dist=dist, init_from=init_from)
    s = open_session(files, built, hooks or Hooks(), resume=resume, dist=dist)
    built.model.train()
    s.state.optimizer.zero_grad(set_to_none=True)
    try:
        stopped = _train(s)
        _last_weights(s)
    except KeyboardInterrupt:
        s.save_state()
        s.save_weights("last", {})
        s.log(f"interrupted at step {s.state.step}; state saved")
        raise Interrupted(
            f"interrupted at step {s.state.step}; state saved (continue with: tracknet train --resume {run_dir})"
        ) from None
    except RuntimeFailure as exc:
        s.log(f"stopped: {exc.line()}")
        raise
    finally:
        _close(s, unwinding=sys.exc_info()[1] is not None)
    s.log(f"done: {s.state.step} steps, stopped by {stopped}")
    s.log(s.clock.budget_line())
    return _result(s, stopped)


def _train(s: "Session") -> str:
    """Epochs of steps until a budget, early stopping or the last epoch ends them; says which."""
    from tracknet_cli.training.validate import validate

    tc, state = s.tc, s.state
    if s.budget_spent() is not None:  # a run resumed at its budget trains no step
        return "epochs"
    while state.epoch < tc.epochs:
        stopped = _train_epoch(s)
        if stopped is not None:
            return stopped
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        if s.has_val and tc.val_every is None and validate(s):
            return "early stopping"
    return "epochs"


def _train_epoch(s: "Session") -> str | None:
    """The rest of this epoch's steps, each followed by a validation or the periodic state when due;
    why the run stops (a budget before early stopping), or None at the end of the epoch."""
    from tracknet_cli.training.step import train_step
    from tracknet_cli.training.validate import validate

    tc, state = s.tc, s.state
    for batches in s.epoch_batches():
        state.schedule.apply(state.optimizer, s.schedule_step())
        train_step(
            s.built.train_model,
            batches,
            s.built.loss_fn,
            state.optimizer,
            autocast_dtype=s.built.autocast_dtype,
            scaler=state.scaler,
            grad_clip=tc.grad_clip,
            on_loss=s.on_loss,
        )
        synced = s.after_step(len(batches))
        early = False
        if s.has_val and tc.val_every is not None and state.step % tc.val_every == 0:
            early = validate(s)
        elif state.step % tc.checkpoint_every == 0:
            s.save_periodic_state()
        reason = s.budget_spent(synced)
        if reason is not None or early:
            return reason or "early stopping"
    return None


def _last_weights(s: "Session") -> None:
    """The last step's weights, unless a validation just wrote them: validated, or without a validation
    set saved as they are with the state."""
    from tracknet_cli.training.validate import validate

    if s.last_validated == s.state.step:
        return
    if s.has_val:
        validate(s)
    else:
        s.read_losses()
        s.save_weights("last", {})
        s.save_state()


def _close(s: "Session", *, unwinding: bool) -> None:
    """Close the loggers and draw the curves, however the run ended."""
    if s.loggers is not None:
        s.loggers.close()
    try:
        s.files.write_curves()
    except OSError:
        if not unwinding:  # else the error on its way out (a full disk naming its file) is the one to report
            raise


def _result(s: "Session", stopped: str) -> TrainResult:
    rows = s.files.rows
    return TrainResult(
        run_dir=s.run_dir,
        steps=s.state.step,
        epochs_done=s.state.epoch,
        stopped_because=stopped,
        best=_best_of(rows, s.state.best),
        last=rows[-1] if rows else None,
        rows=rows,
    )


def _best_of(rows: list[ValidationRow], best: Any) -> ValidationRow | None:
    """The row of the best validation (after a resume, maybe one from before the interruption)."""
    return next((r for r in rows if r.step == best.best_step), None)
