"""Optional experiment trackers: TensorBoard events and Weights & Biases, next to the run directory's own files.

Both are off by default and imported only when switched on (`training.tensorboard`,
`training.wandb`); asking for one that is not installed is one line, exit 2. The loop calls a
`RunLoggers` on rank 0 only: `start` once, `step` when it has read the loss back, `validation`
after each validation, `close` at the end.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError
from tracknet_cli.training.artifacts import ValidationRow

# Validation columns sent as scalars (tag "val/<name>"; train_loss goes as "train/loss_window").
VALIDATION_SCALARS = ("val_loss", "precision", "recall", "f1", "accuracy", "l2_median", "threshold", "data_wait")


class ExperimentTracker(Protocol):
    def start(self, hparams: dict[str, Any], info: dict[str, Any]) -> None: ...
    def scalars(self, values: dict[str, float], step: int) -> None: ...
    def image(self, tag: str, path: Path, step: int) -> None: ...
    def close(self) -> None: ...


def flatten_config(config: TrackNetConfig) -> dict[str, Any]:
    """`section.key` → str/int/float/bool, the shape hyper-parameter tables accept (lists become strings).

    The keys are `config.load.flatten`'s (the one flattener); only the values are made scalar here."""
    from tracknet_cli.config.load import flatten

    def scalar(value: Any) -> Any:
        if value is None:
            return "none"
        return value if isinstance(value, (bool, int, float, str)) else str(value)

    return {key: scalar(value) for key, value in flatten(config.model_dump(mode="json")).items()}


def validation_scalars(row: ValidationRow) -> dict[str, float]:
    values = {f"val/{k}": getattr(row, k) for k in VALIDATION_SCALARS}
    values["train/loss_window"] = row.train_loss  # the mean training loss since the previous validation
    return {k: float(v) for k, v in values.items() if v is not None}


class TensorBoardTracker:
    """Events under RUN_DIR/tensorboard: scalars, overlays as images, hyper-parameters (HParams tab)."""

    def __init__(self, run_dir: Path, resumed_at: int | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "training.tensorboard=true needs the tensorboard package: pip install tensorboard "
                "(or pip install 'tracknet-cli[logging]'), or set training.tensorboard=false"
            ) from exc
        # purge_step: events a crashed run wrote after its last saved state are hidden on resume.
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resumed_at)

    def start(self, hparams: dict[str, Any], info: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        metric_tags = {f"val/{k}": 0.0 for k in VALIDATION_SCALARS}
        experiment, start, end = hparams_summary(hparams, metric_tags)
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("run/start", "\n".join(f"    {k}: {v}" for k, v in info.items()))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def image(self, tag: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            self.writer.add_image(tag, np.asarray(im.convert("RGB")), global_step=step, dataformats="HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandbTracker:
    """A Weights & Biases run in RUN_DIR/wandb; the run id is kept in RUN_DIR/wandb_id so a resume continues it."""

    def __init__(self, run_dir: Path, config: TrackNetConfig, mode: str) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError(
                f"training.wandb={mode} needs the wandb package: pip install wandb, or set training.wandb=off"
            ) from exc
        from tracknet_cli.atomic import atomic_write_text

        self.wandb = wandb
        id_file = run_dir / "wandb_id"
        if id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = secrets.token_hex(4)  # W&B ids are free-form; wandb.util.generate_id is gone in 0.31
            atomic_write_text(id_file, run_id + "\n")
        # WANDB_MODE (online, offline, disabled) in the environment wins over the configuration.
        self.run = wandb.init(
            project=config.training.wandb_project,
            name=f"{run_dir.parent.name}/{run_dir.name}",
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            mode=os.environ.get("WANDB_MODE") or mode,
            config=flatten_config(config),
        )

    def start(self, hparams: dict[str, Any], info: dict[str, Any]) -> None:
        self.run.summary.update({f"start/{k}": v for k, v in info.items() if isinstance(v, (int, float, str))})

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def image(self, tag: str, path: Path, step: int) -> None:
        self.run.log({tag: self.wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.run.finish()


@dataclass
class RunLoggers:
    """Fans the loop's events out to the enabled trackers; with none enabled every call does nothing."""

    trackers: list[ExperimentTracker] = field(default_factory=list)
    config: TrackNetConfig | None = None

    def start(self, info: dict[str, Any]) -> None:
        if self.config is None:
            return
        hparams = flatten_config(self.config)
        for t in self.trackers:
            t.start(hparams, info)

    def step(self, step: int, loss: float, lr: float, samples_per_s: float) -> None:
        for t in self.trackers:
            t.scalars({"train/loss": loss, "train/lr": lr, "train/samples_per_s": samples_per_s}, step)

    def validation(self, row: ValidationRow, overlay: Path | None) -> None:
        values = validation_scalars(row)
        for t in self.trackers:
            t.scalars(values, row.step)
            if overlay is not None and overlay.is_file():
                t.image("val/overlay", overlay, row.step)

    def close(self) -> None:
        for t in self.trackers:
            t.close()
        self.trackers = []


def require_trackers(config: TrackNetConfig) -> None:
    """Fail at once (one line, exit 2) when an enabled tracker's package is missing; imports nothing."""
    import importlib.util

    tc = config.training
    if tc.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "training.tensorboard=true needs the tensorboard package: pip install tensorboard "
            "(or pip install 'tracknet-cli[logging]'), or set training.tensorboard=false"
        )
    if tc.wandb != "off" and importlib.util.find_spec("wandb") is None:
        raise ConfigError(
            f"training.wandb={tc.wandb} needs the wandb package: pip install wandb, or set training.wandb=off"
        )


def open_loggers(config: TrackNetConfig, run_dir: Path, *, resumed_at: int | None = None) -> RunLoggers:
    """The trackers `config.training` asks for (none by default: nothing is imported then)."""
    require_trackers(config)
    tc = config.training
    loggers = RunLoggers([], config)
    try:
        if tc.tensorboard:
            loggers.trackers.append(TensorBoardTracker(run_dir, resumed_at))
        if tc.wandb != "off":
            loggers.trackers.append(WandbTracker(run_dir, config, tc.wandb))
    except BaseException:
        loggers.close()
        raise
    return loggers
