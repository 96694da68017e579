"""One optimizer step, and the state a resume restores.

`train_step` is the whole arithmetic of training: forward under autocast, loss, (scaled) backward
over the micro-batches of one step, gradient clipping, optimizer step. `fit` and
benchmarks/loss_race.py both call it, so the benchmark that chose the default loss trains exactly
as `tracknet train` does.

fp16 autocast trains with `torch.amp.GradScaler`: the loss is multiplied by a large scale before
backward so small gradients do not underflow in fp16, gradients are unscaled before clipping, and
a step whose gradients overflowed is skipped while the scale backs off. bf16 and fp32 need no
scaling (the scaler is disabled and every call passes through). The scaler's state travels in
`state/last.pt`, so a resumed fp16 run continues with the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from tracknet_cli.errors import InputError
from tracknet_cli.training.meters import LossMeter

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tracknet_cli.data.datasets import Batch
    from tracknet_cli.models.losses import LossOutput


def make_scaler(device: Any, precision: str) -> "torch.amp.GradScaler":
    """A GradScaler enabled only for fp16 (bf16 keeps fp32's exponent range and needs none)."""
    import torch

    return torch.amp.GradScaler(getattr(device, "type", str(device)), enabled=precision == "fp16")


def forward_loss(model: Any, batch: "Batch", loss_fn: Any, autocast_dtype: Any) -> "LossOutput":
    """uint8 frames → /255 → forward under autocast (`autocast_dtype` None: fp32) → the fp32 loss."""
    import torch

    from tracknet_cli.inference.engine import forward_logits

    device_type = batch.frames.device.type
    with torch.autocast(device_type=device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits, no_ball = forward_logits(model, batch.frames.float().div_(255.0))
    return loss_fn(logits, batch.heatmaps, batch.mask, no_ball_logit=no_ball)


def train_step(
    model: Any,
    batches: Sequence["Batch"],
    loss_fn: Any,
    optimizer: Any,
    *,
    autocast_dtype: Any,
    scaler: "torch.amp.GradScaler",
    grad_clip: float | None = None,
    on_loss: Callable[["LossOutput"], None] | None = None,
) -> None:
    """One optimizer step over `batches` (its gradient-accumulation micro-batches, on the device).

    `on_loss(out)` sees each micro-batch's loss before its backward (the loop checks it is finite
    there, so a bad batch stops the run before it touches the parameters). Under DDP gradients are
    all-reduced on the last micro-batch only.
    """
    import torch

    from tracknet_cli.training.distributed import no_grad_sync

    for i, batch in enumerate(batches):
        with no_grad_sync(model, sync=i == len(batches) - 1):
            out = forward_loss(model, batch, loss_fn, autocast_dtype)
            if on_loss is not None:
                on_loss(out)
            scaler.scale(out.total / len(batches)).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)  # skipped (and the scale lowered) when fp16 gradients overflowed
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


@dataclass
class TrainState:
    """What changes while training and what `state/last.pt` holds to continue exactly."""

    model: Any
    optimizer: Any
    schedule: Any
    best: Any  # BestCheckpoint
    early: Any  # EarlyStopping
    scaler: Any  # torch.amp.GradScaler
    threshold: float
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0  # seconds trained before this process (resume)
    losses: LossMeter = field(default_factory=LossMeter)  # the training loss since the last validation

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self, *, elapsed: float, rng: dict[str, Any], world_size: int) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "elapsed": elapsed,
            **self.losses.state_dict(),  # window_loss, window_n
            "threshold": self.threshold,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best": self.best.state_dict(),
            "early_stopping": self.early.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "world_size": world_size,
        }

    def load_state_dict(self, saved: dict[str, Any], where: Path) -> None:
        """Restore everything but the RNG; a state of another run is an `InputError` naming `where`."""
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.schedule.load_state_dict(saved["schedule"])
            self.best.load_state_dict(saved["best"])
            self.early.load_state_dict(saved["early_stopping"])
            if saved.get("scaler"):  # states written before loss scaling, or by a bf16/fp32 run, have none
                self.scaler.load_state_dict(saved["scaler"])
            self.step, self.epoch = int(saved["step"]), int(saved["epoch"])
            self.batch_in_epoch, self.elapsed = int(saved["batch_in_epoch"]), float(saved["elapsed"])
            self.threshold = float(saved["threshold"])
            self.losses.load_state_dict(saved)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise InputError(f"{where} does not match this run ({str(exc).splitlines()[0]})") from exc
