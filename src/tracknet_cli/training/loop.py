"""The training loop: `fit`, a short coordinator a reader can hold in their head.

The order of events is all here; each job lives in its own function: `open_session` (setup and
resume, training/session.py), `train_step` (the arithmetic, training/step.py), `validate`
(scoring through the inference engine, calibration, artefacts, training/validate.py).
`fit` never prints and never exits the process: it reports through `Hooks` (the CLI renders them)
and raises project exceptions. Every file it writes goes through `RunDirectory` (atomic writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError, InputError, Interrupted, RuntimeFailure
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


ARCHITECTURE_KEYS = ("data.sequence_length",)  # besides model.*: settings that change parameter shapes


def architecture_differences(ours: TrackNetConfig, theirs: TrackNetConfig) -> list[str]:
    """`key: theirs -> ours` for every model setting (and frames per window) that differs."""
    from tracknet_cli.config.load import flatten

    def shape_settings(config: TrackNetConfig) -> dict[str, Any]:
        flat = {f"model.{k}": v for k, v in flatten(config.model.model_dump(mode="json")).items()}
        flat.pop("model.backbone.pretrained", None)  # where the weights came from, not their shapes
        flat.pop("model.backbone.freeze", None)
        # The scale the first convolution samples at, not a shape: a full-resolution model's weights
        # start a stride-2 one (how the real-time models were trained, docs/models/pretrained.md).
        flat.pop("model.unet.input_stride", None)
        flat.update({key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in ARCHITECTURE_KEYS})
        return flat

    a, b = shape_settings(theirs), shape_settings(ours)
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_init_from(config: TrackNetConfig, path: Path, given: str | None = None) -> None:
    """Refuse `--init-from` weights of another architecture before a run directory is made. `given`: what
    the user typed (a model name such as `tennis`), named in the messages rather than the file it resolved to."""
    from tracknet_cli.inference.checkpoint import is_onnx, read_metadata

    shown = given or path
    if is_onnx(path):
        raise InputError(f"--init-from {shown} is an ONNX model: it holds no torch weights "
                         "(give the .safetensors checkpoint it was exported from)")
    diffs = architecture_differences(config, read_metadata(path).config)
    if diffs:
        raise ConfigError(
            f"--init-from {shown} was trained with other model settings ({'; '.join(diffs[:3])}): "
            f"use the same settings (e.g. --set {diffs[0].split(':')[0]}=...) or train from scratch"
        )


def load_init_weights(model: "Any", path: Path) -> None:
    """`--init-from`: copy a trained model's weights into this architecture (shapes checked again here)."""
    from safetensors.torch import load_file

    state = load_file(str(path), device="cpu")
    own = model.state_dict()
    mismatched = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    mismatched += [k for k in state if k not in own]
    if mismatched:
        raise ConfigError(f"--init-from {path} does not fit this model (first mismatch: {mismatched[0]})")
    model.load_state_dict(state, strict=True)


def fit(config: TrackNetConfig, run_dir: Path, hooks: Hooks | None = None, *,
        resume: dict[str, Any] | None = None, init_from: Path | None = None,
        dist: "DistContext | None" = None) -> TrainResult:
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
                train_step(s.train_model, batches, s.loss_fn, state.optimizer, amp=s.amp, scaler=state.scaler,
                           grad_clip=tc.grad_clip, on_loss=s.on_loss)
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
        if s.loggers is not None:
            s.loggers.close()
        s.rundir.write_curves()
    s.log(f"done: {state.step} steps, stopped by {stopped}")
    s.log(s.budget_line())
    rows = s.rundir.rows
    return TrainResult(run_dir=run_dir, steps=state.step, epochs_done=state.epoch, stopped_because=stopped,
                       best=s.best_row or _best_of(rows, state.best), last=rows[-1] if rows else None, rows=rows)


def _best_of(rows: list[ValidationRow], best: Any) -> ValidationRow | None:
    """After a resume, the best row may come from before the interruption."""
    return next((r for r in rows if r.step == best.best_step), None)
