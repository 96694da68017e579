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

from tracknet_cli.config.load import ResolvedConfig
from tracknet_cli.errors import ConfigError, Interrupted, RuntimeFailure
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

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device=cuda but no CUDA device is available (use auto or cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("training.device=mps but MPS is not available (use auto or cpu)")
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
        decay = [p for p in trainable if p.ndim > 1]
        no_decay = [p for p in trainable if p.ndim <= 1]
        scale = backbone_lr_multiplier if part == "backbone" else 1.0
        for plist, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if plist:
                groups.append({"params": plist, "lr": lr * scale, "base_lr": lr * scale, "weight_decay": wd, "name": part})
    if not groups:
        raise ConfigError("no trainable parameters (model.backbone.freeze with an empty decoder?)")
    return torch.optim.AdamW(groups, lr=lr)


def fit(resolved: ResolvedConfig, run_dir: Path, hooks: Hooks | None = None) -> TrainResult:
    """Train the resolved configuration into `run_dir` until a budget runs out. Ctrl-C saves and raises Interrupted."""
    import torch

    from tracknet_cli.data.datasets import build_datasets, make_loader
    from tracknet_cli.models import build_model
    from tracknet_cli.training.callbacks import BestCheckpoint, EarlyStopping, build_schedule
    from tracknet_cli.training.evaluate import evaluate
    from tracknet_cli.training.losses import build_loss
    from tracknet_cli.training.seeding import seed_everything

    hooks = hooks or Hooks()
    cfg = resolved.config
    tc = cfg.training
    seed_everything(tc.seed)
    device = pick_device(tc.device)
    amp = autocast_dtype(tc.precision, device)

    rundir = RunDirectory(run_dir)
    rundir.write_config(cfg)
    log = rundir.logger(hooks.on_log)

    train_ds, val_ds, _ = build_datasets(cfg)
    if len(train_ds) == 0:
        raise ConfigError(f"no training windows in {cfg.data.root}: check data.split and data.subset")
    loader = make_loader(train_ds, batch_size=tc.batch_size, shuffle=True, num_workers=cfg.data.num_workers, seed=tc.seed)
    model = build_model(cfg).to(device)
    loss_fn = build_loss(tc.loss)
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay, tc.backbone_lr_multiplier)

    steps_per_epoch = max(1, len(loader) // tc.grad_accumulation)
    total_steps = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    schedule = build_schedule(tc.scheduler, total_steps=total_steps, warmup_steps=tc.warmup_steps, metric=tc.best_metric)
    best = BestCheckpoint(tc.best_metric)
    early = EarlyStopping(tc.best_metric, patience=tc.early_stopping_patience, min_delta=tc.early_stopping_min_delta)

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start_info = {
        "device": str(device), "precision": "fp32" if amp is None else str(amp).replace("torch.", ""),
        "train_windows": len(train_ds), "val_windows": len(val_ds) if val_ds is not None else 0,
        "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
        "params": n_params, "params_trainable": n_train, "run_dir": str(run_dir),
    }
    log(f"start: {start_info}")
    hooks.on_start(start_info)

    step = 0
    epoch = 0
    t0 = time.monotonic()
    rows: list[ValidationRow] = []
    best_row: ValidationRow | None = None
    window_loss, window_n = 0.0, 0
    wait_s, busy_s = 0.0, 0.0
    last_validated = -1
    stopped = "epochs"

    def state() -> dict[str, Any]:
        return {
            "step": step, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "best": best.state_dict(), "early_stopping": early.state_dict(),
            "rng": rundir.rng_state(),
        }

    def validate() -> bool:
        """Validate, write metrics/overlay/weights; True when early stopping says stop."""
        nonlocal best_row, window_loss, window_n, wait_s, busy_s, last_validated
        model.eval()
        report = evaluate(model, val_ds, cfg, device=device, protocol=tc.protocol, threshold=tc.threshold,
                          loss=loss_fn, loss_name=tc.loss, amp=amp, overlay_frames=tc.overlay_frames)
        model.train()
        metrics = report.metrics
        row = ValidationRow(
            epoch=epoch, step=step,
            train_loss=window_loss / window_n if window_n else float("nan"),
            val_loss=report.loss, precision=metrics.precision, recall=metrics.recall, f1=metrics.f1,
            accuracy=metrics.accuracy, l2_median=metrics.l2_median, lr=optimizer.param_groups[0]["lr"],
            data_wait=wait_s / (wait_s + busy_s) if (wait_s + busy_s) > 0 else 0.0,
            seconds=time.monotonic() - t0, tp=metrics.tp, fp1=metrics.fp1, fp2=metrics.fp2, fn=metrics.fn, tn=metrics.tn,
        )
        window_loss, window_n, wait_s, busy_s = 0.0, 0, 0.0, 0.0
        rows.append(row)
        values = {**metrics.to_dict(), "val_loss": report.loss}
        is_best = best.update(values, step)
        schedule.on_validation(values)
        stop = early.update(values)
        meta = {k: v for k, v in row.as_dict().items() if isinstance(v, (int, float)) and v is not None}
        rundir.append_metrics(row)
        rundir.write_overlay(epoch, report.overlay)
        rundir.save_weights("last", model, cfg, threshold=tc.threshold, loss=tc.loss, metrics=meta)
        if is_best:
            best_row = row
            rundir.save_weights("best", model, cfg, threshold=tc.threshold, loss=tc.loss, metrics=meta)
        rundir.save_state(state())
        last_validated = step
        log(f"validation: {row.as_dict()}{' (best)' if is_best else ''}")
        hooks.on_validation(row, is_best)
        return stop

    model.train()
    optimizer.zero_grad(set_to_none=True)
    try:
        done = False
        while not done and epoch < tc.epochs:
            micro = 0
            t_fetch = time.monotonic()
            for batch in loader:
                t_got = time.monotonic()
                wait_s += t_got - t_fetch
                batch = batch.to(device)
                frames = batch.frames.float().div_(255.0)
                with torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
                    logits = model(frames)
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
                    lr_now = optimizer.param_groups[0]["lr"]
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    busy_s += time.monotonic() - t_got
                    elapsed = time.monotonic() - t0
                    hooks.on_step(StepInfo(step=step, total_steps=total_steps, epoch=epoch, loss=loss_value,
                                           lr=lr_now, samples_per_s=step * tc.batch_size * tc.grad_accumulation / max(elapsed, 1e-9)))
                    if tc.val_every is not None and step % tc.val_every == 0 and val_ds is not None:
                        if validate():
                            stopped, done = "early stopping", True
                    elif step % tc.checkpoint_every == 0:
                        rundir.save_state(state())
                    if tc.max_steps is not None and step >= tc.max_steps:
                        stopped, done = "max_steps", True
                    if tc.time_limit is not None and time.monotonic() - t0 >= tc.time_limit:
                        stopped, done = "time_limit", True
                    if done:
                        break
                else:
                    busy_s += time.monotonic() - t_got
                t_fetch = time.monotonic()
            if not done:
                epoch += 1
                if tc.val_every is None and val_ds is not None and validate():
                    stopped, done = "early stopping", True
        if last_validated != step:
            if val_ds is not None:
                validate()
            else:
                rundir.save_weights("last", model, cfg, threshold=tc.threshold, loss=tc.loss, metrics={})
                rundir.save_state(state())
    except KeyboardInterrupt:
        rundir.save_state(state())
        rundir.save_weights("last", model, cfg, threshold=tc.threshold, loss=tc.loss, metrics={})
        log(f"interrupted at step {step}; state saved")
        raise Interrupted(f"interrupted at step {step}; state saved to {run_dir / 'state' / 'last.pt'}") from None
    except RuntimeFailure as exc:
        log(f"stopped: {exc.line()}")
        raise
    finally:
        rundir.write_curves(rows)
    log(f"done: {step} steps, stopped by {stopped}")
    return TrainResult(run_dir=run_dir, steps=step, epochs_done=epoch, stopped_because=stopped,
                       best=best_row, last=rows[-1] if rows else None, rows=rows)
