"""What `fit` sets up once and the bookkeeping between steps: data, model, precision, the training
state, loss read-back and its non-finite forensics, budgets, periodic state and the logging sinks.

Kept apart from `fit` so the coordinator reads as the order of events, and each job here can be
read (and tested) on its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import RuntimeFailure
from tracknet_cli.training.artifacts import RunDirectory, StepRow, ValidationRow
from tracknet_cli.training.build import Built
from tracknet_cli.training.hooks import Hooks, StepInfo
from tracknet_cli.training.step import TrainState

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.data.datasets import Batch
    from tracknet_cli.inference.engine import Engine
    from tracknet_cli.training.distributed import DistContext
    from tracknet_cli.training.loggers import RunLoggers


@dataclass
class Session:
    """One training process: what was built, the `TrainState`, and the counters between validations."""

    config: TrackNetConfig
    run_dir: Path
    hooks: Hooks
    dist: "DistContext"
    files: RunDirectory  # what is written into `run_dir` (rank 0; the others' write nothing)
    log: Callable[[str], None]
    built: Built  # data, model, loss, optimizer, schedule, precision (training/build.py)
    state: TrainState
    sync_every: int  # read the loss back to the host every N steps (1 on CPU)
    loggers: "RunLoggers | None" = None
    resumed: bool = False
    t0: float = 0.0  # monotonic time the run would have started at (resume: minus the time trained before)
    t_local: float = 0.0
    first_step: int = 0
    wait_s: float = 0.0  # data-loader wait and compute time since the last validation
    busy_s: float = 0.0
    pending: list[Any] = field(default_factory=list)  # batch losses not yet read back to the host
    last_loss: float = float("nan")
    saved_step: int = 0
    read_step: int = 0
    last_validated: int = -1
    best_row: ValidationRow | None = None
    val_seconds: float | None = None  # how long the last validation took (or the estimate before the first)
    val_total_s: float = 0.0  # every validation of this process
    prep_s: float | None = None  # from the start of this process to its first batch (decoding, caching)
    _t_got: float = 0.0

    @property
    def tc(self) -> Any:
        return self.config.training

    @property
    def eager(self) -> bool:
        return self.sync_every == 1

    @property
    def has_val(self) -> bool:
        return len(self.built.val_ds) > 0

    def validation_engine(self) -> "Engine":
        """The inference engine validation runs `model` through: predict's, on the training device and
        precision, the training batch on a GPU (`default_batch`), the config's window stride."""
        from tracknet_cli.inference.engine import Engine

        built = self.built
        return Engine.for_model(
            built.model,
            self.config.data,
            loss_name=self.tc.loss,
            device=built.device,
            autocast_dtype=built.autocast_dtype,
            accelerator_batch=self.tc.batch_size,
        )

    # ------------------------------------------------------------ the data
    def epoch_batches(self) -> Iterator[list["Batch"]]:
        """This epoch's remaining steps, each its `grad_accumulation` micro-batches on the device
        (a tail too short for a whole step is left out), timing the waits for the loader."""
        tc, state, loader = self.tc, self.state, self.built.loader
        loader.sampler.set_epoch(state.epoch, skip=state.batch_in_epoch * tc.batch_size)
        group: list[Batch] = []
        t_fetch = time.monotonic()
        for batch in loader:
            self._t_got = time.monotonic()
            self.wait_s += self._t_got - t_fetch
            if self.prep_s is None:
                self._first_batch()
            group.append(batch.to(self.built.device, non_blocking=True))
            if len(group) == tc.grad_accumulation:
                yield group
                group = []
            t_fetch = time.monotonic()

    # ------------------------------------------------------------ losses
    def on_loss(self, out: Any) -> None:
        """Each micro-batch's loss, before its backward: kept on the device, read at once on CPU."""
        self.pending.append(out.total.detach())
        if self.eager:
            self.read_losses(out.terms)

    def read_losses(self, terms: dict[str, Any] | None = None) -> None:
        """Read the pending batch losses back (one sync), mean them over ranks, check they are finite.

        Eager (CPU): called before each backward, so a non-finite loss stops the run with the parameters
        of the last good step, saved. Deferred (GPU): the bad step may have been applied, so the state
        is not saved again and the last periodic one is named.
        """
        import torch

        if not self.pending:
            return
        values = self.dist.mean(torch.stack(self.pending)).tolist()
        self.pending = []
        state = self.state
        for value in values:
            if not math.isfinite(value):
                named = ", ".join(f"{k}={float(v):.4g}" for k, v in (terms or {}).items())
                if self.eager:
                    self.save_state()  # the parameters are still those of the last good step
                    where = (
                        f"at step {state.step + 1} (loss={value}, {named}, lr={state.lr:.3g}); "
                        "the last good state is in"
                    )
                else:
                    where = (
                        f"between steps {self.read_step + 1} and {state.step} (loss={value}, lr={state.lr:.3g}); "
                        f"the last good state (step {self.saved_step}) is in"
                    )
                raise RuntimeFailure(
                    f"non-finite loss {where} {self.files.state_path}",
                    hint="lower training.lr or set training.grad_clip",
                )
            state.loss_sum_since_validation += value
            state.losses_since_validation += 1
            self.last_loss = value
        self.read_step = state.step

    def after_step(self, micro_batches: int) -> bool:
        """Count the step, read losses when due, report it; True when the host knows its loss (synced)."""
        tc, state = self.tc, self.state
        state.step += 1
        state.batch_in_epoch += micro_batches
        self.busy_s += time.monotonic() - self._t_got
        synced = self.eager or state.step % self.sync_every == 0 or state.step == self.first_step + 1
        if not self.eager and synced:
            self.read_losses()
        samples = (state.step - self.first_step) * tc.batch_size * tc.grad_accumulation * self.dist.world_size
        rate = samples / max(time.monotonic() - self.t_local, 1e-9)
        if synced and self.loggers is not None:
            self.loggers.step(state.step, self.last_loss, state.lr, rate)
            self.files.append_step(StepRow(state.step, state.epoch, self.last_loss, state.lr, rate))
        self.hooks.on_step(
            StepInfo(
                step=state.step,
                total_steps=self.built.total_steps,
                epoch=state.epoch,
                loss=self.last_loss,
                lr=state.lr,
                samples_per_s=rate,
            )
        )
        return synced

    # ------------------------------------------------------------ budgets
    def _first_batch(self) -> None:
        """The data is ready: what it cost is preparation, which the time-based schedule leaves out."""
        self.prep_s = self._t_got - self.t_local
        if self.tc.time_limit is not None and self.dist.is_main:
            self.log(
                f"first batch after {self.prep_s:.1f} s of data preparation (opening clips, decoding, caching); "
                f"the learning-rate schedule runs over the {max(self.training_seconds() - self.prep_s, 0):.0f} s "
                "left for training"
            )

    def schedule_step(self) -> int:
        """The step the lr schedule sees. With a time limit (one process), whichever budget is nearer
        its end, so a run cut by the clock has still decayed its learning rate. The clock starts at this
        process's first batch: minutes of decoding and caching before it are not schedule (a fine-tune
        of footage never cached used to reach its last learning rates within a few steps). Ranks of a
        distributed run keep to steps: their clocks differ and their learning rates must not."""
        tc, step = self.tc, self.state.step
        if tc.time_limit is None or self.dist.enabled:
            return step
        prep = self.prep_s or 0.0
        span = max(self.training_seconds() - prep, 1e-9)
        by_time = int((time.monotonic() - self.t0 - prep) / span * self.built.total_steps)
        return min(max(step, by_time), self.built.total_steps)

    def budget_line(self) -> str:
        """Where this process's time went, for train.log's last lines."""
        total = time.monotonic() - self.t_local
        prep = self.prep_s or 0.0
        return (
            f"time: {total:.0f} s in all: {prep:.0f} s data preparation, {self.val_total_s:.0f} s validation, "
            f"{max(total - prep - self.val_total_s, 0):.0f} s training"
        )

    def training_seconds(self) -> float:
        """The part of `time_limit` left for training steps: the final validation must fit in the rest,
        so that a 10-minute run is done in 10 minutes. Its length is the last validation's, or before
        the first an estimate from timing the model on one batch of validation-sized windows."""
        limit = self.tc.time_limit
        if not self.has_val:
            return limit
        estimated = self.val_seconds is None
        if estimated:
            self.val_seconds = estimate_validation_seconds(self)
        training = max(limit - self.val_seconds, 0.5 * limit)
        if estimated and self.dist.is_main:  # the others do not validate (their estimate is 0)
            self.log(_time_limit_line(limit, self.val_seconds, training))
        return training

    def budget_spent(self, synced: bool = True) -> str | None:
        """Every rank stops at the same step: the wall clock is rank 0's, checked where the ranks sync anyway."""
        tc = self.tc
        if tc.max_steps is not None and self.state.step >= tc.max_steps:
            return "max_steps"
        if (
            tc.time_limit is not None
            and (synced or not self.dist.enabled)
            and self.dist.agree(time.monotonic() - self.t0 >= self.training_seconds())
        ):
            return "time_limit"
        return None

    def validated(self, seconds: float | None) -> None:
        """A validation ended at this step (rank 0 timed it; followers pass None): the training-loss sum
        and the data-wait counters start again, and what the validation wrote counts as saved."""
        if seconds is not None:
            self.val_seconds = seconds
            self.val_total_s += seconds
        state = self.state
        state.loss_sum_since_validation, state.losses_since_validation = 0.0, 0
        self.wait_s, self.busy_s = 0.0, 0.0
        self.last_validated = self.saved_step = state.step

    # ------------------------------------------------------------ files
    def save_state(self) -> None:
        """Write `state/last.pt` now (rank 0; no collective: the pending losses are not read back)."""
        self.files.save_state(
            self.state.state_dict(
                elapsed=time.monotonic() - self.t0, rng=self.files.rng_state(), world_size=self.dist.world_size
            )
        )

    def save_periodic_state(self) -> None:
        """The periodic state (every `training.checkpoint_every` steps without a validation): every rank
        calls it (the loss read-back is a collective); rank 0 writes."""
        self.read_losses()
        self.save_state()
        self.saved_step = self.state.step

    def save_weights(self, which: str, metrics: dict[str, Any]) -> None:
        self.files.save_weights(
            which, self.built.model, self.config, threshold=self.state.threshold, loss=self.tc.loss, metrics=metrics
        )


def open_session(
    config: TrackNetConfig,
    run_dir: Path,
    hooks: Hooks,
    *,
    resume: dict[str, Any] | None,
    init_from: Path | None,
    dist: "DistContext",
) -> Session:
    """Open the run directory, build the run (`build`), restore `resume`; log the start, open the sinks."""
    from tracknet_cli.training.build import build
    from tracknet_cli.training.distributed import FollowerRunDirectory

    files = RunDirectory(run_dir, keep_rows=resume is not None) if dist.is_main else FollowerRunDirectory(run_dir)
    files.write_config(config)
    built = build(config, dist=dist, init_from=init_from)
    s = Session(
        config=config,
        run_dir=run_dir,
        hooks=hooks,
        dist=dist,
        files=files,
        log=files.logger(hooks.on_log),
        built=built,
        state=_train_state(built),
        resumed=resume is not None,
        sync_every=config.training.sync_every or (1 if built.device.type == "cpu" else 20),
    )
    if resume is not None:
        _restore(s, resume)
    s.first_step = s.saved_step = s.read_step = s.state.step
    _start(s)
    return s


def _train_state(built: Built) -> TrainState:
    """A fresh training state around what was built: best/early-stopping trackers, the threshold."""
    from tracknet_cli.training.callbacks import BestCheckpoint, EarlyStopping

    tc = built.config.training
    return TrainState(
        model=built.model,
        optimizer=built.optimizer,
        schedule=built.schedule,
        best=BestCheckpoint(tc.best_metric),
        early=EarlyStopping(tc.best_metric, patience=tc.early_stopping_patience, min_delta=tc.early_stopping_min_delta),
        scaler=built.scaler,
        threshold=tc.threshold,
    )


def _restore(s: Session, resume: dict[str, Any]) -> None:
    """Continue where `resume` (state/last.pt) left off: training state, RNG, the rows written after it."""
    from tracknet_cli.training.artifacts import restore_rng

    state, dist = s.state, s.dist
    state.load_state_dict(resume, s.files.state_path)
    restore_rng(resume["rng"])
    s.files.forget_rows_after(state.step)
    if int(resume.get("world_size", 1)) != dist.world_size:
        s.log(
            f"resumed on {dist.world_size} processes after {resume.get('world_size', 1)}: "
            f"the rest of epoch {state.epoch} is not the exact data order of the interrupted run"
        )
    s.last_validated = state.step


def _start(s: Session) -> None:
    """Log what the run is, open the loggers, tell the hooks; start the clocks."""
    from tracknet_cli.training.loggers import RunLoggers, open_loggers

    tc, built, model, state = s.tc, s.built, s.built.model, s.state
    info = {
        "device": str(built.device),
        "precision": "fp32" if built.autocast_dtype is None else str(built.autocast_dtype).replace("torch.", ""),
        "train_windows": len(built.train_ds),
        "val_windows": len(built.val_ds),
        "steps_per_epoch": built.steps_per_epoch,
        "total_steps": built.total_steps,
        "params": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "run_dir": str(s.run_dir),
        "resumed_at_step": state.step if s.resumed else None,
        "world_size": s.dist.world_size,
        "effective_batch_size": tc.batch_size * tc.grad_accumulation * s.dist.world_size,
    }
    s.log(f"{'resume' if s.resumed else 'start'}: {info}")
    s.log(f"precision: {built.precision.describe()}")
    resumed_at = state.step if s.resumed else None
    s.loggers = open_loggers(s.config, s.run_dir, resumed_at=resumed_at) if s.dist.is_main else RunLoggers()
    s.loggers.start(info)
    s.hooks.on_start(info)
    s.t0 = time.monotonic() - state.elapsed
    s.t_local = time.monotonic()


def estimate_validation_seconds(s: Session) -> float:
    """Seconds one validation will take: the second of two timed forward passes of a batch of black
    windows (the first pays for kernel selection), scaled to the validation frames (one window every
    ``engine.stride`` frames) plus a quarter for decoding, the loss and the overlay. Rank 0 alone validates."""
    import numpy as np

    if not s.dist.is_main:
        return 0.0
    engine = s.validation_engine()  # the engine (and batch) validation will run
    wi, hi = engine.input_size
    windows = np.zeros((engine.batch_size, engine.window, hi, wi, 3), dtype=np.uint8)
    model = s.built.model
    was_training = model.training
    model.eval()
    try:
        seconds = 0.0
        for _ in range(2):
            t = time.monotonic()
            engine.forward(windows)[0].sum().item()
            seconds = time.monotonic() - t
    finally:
        model.train(was_training)
    frames = sum(len(clip) for clip in s.built.val_ds.clips)
    return 1.25 * seconds * -(-frames // (engine.batch_size * engine.stride))


def _time_limit_line(limit: float, val_seconds: float, training: float) -> str:
    """What train.log says of the split: a validation longer than the limit leaves makes the run overrun it."""
    if training <= limit - val_seconds:  # the same expression the split took, so no rounding decides it
        return f"time limit {limit:g} s: about {val_seconds:.0f} s kept for the final validation"
    return (
        f"time limit {limit:g} s: the final validation takes about {val_seconds:.0f} s, more than half of it; "
        f"training keeps {training:.0f} s and the run will take about {training + val_seconds:.0f} s "
        "(validate on fewer frames: data.split.val_ratio, data.split.val)"
    )
