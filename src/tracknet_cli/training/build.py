"""What a training run is made of, built in one place: `build(config, dist=, init_from=) -> Built`.

Seeded first, then the device, the data (datasets and this rank's loader), the model (random or
`init_from`'s weights) in the precision the run computes in, the loss, the optimizer, the lr
schedule, the loss scaler and what the step calls. `fit` (through `open_session`), `tracknet train
--dry-run` and benchmarks/loss_race.py all build with it, so the dry run checks what a run will
train and the loss race races what `tracknet train` trains. Nothing is written: the run directory
is the session's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError
from tracknet_cli.training.distributed import SINGLE

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.training.distributed import DistContext


@dataclass
class Built:
    """The parts of one training run, ready to train; `TrainState` adds what changes while it does."""

    config: TrackNetConfig
    device: Any
    train_ds: Any
    val_ds: Any
    test_ds: Any
    loader: Any  # this rank's shard of the training windows, `loader.sampler` an `EpochSampler`
    model: Any  # what is saved and validated
    train_model: Any  # what the step calls: DDP around `model`, maybe compiled
    loss_fn: Any
    precision: Any  # PrecisionChoice: what the run computes in, and why
    optimizer: Any
    schedule: Any
    scaler: Any  # torch.amp.GradScaler (enabled for fp16 only)
    steps_per_epoch: int
    total_steps: int  # the run's step budget: epochs × steps_per_epoch, at most max_steps

    @property
    def autocast_dtype(self) -> Any:
        """The dtype the forward runs under autocast in, or None (fp32)."""
        return self.precision.dtype


def build(config: TrackNetConfig, *, dist: "DistContext" = SINGLE, init_from: Path | None = None) -> Built:
    """Seed, then build data, model, precision, loss, optimizer, schedule and scaler for `config`.

    Under DDP (`dist`) the loader is this rank's shard, the device this rank's, and rank 0 decides the
    precision for every rank (the ranks must compute alike)."""
    from tracknet_cli.inference.runtime import pick_device, prepare_model_precision, use_channels_last
    from tracknet_cli.models.losses import build_loss
    from tracknet_cli.training.callbacks import build_schedule
    from tracknet_cli.training.seeding import seed_everything
    from tracknet_cli.training.step import make_scaler

    tc = config.training
    seed_everything(tc.seed)
    device = dist.device(pick_device(tc.device))
    train_ds, val_ds, test_ds, loader = _open_data(config, device, dist)
    model = _open_model(config, init_from, device)
    precision = dist.broadcast(prepare_model_precision(model, config, device) if dist.is_main else None)
    use_channels_last(model, config, precision)  # the followers' models (rank 0's is already done)
    steps_per_epoch, total_steps = _step_budget(tc, len(loader))
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay, tc.backbone_lr_multiplier)
    schedule = build_schedule(
        tc.scheduler, total_steps=total_steps, warmup_steps=tc.warmup_steps, metric=tc.best_metric
    )
    return Built(
        config=config,
        device=device,
        train_ds=train_ds,
        val_ds=val_ds,
        test_ds=test_ds,
        loader=loader,
        model=model,
        loss_fn=build_loss(tc.loss),
        precision=precision,
        optimizer=optimizer,
        schedule=schedule,
        scaler=make_scaler(device, precision.name),
        train_model=_train_model(model, tc, dist, device),  # last: DDP wraps the model as it will train
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
    )


def make_optimizer(model: Any, lr: float, weight_decay: float, backbone_lr_multiplier: float) -> Any:
    """AdamW; the backbone gets lr × multiplier; norms and biases get no weight decay."""
    import torch

    groups: list[dict[str, Any]] = []
    for part, params in model.param_groups().items():
        trainable = [p for p in params if p.requires_grad]
        scale = backbone_lr_multiplier if part == "backbone" else 1.0
        for plist, wd in (
            ([p for p in trainable if p.ndim > 1], weight_decay),
            ([p for p in trainable if p.ndim <= 1], 0.0),
        ):
            if plist:
                groups.append(
                    {"params": plist, "lr": lr * scale, "base_lr": lr * scale, "weight_decay": wd, "name": part}
                )
    if not groups:
        raise ConfigError("no trainable parameters: model.backbone.freeze leaves nothing to train")
    return torch.optim.AdamW(groups, lr=lr)


def _open_data(config: TrackNetConfig, device: Any, dist: "DistContext") -> tuple[Any, Any, Any, Any]:
    """The training, validation and test windows, and the loader of this rank's shard of the training ones."""
    from tracknet_cli.data.datasets import build_datasets, make_loader

    tc = config.training
    train_ds, val_ds, test_ds = build_datasets(config)
    if len(train_ds) == 0:
        raise ConfigError(f"no training windows in {config.data.root}: check data.split and data.subset")
    loader = make_loader(
        train_ds,
        batch_size=tc.batch_size,
        shuffle=True,
        num_workers=config.data.num_workers,
        seed=tc.seed,
        rank=dist.rank,
        world_size=dist.world_size,
        pin_memory=device.type == "cuda",
    )
    return train_ds, val_ds, test_ds, loader


def _open_model(config: TrackNetConfig, init_from: Path | None, device: Any) -> Any:
    """The model on `device`, its weights random (seeded) or those of `init_from`."""
    from tracknet_cli.models import build_model

    model = build_model(config)
    if init_from is not None:
        from tracknet_cli.inference.checkpoint import load_init_weights

        load_init_weights(model, init_from)
    return model.to(device)


def _step_budget(tc: Any, batches: int) -> tuple[int, int]:
    """Steps per epoch (a tail of batches too short for a whole step is left out) and the run's step budget."""
    steps_per_epoch = max(1, batches // tc.grad_accumulation)
    total_steps = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    return steps_per_epoch, total_steps


def _train_model(model: Any, tc: Any, dist: "DistContext", device: Any) -> Any:
    """What the step calls: DDP around the model (which stays what is saved and validated), then compiled."""
    import torch

    train_model = dist.wrap(model, device)
    if tc.compile:
        train_model = torch.compile(train_model)
    return train_model
