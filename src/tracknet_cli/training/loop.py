"""The training loop: `fit`, a short coordinator a reader can hold in their head.

The order of events is all here; each job lives in its own function: `open_session` (setup and
resume, training/session.py), `train_step` (the arithmetic, training/step.py), `validate`
(scoring through the inference engine, calibration, artefacts, training/validate.py).
`fit` never prints and never exits the process: it reports through `Hooks` (the CLI renders them)
and raises project exceptions. Every file it writes goes through `RunDirectory` (atomic writes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import Interrupted, RuntimeFailure
from tracknet_cli.training.artifacts import ValidationRow
from tracknet_cli.training.session import StepInfo

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.training.distributed import DistContext


@dataclass
class Hooks:
    """Named hook points; each gets plain data. Defaults do nothing."""

    on_start: Callable[[dict[str, Any]], None] = lambda info: None
    on_step: Callable[[StepInfo], None] = lambda info: None
    on_validation: Callable[[ValidationRow, bool], None] = lambda row, is_best: None
    on_log: Callable[[str], None] = lambda line: None


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
    from tracknet_cli.training.distributed import SINGLE
    from tracknet_cli.training.session import open_session
    from tracknet_cli.training.step import train_step
    from tracknet_cli.training.validate import validate

    s = open_session(config, run_dir, hooks or Hooks(), resume=resume, init_from=init_from, dist=dist or SINGLE)
    tc, state = config.training, s.state
    stopped = "epochs"
    s.model.train()
    state.optimizer.zero_grad(set_to_none=True)
    try:
        done = s.budget_spent() is not None
        while not done and state.epoch < tc.epochs:
            for batches in s.epoch_batches():
                state.schedule.apply(state.optimizer, s.schedule_step())
                train_step(
                    s.train_model,
                    batches,
                    s.loss_fn,
                    state.optimizer,
                    amp=s.amp,
                    scaler=state.scaler,
                    grad_clip=tc.grad_clip,
                    on_loss=s.on_loss,
                )
                synced = s.after_step(len(batches))
                if s.has_val and tc.val_every is not None and state.step % tc.val_every == 0:
                    if validate(s):
                        stopped, done = "early stopping", True
                elif state.step % tc.checkpoint_every == 0:
                    s.checkpoint()
                reason = s.budget_spent(synced)
                if reason is not None:
                    stopped, done = reason, True
                if done:
                    break
            if not done:
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                if s.has_val and tc.val_every is None and validate(s):
                    stopped, done = "early stopping", True
        if s.last_validated != state.step:
            if s.has_val:
                validate(s)
            else:
                s.read_losses()
                s.save_weights("last", {})
                s.save_state()
    except KeyboardInterrupt:
        s.save_state()
        s.save_weights("last", {})
        s.log(f"interrupted at step {state.step}; state saved")
        raise Interrupted(
            f"interrupted at step {state.step}; state saved (continue with: tracknet train --resume {run_dir})"
        ) from None
    except RuntimeFailure as exc:
        s.log(f"stopped: {exc.line()}")
        raise
    finally:
        unwinding = sys.exc_info()[1] is not None
        if s.loggers is not None:
            s.loggers.close()
        try:
            s.rundir.write_curves()
        except OSError:
            if not unwinding:  # else the error on its way out (a full disk naming its file) is the one to report
                raise
    s.log(f"done: {state.step} steps, stopped by {stopped}")
    s.log(s.budget_line())
    rows = s.rundir.rows
    return TrainResult(
        run_dir=run_dir,
        steps=state.step,
        epochs_done=state.epoch,
        stopped_because=stopped,
        best=s.best_row or _best_of(rows, state.best),
        last=rows[-1] if rows else None,
        rows=rows,
    )


def _best_of(rows: list[ValidationRow], best: Any) -> ValidationRow | None:
    """After a resume, the best row may come from before the interruption."""
    return next((r for r in rows if r.step == best.best_step), None)
