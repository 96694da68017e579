"""Everything a run directory holds, written in one place, atomically.

runs/<profile>/expN/
  config.yaml            the resolved configuration
  train.log              one line per event (start, validations, stop)
  metrics.csv            one row per validation
  overlays/epoch_NNN.png validation frames with heatmap, label and prediction
  curves.png             loss and F1 against steps
  weights/best.safetensors, weights/last.safetensors   self-contained checkpoints
  state/last.pt          optimizer, schedule, callbacks, RNG, epoch, step (loads with weights_only=True)
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tracknet_cli.atomic import atomic_path, atomic_write_text
from tracknet_cli.config.load import dump_yaml
from tracknet_cli.config.schema import TrackNetConfig


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

    # ------------------------------------------------------------ text files
    def write_config(self, config: TrackNetConfig) -> None:
        atomic_write_text(self.path / "config.yaml", dump_yaml(config))

    def logger(self, echo: Callable[[str], None] | None = None) -> Callable[[str], None]:
        """Append timestamped lines to train.log (appends are whole lines, flushed at once)."""
        log_path = self.path / "train.log"

        def log(line: str) -> None:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {line}\n")
            if echo is not None:
                echo(line)

        return log

    def append_metrics(self, row: ValidationRow) -> None:
        self.rows.append(row)
        self._write_metrics()

    def forget_rows_after(self, step: int) -> None:
        """A resumed run continues from its saved state: rows validated after that step (the process was
        killed between writing metrics.csv and the state) are measured again, so they go."""
        if any(r.step > step for r in self.rows):
            self.rows = [r for r in self.rows if r.step <= step]
            self._write_metrics()

    def _write_metrics(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(v) for k, v in r.as_dict().items()})
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    # ------------------------------------------------------------ weights and state
    def save_weights(self, which: str, model: Any, config: TrackNetConfig, *, threshold: float, loss: str,
                     metrics: dict[str, float]) -> Path:
        from tracknet_cli.inference.checkpoint import save_checkpoint

        path = self.path / "weights" / f"{which}.safetensors"
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        save_checkpoint(path, model, config, threshold=threshold, loss=loss, metrics=clean)
        return path

    def save_state(self, state: dict[str, Any]) -> Path:
        import torch

        path = self.path / "state" / "last.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        return path

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
        if not self.rows:
            return None
        path = self.path / "curves.png"
        image = draw_curves(self.rows)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        return path


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
        heat = Image.fromarray((np.clip(overlay.heatmaps[i], 0, 1) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
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


def draw_curves(rows: list[ValidationRow], size: tuple[int, int] = (900, 360)) -> "Any":
    """Two panels: training and validation loss, and validation F1, against optimizer steps."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    steps = [r.step for r in rows]
    panels = [
        ("loss", [("train", [r.train_loss for r in rows], (31, 119, 180)), ("val", [r.val_loss for r in rows], (255, 127, 14))]),
        ("validation F1", [("f1", [r.f1 for r in rows], (44, 160, 44))]),
    ]
    pw = width // 2
    for p, (title, series) in enumerate(panels):
        x0, y0, x1, y1 = p * pw + 50, 30, (p + 1) * pw - 15, height - 35
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
        draw.text((x0, 10), title, fill=(0, 0, 0))
        values = [v for _, ys, _ in series for v in ys if v is not None and math.isfinite(v)]
        lo, hi = (0.0, 1.0) if title.endswith("F1") else (min(values, default=0.0), max(values, default=1.0))
        if hi - lo < 1e-12:
            hi = lo + 1.0
        smin, smax = min(steps), max(steps)
        sspan = max(smax - smin, 1)
        draw.text((x0 - 45, y0), f"{hi:.3g}", fill=(0, 0, 0))
        draw.text((x0 - 45, y1 - 10), f"{lo:.3g}", fill=(0, 0, 0))
        draw.text((x0, y1 + 5), f"step {smin}", fill=(0, 0, 0))
        draw.text((x1 - 70, y1 + 5), f"step {smax}", fill=(0, 0, 0))
        for k, (name, ys, colour) in enumerate(series):
            pts = [
                (x0 + (s - smin) / sspan * (x1 - x0), y1 - (v - lo) / (hi - lo) * (y1 - y0))
                for s, v in zip(steps, ys) if v is not None and math.isfinite(v)
            ]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for x, y in pts:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            draw.text((x1 - 60, y0 + 5 + 12 * k), name, fill=colour)
    return image
