"""The training loop: plain code a reader can hold in their head, with a few named hooks.

`fit` never prints and never exits the process: it reports through `Hooks` (the CLI renders them)
and raises project exceptions. Every file it writes goes through `RunDirectory` (atomic writes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError, InputError, Interrupted, RuntimeFailure
from tracknet_cli.training.artifacts import RunDirectory, ValidationRow


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


def pick_device(name: str) -> "Any":
    """`auto`: CUDA, then MPS, then CPU. Asking for a device that is not there is a config error."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for but no CUDA device is available (use auto or cpu)")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError("device mps asked for but MPS is not available (use auto or cpu)")
    return torch.device(name)


def autocast_dtype(precision: str, device: "Any") -> "Any":
    """The autocast dtype, or None for fp32. CPU stays fp32 under `auto` (bf16 only when asked)."""
    import torch

    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("training.precision=fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


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


def load_init_weights(model: "Any", path: Path) -> None:
    """`--init-from`: copy a trained model's weights into this architecture; any mismatch is one line."""
    from safetensors.torch import load_file

    from tracknet_cli.training.checkpoint import read_metadata

    meta = read_metadata(path)
    state = load_file(str(path), device="cpu")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        what = (f"shape of {shapes[0]} {tuple(state[shapes[0]].shape)} vs {tuple(own[shapes[0]].shape)}" if shapes
                else f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}")
        theirs = meta.config
        raise ConfigError(
            f"--init-from {path} does not fit this model ({what}); it was trained with "
            f"backbone {theirs.model.backbone.type}, decoder {theirs.model.decoder}, "
            f"temporal_fusion {theirs.model.temporal_fusion}, sequence_length {theirs.data.sequence_length}: "
            f"use the same model settings"
        )
    model.load_state_dict(state, strict=True)


def fit(config: TrackNetConfig, run_dir: Path, hooks: Hooks | None = None, *,
        resume: dict[str, Any] | None = None, init_from: Path | None = None) -> TrainResult:
    """Train `config` into `run_dir` until a budget runs out. Ctrl-C saves the state and raises Interrupted.

    `resume` is a state loaded from `state/last.pt`: the run continues at its step with the optimizer,
    schedule, callbacks, RNG and data order restored. `init_from` starts from a trained model's weights.
    """
    import torch

    from tracknet_cli.data.datasets import build_datasets, make_loader
    from tracknet_cli.models import build_model
    from tracknet_cli.training.artifacts import restore_rng
    from tracknet_cli.training.callbacks import BestCheckpoint, EarlyStopping, build_schedule
    from tracknet_cli.training.evaluate import evaluate
    from tracknet_cli.training.losses import build_loss
    from tracknet_cli.training.seeding import seed_everything

    hooks = hooks or Hooks()
    tc = config.training
    seed_everything(tc.seed)
    device = pick_device(tc.device)
    amp = autocast_dtype(tc.precision, device)

    rundir = RunDirectory(run_dir, keep_rows=resume is not None)
    rundir.write_config(config)
    log = rundir.logger(hooks.on_log)

    train_ds, val_ds, _ = build_datasets(config)
    if len(train_ds) == 0:
        raise ConfigError(f"no training windows in {config.data.root}: check data.split and data.subset")
    has_val = len(val_ds) > 0
    loader = make_loader(train_ds, batch_size=tc.batch_size, shuffle=True, num_workers=config.data.num_workers, seed=tc.seed)
    model = build_model(config)
    if init_from is not None:
        load_init_weights(model, init_from)
    model = model.to(device)
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

    params = sum(p.numel() for p in model.parameters())
    start_info = {
        "device": str(device), "precision": "fp32" if amp is None else str(amp).replace("torch.", ""),
        "train_windows": len(train_ds), "val_windows": len(val_ds), "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps, "params": params,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "run_dir": str(run_dir), "resumed_at_step": step if resume is not None else None,
    }
    log(f"{'resume' if resume is not None else 'start'}: {start_info}")
    hooks.on_start(start_info)

    t0 = time.monotonic() - elapsed_before
    t_local, first_step = time.monotonic(), step
    best_row: ValidationRow | None = None
    window_loss, window_n, wait_s, busy_s = 0.0, 0, 0.0, 0.0
    if resume is not None:
        window_loss, window_n = resumed_window
    last_validated = step if resume is not None else -1
    stopped = "epochs"

    def state() -> dict[str, Any]:
        return {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "elapsed": time.monotonic() - t0,
            "window_loss": window_loss, "window_n": window_n,
            "threshold": threshold, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "best": best.state_dict(), "early_stopping": early.state_dict(),
            "rng": rundir.rng_state(),
        }

    def save_weights(which: str, metrics: dict[str, Any]) -> None:
        rundir.save_weights(which, model, config, threshold=threshold, loss=tc.loss, metrics=metrics)

    def validate() -> bool:
        """Validate, calibrate the threshold, write metrics/overlay/weights/state; True when early stopping says stop."""
        nonlocal best_row, window_loss, window_n, wait_s, busy_s, last_validated, threshold
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
        rundir.write_overlay(epoch, report.overlay)
        meta = {k: v for k, v in row.as_dict().items() if isinstance(v, (int, float))}
        save_weights("last", meta)
        if is_best:
            best_row = row
            save_weights("best", meta)
        last_validated = step
        rundir.save_state(state())
        log(f"validation: {row.as_dict()}{' (best)' if is_best else ''}")
        hooks.on_validation(row, is_best)
        return stop

    def budget_spent() -> str | None:
        if tc.max_steps is not None and step >= tc.max_steps:
            return "max_steps"
        if tc.time_limit is not None and time.monotonic() - t0 >= tc.time_limit:
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
                batch = batch.to(device)
                with torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
                    logits = model(batch.frames.float().div_(255.0))
                out = loss_fn(logits.float(), batch.heatmaps, batch.mask)
                loss_value = float(out.total.detach())
                if not math.isfinite(loss_value):
                    terms = ", ".join(f"{k}={v:.4g}" for k, v in out.terms.items())
                    lr_now = optimizer.param_groups[0]["lr"]
                    rundir.save_state(state())  # the parameters are still those of the last good step
                    raise RuntimeFailure(
                        f"non-finite loss at step {step + 1} (loss={loss_value}, {terms}, lr={lr_now:.3g}); "
                        f"the last good state is in {run_dir / 'state' / 'last.pt'}",
                        hint="lower training.lr or set training.grad_clip",
                    )
                (out.total / tc.grad_accumulation).backward()
                micro += 1
                window_loss += loss_value
                window_n += 1
                if micro % tc.grad_accumulation == 0:
                    if tc.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    schedule.apply(optimizer, step)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    batch_in_epoch += micro
                    micro = 0
                    busy_s += time.monotonic() - t_got
                    hooks.on_step(StepInfo(
                        step=step, total_steps=total_steps, epoch=epoch, loss=loss_value,
                        lr=optimizer.param_groups[0]["lr"],
                        samples_per_s=(step - first_step) * tc.batch_size * tc.grad_accumulation / max(time.monotonic() - t_local, 1e-9),
                    ))
                    if has_val and tc.val_every is not None and step % tc.val_every == 0:
                        if validate():
                            stopped, done = "early stopping", True
                    elif step % tc.checkpoint_every == 0:
                        rundir.save_state(state())
                    reason = budget_spent()
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
        rundir.write_curves()
    log(f"done: {step} steps, stopped by {stopped}")
    rows = rundir.rows
    return TrainResult(run_dir=run_dir, steps=step, epochs_done=epoch, stopped_because=stopped,
                       best=best_row or _best_of(rows, best), last=rows[-1] if rows else None, rows=rows)


def _best_of(rows: list[ValidationRow], best: Any) -> ValidationRow | None:
    """After a resume, the best row may come from before the interruption."""
    return next((r for r in rows if r.step == best.best_step), None)
