"""Rendering of training progress on stderr: a rich progress bar and a table after each validation."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tracknet_cli.cli import console


class TrainProgress:
    """Context manager turning the loop's hooks into a live bar (terminals) or log lines (pipes)."""

    def __init__(self) -> None:
        self.live = console.err.is_terminal and not console.quiet()
        self.progress = Progress(
            TextColumn("train", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.1f} samples/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console.err,
            transient=False,
            disable=not self.live,
        )
        self.task: Any = None
        self._last_logged = 0

    def __enter__(self) -> Any:
        """The bar starts; the loop's `Hooks` that feed it are what `with` gives."""
        self.progress.__enter__()
        return self.hooks()

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def hooks(self) -> Any:
        from tracknet_cli.training.loop import Hooks

        return Hooks(on_start=self.on_start, on_step=self.on_step, on_validation=self.on_validation)

    def on_start(self, info: dict[str, Any]) -> None:
        console.info(
            f"device {info['device']} ({info['precision']}), {info['params']:,} parameters "
            f"({info['params_trainable']:,} trainable), {info['train_windows']} training windows, "
            f"{info['val_windows']} validation windows, {info['total_steps']} steps at most"
        )
        self.task = self.progress.add_task("train", total=info["total_steps"], loss=float("nan"), rate=0.0)

    def on_step(self, info: Any) -> None:
        self.progress.update(
            self.task, completed=info.step, total=info.total_steps, loss=info.loss, rate=info.samples_per_s
        )
        if not self.live and (info.step - self._last_logged >= 50 or info.step == 1):
            self._last_logged = info.step
            console.info(
                f"step {info.step}/{info.total_steps} loss {info.loss:.4f} lr {info.lr:.3g} "
                f"{info.samples_per_s:.1f} samples/s"
            )

    def on_validation(self, row: Any, is_best: bool) -> None:
        table = Table(title=f"validation at step {row.step} (epoch {row.epoch}){'  ★ best' if is_best else ''}")
        for name in ("loss", "val loss", "prec", "recall", "F1", "acc", "L2 med", "wait", "time"):
            table.add_column(name, justify="right")
        values = [
            row.train_loss,
            row.val_loss,
            row.precision,
            row.recall,
            row.f1,
            row.accuracy,
            row.l2_median,
            row.data_wait,
            row.seconds,
        ]
        cells = [("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)) for v in values[:-2]]
        cells += [f"{row.data_wait:.0%}", f"{row.seconds:.0f}s"]
        table.add_row(*cells)
        console.err.print(table)
