"""`train --dry-run`: build everything a run needs and push one batch forward and backward."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from tracknet_cli.config.schema import TrackNetConfig


@dataclass
class DryRunReport:
    input_shape: list[int]
    output_shape: list[int]
    heatmap_size: list[int]  # [Hh, Wh]
    heatmap_scale: list[float]  # source pixels per heatmap cell (x, y) for the first training clip
    params_trainable: int
    params_frozen: int
    loss: float
    seconds_per_batch: float  # the first forward + backward (includes one-off warm-up)
    device: str
    precision: str  # what `tracknet train` would compute in, and why
    train_windows: int
    val_windows: int

    def to_dict(self) -> dict:
        return asdict(self)


def dry_run(config: TrackNetConfig) -> DryRunReport:
    """Build the run as `tracknet train` would (`build`), push one batch forward and backward (no
    optimizer step, nothing written)."""
    from tracknet_cli.data.datasets import collate
    from tracknet_cli.training.build import build
    from tracknet_cli.training.step import forward_loss

    built = build(config)
    train_ds, model, device, autocast_dtype = built.train_ds, built.model, built.device, built.autocast_dtype
    batch = collate([train_ds[i] for i in range(min(config.training.batch_size, len(train_ds)))]).to(device)
    model.train()
    start = time.perf_counter()
    out = forward_loss(model, batch, built.loss_fn, autocast_dtype)  # the loss checks logits match the targets
    out.total.backward()
    seconds = time.perf_counter() - start
    codec = train_ds.codecs[0]
    cells = np.asarray(codec.heatmap_to_source(np.array([[0.0, 0.0], [1.0, 1.0]])))
    scale = [float(cells[1][0] - cells[0][0]), float(cells[1][1] - cells[0][1])]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return DryRunReport(
        input_shape=list(batch.frames.shape),
        output_shape=list(batch.heatmaps.shape),
        heatmap_size=[config.data.heatmap_height, config.data.heatmap_width],
        heatmap_scale=scale,
        params_trainable=trainable,
        params_frozen=frozen,
        loss=float(out.total.detach()),
        seconds_per_batch=seconds,
        device=str(device),
        precision=built.precision.describe(),
        train_windows=len(train_ds),
        val_windows=len(built.val_ds),
    )
