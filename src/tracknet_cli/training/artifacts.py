"""Everything a run directory holds, written in one place, atomically.

runs/<profile>/expN/
  config.yaml            the resolved configuration
  train.log              one line per event (start, validations, stop)
  metrics.csv            one row per validation
  steps.csv              training loss and learning rate at every logging step (step,epoch,loss,lr,samples_per_s)
  overlays/epoch_NNN.png validation frames with heatmap, label and prediction
  curves.png             training loss per step (and validation loss), validation F1 per validation (matplotlib)
  weights/best.safetensors, weights/last.safetensors   self-contained checkpoints
  state/last.pt          optimizer, schedule, callbacks, RNG, epoch, step (save_state / load_state: the
                         one torch.save and torch.load, weights_only=True)
"""

from __future__ import annotations

import csv
import io
import math
import random
import warnings
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tracknet_cli.atomic import atomic_path, atomic_write_text
from tracknet_cli.config.load import dump_yaml, load_run_config
from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import InputError, first_line

STATE_FILE = Path("state") / "last.pt"  # the training state `--resume` continues from


@dataclass
class ValidationRow:
    epoch: int
    step: int
    train_loss: float
    val_loss: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    l2_median: float | None
    lr: float
    data_wait: float  # share of step time spent waiting for the DataLoader
    seconds: float
    threshold: float = 0.5  # decode threshold in force (calibrated on this validation when enabled)
    tp: int = 0
    fp1: int = 0
    fp2: int = 0
    fn: int = 0
    tn: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


METRICS_COLUMNS = [f.name for f in fields(ValidationRow)]


@dataclass
class StepRow:
    """One logging step: what the loss and learning rate were (a validation row only every val_every)."""

    step: int
    epoch: int
    loss: float
    lr: float
    samples_per_s: float


STEP_COLUMNS = [f.name for f in fields(StepRow)]


@dataclass
class Overlay:
    """Frames to draw: input-canvas RGB uint8 (N,H,W,3), probability maps (N,Hh,Wh), label and prediction
    in canvas pixels (N,2; NaN for none), and scores (N,)."""

    frames: np.ndarray
    heatmaps: np.ndarray
    label_xy: np.ndarray
    pred_xy: np.ndarray
    scores: np.ndarray
    titles: list[str]


class RunDirectory:
    def __init__(self, path: Path, *, keep_rows: bool = False) -> None:
        """`keep_rows`: a resumed run continues the metrics.csv it finds."""
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.rows: list[ValidationRow] = read_metrics(path / "metrics.csv") if keep_rows else []
        self.steps: list[StepRow] = read_steps(path / "steps.csv") if keep_rows else []

    # ------------------------------------------------------------ text files
    def write_config(self, config: TrackNetConfig) -> None:
        atomic_write_text(self.path / "config.yaml", dump_yaml(config))

    def logger(self, echo: Callable[[str], None] | None = None) -> Callable[[str], None]:
        """Append timestamped lines to train.log (appends are whole lines, flushed at once)."""
        log_path = self.path / "train.log"

        def log(line: str) -> None:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            _append(log_path, f"{stamp} {line}\n")
            if echo is not None:
                echo(line)

        return log

    def append_metrics(self, row: ValidationRow) -> None:
        self.rows.append(row)
        self._write_metrics()

    def append_step(self, row: StepRow) -> None:
        """One line appended to steps.csv (whole lines, flushed at once, like train.log)."""
        path = self.path / "steps.csv"
        new = not path.is_file() or not self.steps
        if new:  # a fresh file, or one a resume found empty
            atomic_write_text(path, ",".join(STEP_COLUMNS) + "\n")
        self.steps.append(row)
        _append(path, ",".join(str(_fmt(v)) for v in asdict(row).values()) + "\n")

    def forget_rows_after(self, step: int) -> None:
        """A resumed run continues from its saved state: rows validated after that step (the process was
        killed between writing metrics.csv and the state) are measured again, so they go; so do the
        steps.csv lines after it."""
        if any(r.step > step for r in self.rows):
            self.rows = [r for r in self.rows if r.step <= step]
            self._write_metrics()
        if any(r.step > step for r in self.steps):
            self.steps = [r for r in self.steps if r.step <= step]
            lines = [",".join(STEP_COLUMNS)] + [",".join(str(_fmt(v)) for v in asdict(r).values()) for r in self.steps]
            atomic_write_text(self.path / "steps.csv", "\n".join(lines) + "\n")

    def _write_metrics(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(v) for k, v in r.as_dict().items()})
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    # ------------------------------------------------------------ weights and state
    def save_weights(
        self, which: str, model: Any, config: TrackNetConfig, *, threshold: float, loss: str, metrics: dict[str, float]
    ) -> Path:
        from tracknet_cli.inference.checkpoint import save_checkpoint

        path = self.path / "weights" / f"{which}.safetensors"
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        save_checkpoint(path, model, config, threshold=threshold, loss=loss, metrics=clean)
        return path

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def save_state(self, state: dict[str, Any]) -> Path:
        import torch

        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            sink = _KeepsWriteError(fh)
            try:
                torch.save(state, sink)
            except RuntimeError:  # torch's "unexpected pos ...": the OS error, named by atomic_path
                if sink.error is None:
                    raise
                raise sink.error from None
        return path

    def load_state(self) -> dict[str, Any]:
        """`state/last.pt` as `save_state` wrote it (what `--resume` continues from), read with
        `weights_only=True`: tensors and plain data only, so nothing in the file runs. A damaged or
        foreign file is one `InputError` line."""
        import torch

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the one line below says it
                return torch.load(self.state_path, weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one line
            raise InputError(f"{self.state_path} cannot be loaded: {_state_problem(exc)}") from exc

    @staticmethod
    def rng_state() -> dict[str, Any]:
        """RNG states as plain data (lists and tensors) so `torch.load(weights_only=True)` accepts them."""
        import torch

        np_state = np.random.get_state()
        out: dict[str, Any] = {
            "python": _plain(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            out["cuda"] = torch.cuda.get_rng_state_all()
        return out

    # ------------------------------------------------------------ pictures
    def write_overlay(self, epoch: int, overlay: Overlay | None) -> Path | None:
        if overlay is None or len(overlay.frames) == 0:
            return None
        path = self.path / "overlays" / f"epoch_{epoch:03d}.png"
        image = draw_overlay(overlay)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        return path

    def write_curves(self) -> Path | None:
        if not self.rows and not self.steps:
            return None
        path = self.path / "curves.png"
        figure = draw_curves(self.steps, self.rows)
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        return path


def _append(path: Path, text: str) -> None:
    """Append whole lines to `path` (train.log, steps.csv); a write that fails (a full disk) names it."""
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


class _KeepsWriteError:
    """The file `torch.save` writes the state to, keeping the OSError of a write that failed: torch turns
    it into a RuntimeError without the errno ("[enforce fail at inline_container.cc] unexpected pos ..."),
    so a full disk would not read as one."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self.fh.flush()
        except OSError as exc:
            self.error = exc
            raise


def resume_config(run_dir: Path, sets: list[str]) -> TrackNetConfig:
    """The config `--resume RUN_DIR` continues with: the run's own config.yaml, `sets` applied (budgets
    may change). A directory without config.yaml and the state is one `InputError` line."""
    if not (run_dir / "config.yaml").is_file() or not (run_dir / STATE_FILE).is_file():
        raise InputError(
            f"{{resume}} {run_dir}: not a run directory with config.yaml and state/last.pt",
            parameter="resume",
            value=run_dir,
        )
    return load_run_config(run_dir / "config.yaml", sets)


def _state_problem(exc: Exception) -> str:
    """Why `state/last.pt` was refused, without torch's advice to retry with weights_only=False (which
    would run whatever code a pickle holds)."""
    import pickle

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text.lower().replace(" ", "_"):
        return (
            "it holds objects other than tensors and plain data, so `tracknet train` did not write it "
            "(it was refused unread: nothing in it ran)"
        )
    return f"{first_line(exc)} (a damaged or foreign file; the run's weights/*.safetensors are kept)"


def read_metrics(path: Path) -> list[ValidationRow]:
    """The rows of an existing metrics.csv (empty when there is none)."""
    if not path.is_file():
        return []
    types = {f.name: f.type for f in fields(ValidationRow)}
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            values: dict[str, Any] = {}
            for key, text in raw.items():
                if key not in types:
                    continue
                kind = types[key]
                if text in ("", None):
                    values[key] = None if "None" in str(kind) else float("nan")
                elif kind in ("int", int):
                    values[key] = int(float(text))
                else:
                    values[key] = float(text)
            rows.append(ValidationRow(**values))
    return rows


def read_steps(path: Path) -> list[StepRow]:
    """The rows of an existing steps.csv (empty when there is none); a torn last line is dropped."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            try:
                rows.append(
                    StepRow(
                        step=int(raw["step"]),
                        epoch=int(raw["epoch"]),
                        loss=_float(raw["loss"]),
                        lr=_float(raw["lr"]),
                        samples_per_s=_float(raw["samples_per_s"]),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def _float(text: str | None) -> float:
    return float("nan") if text in ("", None) else float(text)  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `RunDirectory.rng_state`."""
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def draw_overlay(overlay: Overlay) -> "Any":
    """A row of validation frames: heatmap blended in red, label as a green ring, prediction as a yellow cross."""
    from PIL import Image, ImageDraw

    tiles = []
    for i in range(len(overlay.frames)):
        frame = overlay.frames[i].astype(np.float32)
        h, w = frame.shape[:2]
        heat = Image.fromarray((np.clip(overlay.heatmaps[i], 0, 1) * 255).astype(np.uint8)).resize(
            (w, h), Image.BILINEAR
        )
        heat_arr = np.asarray(heat, dtype=np.float32)[..., None] / 255.0
        red = np.zeros_like(frame)
        red[..., 0] = 255
        blended = frame * (1 - 0.6 * heat_arr) + red * 0.6 * heat_arr
        tile = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(tile)
        lx, ly = overlay.label_xy[i]
        if np.isfinite(lx) and np.isfinite(ly):
            draw.ellipse([lx - 6, ly - 6, lx + 6, ly + 6], outline=(0, 255, 0), width=2)
        px, py = overlay.pred_xy[i]
        if np.isfinite(px) and np.isfinite(py):
            draw.line([px - 5, py - 5, px + 5, py + 5], fill=(255, 255, 0), width=2)
            draw.line([px - 5, py + 5, px + 5, py - 5], fill=(255, 255, 0), width=2)
        draw.rectangle([0, 0, w, 14], fill=(0, 0, 0))
        draw.text((3, 1), f"{overlay.titles[i]}  score {overlay.scores[i]:.2f}", fill=(255, 255, 255))
        tiles.append(tile)
    cols = min(4, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * w, rows * h), (0, 0, 0))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * w, (i // cols) * h))
    return sheet


def draw_curves(steps: list[StepRow], rows: list[ValidationRow]) -> Any:
    """Two panels against optimizer steps: training loss at every logging step (validation loss as
    points), and validation F1 at every validation. A matplotlib Figure on the Agg canvas (headless,
    no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    loss_ax, f1_ax = figure.subplots(1, 2)
    if steps:
        loss_ax.plot(
            [r.step for r in steps], [r.loss for r in steps], color="tab:blue", linewidth=1, label="train (per step)"
        )
    if rows:
        loss_ax.plot([r.step for r in rows], [r.val_loss for r in rows], "o-", color="tab:orange", label="validation")
        f1_ax.plot([r.step for r in rows], [r.f1 for r in rows], "o-", color="tab:green", label="F1")
    loss_ax.set(title="loss", xlabel="step")
    loss_ax.legend(loc="upper right", fontsize="small")
    f1_ax.set(title="validation F1", xlabel="step", ylim=(0.0, 1.0))
    for ax in (loss_ax, f1_ax):
        ax.grid(alpha=0.3)
    return figure
