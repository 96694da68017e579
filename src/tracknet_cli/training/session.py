"""One training process between `build` and the end of `fit`: the run directory, the `TrainState`,
resume, the batches of an epoch, the loss read-back and its non-finite forensics, the budgets, the
periodic state and the logging sinks.

Kept apart from `fit` so the coordinator reads as the order of events. The numbers between steps
are kept by two small parts (training/meters.py): the loss (`state.losses`, a `LossMeter`) and the
time (`clock`, a `Clock`); `validated` resets both, once per validation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import RuntimeFailure
from tracknet_cli.training.artifacts import RunDirectory, StepRow
from tracknet_cli.training.build import Built
from tracknet_cli.training.hooks import Hooks, StepInfo
from tracknet_cli.training.meters import Clock
from tracknet_cli.training.step import TrainState

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.data.datasets import Batch
    from tracknet_cli.inference.engine import Engine
    from tracknet_cli.training.distributed import DistContext
    from tracknet_cli.training.loggers import RunLoggers


@dataclass
class Session:
    """One training process: what was built, the `TrainState`, the clock, where the run stands."""

    config: TrackNetConfig
    run_dir: Path
    hooks: Hooks
    dist: "DistContext"
    files: RunDirectory  # what is written into `run_dir` (rank 0; the others' write nothing)
    log: Callable[[str], None]
    built: Built  # data, model, loss, optimizer, schedule, precision (training/build.py)
    state: TrainState
    sync_every: int  # read the loss back to the host every N steps (1 on CPU)
    resumed: bool = False
    loggers: "RunLoggers | None" = None
    clock: Clock = field(default_factory=Clock)  # started by `open_session`, once the run is set up
    first_step: int = 0  # this process's first step
    saved_step: int = 0  # the step of the last state written
    last_validated: int = -1

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
        self.clock.fetching()
        for batch in loader:
            self.clock.got_batch()
            group.append(batch.to(self.built.device, non_blocking=True))
            if len(group) == tc.grad_accumulation:
                yield group
                group = []
            self.clock.fetching()

    # ------------------------------------------------------------ losses
    def on_loss(self, out: Any) -> None:
        """Each micro-batch's loss, before its backward: kept on the device, read at once on CPU."""
        self.state.losses.keep(out.total)
        if self.eager:
            self.read_losses(out.terms)

    def read_losses(self, terms: dict[str, Any] | None = None) -> None:
        """Read the pending batch losses back (one sync), mean them over ranks, check they are finite."""
        import torch

        losses = self.state.losses
        pending = losses.take()
        if not pending:
            return
        for value in self.dist.mean(torch.stack(pending)).tolist():
            if not math.isfinite(value):
                raise self._non_finite(value, terms)
            losses.add(value)
        losses.read_step = self.state.step

    def _non_finite(self, value: float, terms: dict[str, Any] | None) -> RuntimeFailure:
        """Eager (CPU): read before each backward, so a non-finite loss stops the run with the parameters
        of the last good step, saved. Deferred (GPU): the bad step may have been applied, so the state
        is not saved again and the last periodic one is named."""
        state = self.state
        named = ", ".join(f"{k}={float(v):.4g}" for k, v in (terms or {}).items())
        if self.eager:
            self.save_state()  # the parameters are still those of the last good step
            where = f"at step {state.step + 1} (loss={value}, {named}, lr={state.lr:.3g}); the last good state is in"
        else:
            where = (
                f"between steps {state.losses.read_step + 1} and {state.step} (loss={value}, lr={state.lr:.3g}); "
                f"the last good state (step {self.saved_step}) is in"
            )
        return RuntimeFailure(
            f"non-finite loss {where} {self.files.state_path}", hint="lower training.lr or set training.grad_clip"
        )

    def after_step(self, micro_batches: int) -> bool:
        """Count the step, read losses when due, report it; True when the host knows its loss (synced)."""
        tc, state, loss = self.tc, self.state, self.state.losses
        state.step += 1
        state.batch_in_epoch += micro_batches
        self.clock.stepped()
        synced = self.eager or state.step % self.sync_every == 0 or state.step == self.first_step + 1
        if not self.eager and synced:
            self.read_losses()
        samples = (state.step - self.first_step) * tc.batch_size * tc.grad_accumulation * self.dist.world_size
        rate = samples / max(self.clock.process_seconds(), 1e-9)
        if synced and self.loggers is not None:
            self.loggers.step(state.step, loss.last, state.lr, rate)
            self.files.append_step(StepRow(state.step, state.epoch, loss.last, state.lr, rate))
        self.hooks.on_step(
            StepInfo(
                step=state.step,
                total_steps=self.built.total_steps,
                epoch=state.epoch,
                loss=loss.last,
                lr=state.lr,
                samples_per_s=rate,
            )
        )
        return synced

    # ------------------------------------------------------------ budgets
    def schedule_step(self) -> int:
        """The step the lr schedule sees: with a time limit, the clock's (`Clock.schedule_step`). Ranks
        of a distributed run keep to steps: their clocks differ and their learning rates must not."""
        if self.dist.enabled:
            return self.state.step
        return self.clock.schedule_step(self.state.step, self.built.total_steps)

    def budget_spent(self, synced: bool = True) -> str | None:
        """Every rank stops at the same step: the wall clock is rank 0's, checked where the ranks sync anyway."""
        tc = self.tc
        if tc.max_steps is not None and self.state.step >= tc.max_steps:
            return "max_steps"
        if (
            tc.time_limit is not None
            and (synced or not self.dist.enabled)
            and self.dist.agree(self.clock.out_of_time())
        ):
            return "time_limit"
        return None

    def validated(self, seconds: float | None) -> None:
        """A validation ended at this step (rank 0 timed it; followers pass None). The one reset: the
        training-loss sum and the loader waits start again, and what the validation wrote counts as saved."""
        self.clock.validated(seconds)
        self.state.losses.reset()
        self.last_validated = self.saved_step = self.state.step

    # ------------------------------------------------------------ files
    def save_state(self) -> None:
        """Write `state/last.pt` now (rank 0; no collective: the pending losses are not read back)."""
        self.files.save_state(
            self.state.state_dict(
                elapsed=self.clock.elapsed(), rng=self.files.rng_state(), world_size=self.dist.world_size
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


def open_run_directory(config: TrackNetConfig, run_dir: Path, *, resumed: bool, dist: "DistContext") -> RunDirectory:
    """The run directory with the run's config.yaml in it, before anything else can fail (rank 0; the
    others' writes are no-ops). A resumed run continues its metrics.csv and steps.csv."""
    from tracknet_cli.training.distributed import FollowerRunDirectory

    files = RunDirectory(run_dir, keep_rows=resumed) if dist.is_main else FollowerRunDirectory(run_dir)
    files.write_config(config)
    return files


def open_session(
    files: RunDirectory, built: Built, hooks: Hooks, *, resume: dict[str, Any] | None, dist: "DistContext"
) -> Session:
    """The session of what `build` built, writing into `files`: a fresh `TrainState`, or `resume`'s
    (state/last.pt) restored; the start logged, the loggers open, the clock started."""
    config = built.config
    s = Session(
        config=config,
        run_dir=files.path,
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
    s.first_step = s.saved_step = s.state.losses.read_step = s.state.step
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
    s.clock = Clock(
        tc.time_limit,
        estimate_validation=(lambda: estimate_validation_seconds(s)) if s.has_val else None,
        log=s.log if s.dist.is_main else None,
    )
    s.clock.start(trained_before=state.elapsed)


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
