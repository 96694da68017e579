"""The training loop: plain code a reader can hold in their head, with a few named hooks.

`fit` never prints and never exits the process: it reports through `Hooks` (the CLI renders them)
and raises project exceptions. Every file it writes goes through `RunDirectory` (atomic writes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError, InputError, Interrupted, RuntimeFailure
from tracknet_cli.training.artifacts import RunDirectory, ValidationRow

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.training.distributed import DistContext


@dataclass
class StepInfo:
    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    samples_per_s: float


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


def make_optimizer(model: "Any", lr: float, weight_decay: float, backbone_lr_multiplier: float) -> "Any":
    """AdamW; the backbone gets lr × multiplier; norms and biases get no weight decay."""
    import torch

    groups: list[dict[str, Any]] = []
    for part, params in model.param_groups().items():
        trainable = [p for p in params if p.requires_grad]
        scale = backbone_lr_multiplier if part == "backbone" else 1.0
        for plist, wd in (([p for p in trainable if p.ndim > 1], weight_decay), ([p for p in trainable if p.ndim <= 1], 0.0)):
            if plist:
                groups.append({"params": plist, "lr": lr * scale, "base_lr": lr * scale, "weight_decay": wd, "name": part})
    if not groups:
        raise ConfigError("no trainable parameters: model.backbone.freeze leaves nothing to train")
    return torch.optim.AdamW(groups, lr=lr)


def calibrate_threshold(predictions: list[Any], protocol: str, default: float) -> float:
    """The decode threshold that maximises F1 on these (validation) predictions; ties keep the lower one."""
    import numpy as np

    from tracknet_cli.training.evaluate import score_predictions

    if not predictions:
        return default
    scores = np.concatenate([p.score[np.isfinite(p.score)] for p in predictions])
    candidates = np.unique(np.round(np.concatenate([np.linspace(0.05, 0.95, 19), np.quantile(scores, np.linspace(0, 1, 41))]), 4)) if scores.size else np.array([default])
    candidates = candidates[(candidates > 0) & (candidates < 1)]
    best_t, best_f1 = default, -1.0
    for t in candidates:
        f1 = score_predictions(predictions, protocol, float(t))[0].f1
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t


ARCHITECTURE_KEYS = ("data.sequence_length",)  # besides model.*: settings that change parameter shapes


def architecture_differences(ours: TrackNetConfig, theirs: TrackNetConfig) -> list[str]:
    """`key: theirs -> ours` for every model setting (and frames per window) that differs."""
    from tracknet_cli.config.load import flatten

    def shape_settings(config: TrackNetConfig) -> dict[str, Any]:
        flat = {f"model.{k}": v for k, v in flatten(config.model.model_dump(mode="json")).items()}
        flat.pop("model.backbone.pretrained", None)  # where the weights came from, not their shapes
        flat.pop("model.backbone.freeze", None)
        flat.update({key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in ARCHITECTURE_KEYS})
        return flat

    a, b = shape_settings(theirs), shape_settings(ours)
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_init_from(config: TrackNetConfig, path: Path) -> None:
    """Refuse `--init-from` weights of another architecture before a run directory is made."""
    from tracknet_cli.inference.checkpoint import read_metadata

    diffs = architecture_differences(config, read_metadata(path).config)
    if diffs:
        raise ConfigError(
            f"--init-from {path} was trained with other model settings ({'; '.join(diffs[:3])}): "
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
    schedule, callbacks, RNG and data order restored. `init_from` starts from a trained model's weights.
    `dist` (inside an initialised process group) trains this rank's shard under DistributedDataParallel:
    rank 0 alone validates and writes; the others follow its decisions (docs/training/distributed.md).
    """
    import torch

    from tracknet_cli.data.datasets import build_datasets, make_loader
    from tracknet_cli.models import build_model
    from tracknet_cli.training.artifacts import restore_rng
    from tracknet_cli.training.callbacks import BestCheckpoint, EarlyStopping, build_schedule
    from tracknet_cli.training.distributed import SINGLE, FollowerRunDirectory, no_grad_sync
    from tracknet_cli.inference.engine import forward_logits
    from tracknet_cli.training.evaluate import evaluate
    from tracknet_cli.training.loggers import RunLoggers, open_loggers
    from tracknet_cli.training.losses import build_loss
    from tracknet_cli.inference.runtime import pick_device, prepare_model_precision, use_channels_last
    from tracknet_cli.training.seeding import seed_everything

    hooks = hooks or Hooks()
    tc = config.training
    seed_everything(tc.seed)
    dist = dist or SINGLE
    device = dist.device(pick_device(tc.device))

    rundir = RunDirectory(run_dir, keep_rows=resume is not None) if dist.is_main else FollowerRunDirectory(run_dir)
    rundir.write_config(config)
    log = rundir.logger(hooks.on_log)

    train_ds, val_ds, _ = build_datasets(config)
    if len(train_ds) == 0:
        raise ConfigError(f"no training windows in {config.data.root}: check data.split and data.subset")
    has_val = len(val_ds) > 0
    loader = make_loader(train_ds, batch_size=tc.batch_size, shuffle=True, num_workers=config.data.num_workers, seed=tc.seed,
                         rank=dist.rank, world_size=dist.world_size, pin_memory=device.type == "cuda")
    model = build_model(config)
    if init_from is not None:
        load_init_weights(model, init_from)
    model = model.to(device)
    # Under DDP rank 0 decides and the others follow: the ranks must compute alike.
    precision = dist.broadcast(prepare_model_precision(model, config, device) if dist.is_main else None)
    use_channels_last(model, config, precision)  # the followers' models (rank 0's is already done)
    amp = precision.dtype
    loss_fn = build_loss(tc.loss)
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay, tc.backbone_lr_multiplier)

    batches_per_epoch = len(loader)
    steps_per_epoch = max(1, batches_per_epoch // tc.grad_accumulation)
    total_steps = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    schedule = build_schedule(tc.scheduler, total_steps=total_steps, warmup_steps=tc.warmup_steps, metric=tc.best_metric)
    best = BestCheckpoint(tc.best_metric)
    early = EarlyStopping(tc.best_metric, patience=tc.early_stopping_patience, min_delta=tc.early_stopping_min_delta)

    step, epoch, batch_in_epoch, elapsed_before = 0, 0, 0, 0.0
    threshold = tc.threshold
    if resume is not None:
        try:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["schedule"])
            best.load_state_dict(resume["best"])
            early.load_state_dict(resume["early_stopping"])
            step, epoch, batch_in_epoch = int(resume["step"]), int(resume["epoch"]), int(resume["batch_in_epoch"])
            elapsed_before, threshold = float(resume["elapsed"]), float(resume["threshold"])
            resumed_window = float(resume["window_loss"]), int(resume["window_n"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise InputError(f"{run_dir / 'state' / 'last.pt'} does not match this run ({str(exc).splitlines()[0]})") from exc
        restore_rng(resume["rng"])
        rundir.forget_rows_after(step)
        if int(resume.get("world_size", 1)) != dist.world_size:
            log(f"resumed on {dist.world_size} processes after {resume.get('world_size', 1)}: "
                f"the rest of epoch {epoch} is not the exact data order of the interrupted run")
    # What the step calls: DDP around the model (which stays what is saved and validated), then compiled.
    train_model = dist.wrap(model, device)
    if tc.compile:
        train_model = torch.compile(train_model)
    # On an accelerator the loss is read back to the host (a synchronisation) every sync_every steps only.
    sync_every = tc.sync_every or (1 if device.type == "cpu" else 20)
    eager = sync_every == 1

    params = sum(p.numel() for p in model.parameters())
    start_info = {
        "device": str(device), "precision": "fp32" if amp is None else str(amp).replace("torch.", ""),
        "train_windows": len(train_ds), "val_windows": len(val_ds), "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps, "params": params,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "run_dir": str(run_dir), "resumed_at_step": step if resume is not None else None,
        "world_size": dist.world_size, "effective_batch_size": tc.batch_size * tc.grad_accumulation * dist.world_size,
    }
    log(f"{'resume' if resume is not None else 'start'}: {start_info}")
    log(f"precision: {precision.describe()}")
    loggers = open_loggers(config, run_dir, resumed_at=step if resume is not None else None) if dist.is_main else RunLoggers()
    loggers.start(start_info)
    hooks.on_start(start_info)

    t0 = time.monotonic() - elapsed_before
    t_local, first_step = time.monotonic(), step
    best_row: ValidationRow | None = None
    window_loss, window_n, wait_s, busy_s = 0.0, 0, 0.0, 0.0
    if resume is not None:
        window_loss, window_n = resumed_window
    last_validated = step if resume is not None else -1
    stopped = "epochs"
    pending: list[Any] = []  # per-batch loss tensors not yet read back to the host
    last_loss, saved_step, read_step = float("nan"), step, step

    def state() -> dict[str, Any]:
        return {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "elapsed": time.monotonic() - t0,
            "window_loss": window_loss, "window_n": window_n,
            "threshold": threshold, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "best": best.state_dict(), "early_stopping": early.state_dict(),
            "rng": rundir.rng_state(), "world_size": dist.world_size,
        }

    def read_losses(terms: dict[str, Any] | None = None) -> float | None:
        """Read the pending batch losses back (one sync), mean them over ranks, check they are finite.

        Eager (CPU): called before each backward, so a non-finite loss stops the run with the parameters
        of the last good step, saved. Deferred (GPU): the bad step may have been applied, so the state
        is not saved again and the last periodic one is named. Returns the mean of what it read.
        """
        nonlocal pending, window_loss, window_n, last_loss, read_step
        if not pending:
            return None
        values = dist.mean(torch.stack(pending)).tolist()
        pending = []
        for value in values:
            if not math.isfinite(value):
                lr_now = optimizer.param_groups[0]["lr"]
                named = ", ".join(f"{k}={float(v):.4g}" for k, v in (terms or {}).items())
                if eager:
                    rundir.save_state(state())  # the parameters are still those of the last good step
                    where = f"at step {step + 1} (loss={value}, {named}, lr={lr_now:.3g}); the last good state is in"
                else:
                    where = (f"between steps {read_step + 1} and {step} (loss={value}, lr={lr_now:.3g}); "
                             f"the last good state (step {saved_step}) is in")
                raise RuntimeFailure(
                    f"non-finite loss {where} {run_dir / 'state' / 'last.pt'}",
                    hint="lower training.lr or set training.grad_clip",
                )
            window_loss += value
            window_n += 1
            last_loss = value
        read_step = step
        return sum(values) / len(values)

    def save_state() -> None:
        """The periodic state: every rank calls it (the loss read-back is a collective); rank 0 writes."""
        nonlocal saved_step
        read_losses()
        rundir.save_state(state())
        saved_step = step

    def save_weights(which: str, metrics: dict[str, Any]) -> None:
        rundir.save_weights(which, model, config, threshold=threshold, loss=tc.loss, metrics=metrics)

    def validate() -> bool:
        """Validate, calibrate the threshold, write metrics/overlay/weights/state; True when early stopping says stop.

        Under DDP rank 0 validates the whole validation set on the unwrapped model (so no padding of a
        sharded validation set can bias the metrics) while the others wait for its decisions.
        """
        nonlocal best_row, window_loss, window_n, wait_s, busy_s, last_validated, threshold, saved_step
        read_losses()
        if not dist.is_main:
            shared = dist.broadcast(None)
            schedule.load_state_dict(shared["schedule"])
            best.load_state_dict(shared["best"])
            early.load_state_dict(shared["early_stopping"])
            threshold = shared["threshold"]
            window_loss, window_n, wait_s, busy_s = 0.0, 0, 0.0, 0.0
            last_validated = saved_step = step
            return bool(shared["stop"])
        model.eval()
        report = evaluate(model, val_ds, config, device=device, protocol=tc.protocol, threshold=threshold,
                          loss=loss_fn, loss_name=tc.loss, amp=amp, overlay_frames=tc.overlay_frames,
                          keep_predictions=tc.calibrate_threshold)
        model.train()
        metrics = report.metrics
        if tc.calibrate_threshold:
            from tracknet_cli.training.evaluate import score_predictions

            threshold = calibrate_threshold(report.predictions, tc.protocol, tc.threshold)
            metrics = score_predictions(report.predictions, tc.protocol, threshold)[0]
        row = ValidationRow(
            epoch=epoch, step=step, train_loss=window_loss / window_n if window_n else float("nan"),
            val_loss=report.loss, precision=metrics.precision, recall=metrics.recall, f1=metrics.f1,
            accuracy=metrics.accuracy, l2_median=metrics.l2_median, lr=optimizer.param_groups[0]["lr"],
            data_wait=wait_s / (wait_s + busy_s) if (wait_s + busy_s) > 0 else 0.0,
            seconds=time.monotonic() - t0, threshold=threshold,
            tp=metrics.tp, fp1=metrics.fp1, fp2=metrics.fp2, fn=metrics.fn, tn=metrics.tn,
        )
        window_loss, window_n, wait_s, busy_s = 0.0, 0, 0.0, 0.0
        values = {**metrics.to_dict(), "val_loss": report.loss}
        is_best = best.update(values, step)
        schedule.on_validation(values)
        stop = early.update(values)
        rundir.append_metrics(row)
        overlay_path = rundir.write_overlay(epoch, report.overlay)
        loggers.validation(row, overlay_path)
        meta = {k: v for k, v in row.as_dict().items() if isinstance(v, (int, float))}
        save_weights("last", meta)
        if is_best:
            best_row = row
            save_weights("best", meta)
        last_validated = saved_step = step
        rundir.save_state(state())
        log(f"validation: {row.as_dict()}{' (best)' if is_best else ''}")
        hooks.on_validation(row, is_best)
        if dist.enabled:
            dist.broadcast({"stop": stop, "threshold": threshold, "schedule": schedule.state_dict(),
                            "best": best.state_dict(), "early_stopping": early.state_dict()})
        return stop

    def schedule_step() -> int:
        """The step the lr schedule sees. With a time limit (one process), whichever budget is nearer
        its end, so a run cut by the clock has still decayed its learning rate. Ranks of a distributed
        run keep to steps: their clocks differ and their learning rates must not."""
        if tc.time_limit is None or dist.enabled:
            return step
        by_time = int((time.monotonic() - t0) / tc.time_limit * total_steps)
        return min(max(step, by_time), total_steps)

    def budget_spent(synced: bool = True) -> str | None:
        """Every rank stops at the same step: the wall clock is rank 0's, checked where the ranks sync anyway."""
        if tc.max_steps is not None and step >= tc.max_steps:
            return "max_steps"
        if tc.time_limit is not None and (synced or not dist.enabled) and dist.agree(time.monotonic() - t0 >= tc.time_limit):
            return "time_limit"
        return None

    model.train()
    optimizer.zero_grad(set_to_none=True)
    try:
        done = budget_spent() is not None
        while not done and epoch < tc.epochs:
            loader.sampler.set_epoch(epoch, skip=batch_in_epoch * tc.batch_size)
            micro = 0
            t_fetch = time.monotonic()
            for batch in loader:
                t_got = time.monotonic()
                wait_s += t_got - t_fetch
                batch = batch.to(device, non_blocking=True)
                # DDP all-reduces gradients on the last micro-batch of an accumulation only.
                with no_grad_sync(train_model, sync=(micro + 1) % tc.grad_accumulation == 0):
                    with torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
                        logits, no_ball = forward_logits(train_model, batch.frames.float().div_(255.0))
                    out = loss_fn(logits, batch.heatmaps, batch.mask, no_ball_logit=no_ball)
                    pending.append(out.total.detach())
                    if eager:
                        read_losses(out.terms)
                    (out.total / tc.grad_accumulation).backward()
                micro += 1
                if micro % tc.grad_accumulation == 0:
                    if tc.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    schedule.apply(optimizer, schedule_step())
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    batch_in_epoch += micro
                    micro = 0
                    busy_s += time.monotonic() - t_got
                    synced = eager or step % sync_every == 0 or step == first_step + 1
                    if not eager and synced:
                        read_losses()
                    lr_now = optimizer.param_groups[0]["lr"]
                    rate = (step - first_step) * tc.batch_size * tc.grad_accumulation * dist.world_size / max(time.monotonic() - t_local, 1e-9)
                    if synced:
                        loggers.step(step, last_loss, lr_now, rate)
                    hooks.on_step(StepInfo(step=step, total_steps=total_steps, epoch=epoch, loss=last_loss, lr=lr_now,
                                           samples_per_s=rate))
                    if has_val and tc.val_every is not None and step % tc.val_every == 0:
                        if validate():
                            stopped, done = "early stopping", True
                    elif step % tc.checkpoint_every == 0:
                        save_state()
                    reason = budget_spent(synced)
                    if reason is not None:
                        stopped, done = reason, True
                    if done:
                        break
                else:
                    busy_s += time.monotonic() - t_got
                t_fetch = time.monotonic()
            if not done:
                epoch += 1
                batch_in_epoch = 0
                if has_val and tc.val_every is None and validate():
                    stopped, done = "early stopping", True
        if last_validated != step:
            if has_val:
                validate()
            else:
                read_losses()
                save_weights("last", {})
                rundir.save_state(state())
    except KeyboardInterrupt:
        rundir.save_state(state())
        save_weights("last", {})
        log(f"interrupted at step {step}; state saved")
        raise Interrupted(
            f"interrupted at step {step}; state saved (continue with: tracknet train --resume {run_dir})"
        ) from None
    except RuntimeFailure as exc:
        log(f"stopped: {exc.line()}")
        raise
    finally:
        loggers.close()
        rundir.write_curves()
    log(f"done: {step} steps, stopped by {stopped}")
    rows = rundir.rows
    return TrainResult(run_dir=run_dir, steps=step, epochs_done=epoch, stopped_because=stopped,
                       best=best_row or _best_of(rows, best), last=rows[-1] if rows else None, rows=rows)


def _best_of(rows: list[ValidationRow], best: Any) -> ValidationRow | None:
    """After a resume, the best row may come from before the interruption."""
    return next((r for r in rows if r.step == best.best_step), None)
