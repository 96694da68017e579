"""Score a model on whole clips through the inference engine: exactly what `tracknet predict` computes.

Used by validation inside `fit` (which calibrates the checkpoint's threshold on these predictions)
and by `tracknet eval`; `score_predictions` also scores CSVs written by any tracker
(`tracknet eval --pred-csv`), so every number comes from the same code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tracknet_cli.training.artifacts import Overlay
from tracknet_cli.training.metrics import Metrics, score_frames

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.data.clips import Clip
    from tracknet_cli.data.datasets import SequenceDataset


@dataclass
class ClipPredictions:
    """One clip's decoded predictions in source pixels, beside its labels."""

    clip: "Clip"
    xy: np.ndarray  # (n, 2) float, NaN where no peak
    score: np.ndarray  # (n,)

    @property
    def clip_id(self) -> str:
        return self.clip.id


@dataclass
class EvalReport:
    metrics: Metrics
    per_clip: dict[str, Metrics]
    loss: float
    predictions: list[ClipPredictions] = field(default_factory=list)
    overlay: Overlay | None = None
    frames: int = 0


def score_predictions(
    predictions: Sequence[ClipPredictions], protocol: str, threshold: float
) -> tuple[Metrics, dict[str, Metrics]]:
    """Per-clip and total metrics of decoded predictions against each clip's labels."""
    per_clip: dict[str, Metrics] = {}
    for pred in predictions:
        labels = pred.clip.labels
        gt = np.stack([labels.x, labels.y], axis=-1)
        per_clip[pred.clip_id] = score_frames(
            pred.xy,
            pred.score,
            gt,
            labels.visibility,
            pred.clip.width,
            protocol=protocol,
            threshold=threshold,
            state=labels.state,
        )
    total = (
        Metrics.total(per_clip.values())
        if per_clip
        else score_frames(
            np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0), 1.0, protocol=protocol, threshold=threshold
        )
    )
    return total, per_clip


def _overlay_picks(dataset: "SequenceDataset", count: int) -> dict[str, list[int]]:
    """Evenly spaced (clip, frame) pairs across the dataset, preferring frames with a ball."""
    if count <= 0:
        return {}
    pairs = [(c.id, i) for c in dataset.clips for i in np.flatnonzero(c.labels.state == 1)]
    if not pairs:
        pairs = [(c.id, i) for c in dataset.clips for i in range(len(c))]
    if not pairs:
        return {}
    picks: dict[str, list[int]] = {}
    for k in np.linspace(0, len(pairs) - 1, num=min(count, len(pairs))).round().astype(int):
        cid, i = pairs[k]
        picks.setdefault(cid, []).append(int(i))
    return picks


@dataclass
class _LossSum:
    """The validation loss over the engine's windows (padded slots masked out)."""

    loss: Any
    heatmaps: np.ndarray  # (n, Hh, Wh) the clip's targets
    mask: np.ndarray  # (n,) frames that count
    total: float = 0.0
    batches: int = 0

    def __call__(self, batch: Any, logits: Any, no_ball: Any) -> None:
        import torch

        ids = batch.frame_ids
        mask = torch.from_numpy(self.mask[ids] & batch.valid).to(logits.device)
        targets = torch.from_numpy(self.heatmaps[ids]).to(logits.device)
        with torch.no_grad():
            self.total += float(self.loss(logits, targets, mask, no_ball_logit=no_ball).total)
        self.batches += 1


def _targets(clip: "Clip", codec: Any, negative: bool) -> tuple[np.ndarray, np.ndarray]:
    """A clip's heatmap targets and loss mask, as the training dataset builds them."""
    labels = clip.labels
    xy = np.stack([labels.x, labels.y], axis=-1).astype(np.float64)
    xy[labels.state != 1] = np.nan
    mask = labels.state == 1
    if negative:
        mask |= labels.state == 0
    return codec.encode(xy), mask


# One overlay tile: frame, heatmap, label and prediction at the model input, score, title.
_OverlayPart = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, str]


def evaluate(
    model: Any,
    dataset: "SequenceDataset",
    config: "TrackNetConfig",
    *,
    device: Any,
    protocol: str,
    threshold: float,
    loss_name: str,
    loss: Any = None,
    amp: Any = None,
    overlay_frames: int = 0,
    batch_size: int | None = None,
    stride: int | None = None,
    keep_predictions: bool = False,
    progress: Any = None,
) -> EvalReport:
    """Run `model` through the inference engine over every frame of `dataset`'s clips, decode, score.

    One clip at a time, streamed: memory holds a few windows of frames and maps, not a clip.
    `loss` (validation) is averaged over the engine's windows, padded slots masked out.
    """
    from tracknet_cli.inference.engine import Engine

    engine = Engine.for_model(
        model,
        config.data,
        loss=loss_name,
        device=device,
        amp=amp,
        batch_size=batch_size,
        accelerator_batch=config.training.batch_size,
        stride=stride,
    )
    picks = _overlay_picks(dataset, overlay_frames)
    negative = config.data.no_ball_frames == "negative"
    predictions: list[ClipPredictions] = []
    overlay_parts: list[_OverlayPart] = []
    loss_sum, loss_batches, frames_seen = 0.0, 0, 0
    for ci, clip in enumerate(dataset.clips):
        codec, source = dataset.codecs[ci], dataset.frames(ci)
        on_batch = _LossSum(loss, *_targets(clip, codec, negative)) if loss is not None else None
        pred, maps = _predict_clip(engine, clip, codec, source, set(picks.get(clip.id, [])), on_batch)
        if on_batch is not None:
            loss_sum, loss_batches = loss_sum + on_batch.total, loss_batches + on_batch.batches
        predictions.append(pred)
        frames_seen += len(clip)
        overlay_parts += _overlay_parts(pred, codec, source, maps, picks.get(clip.id, []))
        if progress is not None:
            progress(frames_seen)

    total, per_clip = score_predictions(predictions, protocol, threshold)
    return EvalReport(
        metrics=total,
        per_clip=per_clip,
        loss=loss_sum / loss_batches if loss_batches else float("nan"),
        predictions=predictions if keep_predictions else [],
        overlay=_overlay(overlay_parts),
        frames=frames_seen,
    )


def _predict_clip(
    engine: Any, clip: "Clip", codec: Any, source: Any, wanted: set[int], on_batch: _LossSum | None
) -> tuple[ClipPredictions, dict[int, np.ndarray]]:
    """One clip through the engine, streamed; the heatmaps of the `wanted` frames kept for the overlay."""
    n = len(clip)
    xy, score = np.full((n, 2), np.nan), np.zeros(n)
    maps: dict[int, np.ndarray] = {}
    frames = (source.get(np.asarray([i]))[0] for i in range(n))
    for released in engine.run(frames, codec, on_batch=on_batch):
        xy[released.frame_ids], score[released.frame_ids] = released.xy, released.score
        for k, fid in enumerate(released.frame_ids):
            if fid in wanted:
                maps[fid] = released.maps[k].float().cpu().numpy()
    return ClipPredictions(clip=clip, xy=xy, score=score), maps


def _overlay_parts(
    pred: ClipPredictions, codec: Any, source: Any, maps: dict[int, np.ndarray], picks: list[int]
) -> list[_OverlayPart]:
    """The overlay tiles of one clip's picked frames (the frames read again from `source`)."""
    clip = pred.clip
    parts: list[_OverlayPart] = []
    for i in picks:
        label = np.array([clip.labels.x[i], clip.labels.y[i]], dtype=np.float64)
        parts.append(
            (
                source.get(np.asarray([i]))[0],
                maps[i],
                codec.source_to_input(label),
                codec.source_to_input(pred.xy[i]),
                float(pred.score[i]),
                f"{clip.id} #{i}",
            )
        )
    return parts


def _overlay(parts: list[_OverlayPart]) -> Overlay | None:
    if not parts:
        return None
    frames, heat, lab, pred, scores, titles = zip(*parts)
    return Overlay(
        frames=np.stack(frames),
        heatmaps=np.stack(heat),
        label_xy=np.stack(lab),
        pred_xy=np.stack(pred),
        scores=np.asarray(scores),
        titles=list(titles),
    )


# ---------------------------------------------------------------- `tracknet eval`
SPLIT_CHOICES = ("test", "val", "train", "all")


def select_clips(config: "TrackNetConfig", root: Any, split: str) -> list["Clip"]:
    """The clips of `split` under `root`, split as the run was (the config's split settings).

    `test` falls back to every clip when the config defines no test split (no list, ratio 0).
    """
    from pathlib import Path

    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.splits import split_clips

    clips = discover_clips(Path(root))
    if split == "all":
        return clips
    splits = split_clips(clips, config.data.split)
    chosen = getattr(splits, split)
    if split == "test" and not chosen and not config.data.split.test and config.data.split.test_ratio == 0:
        return clips
    return list(chosen)


def prediction_csv_targets(
    out_dir: Any, clips: Sequence["Clip"], *, overwrite: bool = False, reads: Sequence[Any] = ()
) -> list[Any]:
    """DIR/<clip id>/Label.csv for each clip, checked before any work is done.

    A target that is a file the evaluation reads (a clip's labels, frames or video, or any path in
    `reads` such as the checkpoint) is refused always, `overwrite` or not; any other existing file
    is refused unless `overwrite`, one that is not a regular file always. All raise `InputError` (exit 2)."""
    from pathlib import Path

    from tracknet_cli.atomic import first_overwritten_input, refuse_special
    from tracknet_cli.errors import InputError

    targets = [Path(out_dir) / (clip.whole or clip).id / "Label.csv" for clip in clips]
    inputs = [*reads, *(p for c in clips for p in (c.label_path, c.video, *(c.frame_paths or ())))]
    target = first_overwritten_input(targets, inputs)
    if target is not None:
        raise InputError(
            f"--save-csv {out_dir} would write over {target}, which this evaluation reads; "
            "choose a folder outside the dataset"
        )
    for target in targets:
        refuse_special(target)
        if target.exists() and not overwrite:
            raise InputError(
                f"{target} already exists; pass --overwrite to replace it or choose another --save-csv folder"
            )
    return targets


def write_prediction_csvs(out_dir: Any, predictions: Sequence[ClipPredictions], threshold: float) -> list[Any]:
    """Per-clip predictions in the tennis `Label.csv` dialect, mirroring the layout: DIR/<clip id>/Label.csv
    (`prediction_csv_targets` checks these paths before the evaluation starts). A piece of a time split
    writes its rows, named by their frames in the whole clip, to its whole clip's file.

    A frame whose score reaches the threshold is written visible (1) with its coordinates, others 0.
    """
    from pathlib import Path

    from tracknet_cli.data.labels import LabelTable, write_tennis_labels

    written = []
    for pred in predictions:
        clip = pred.clip
        detected = np.isfinite(pred.xy).all(axis=1) & (pred.score >= threshold)
        table = LabelTable.from_arrays(
            detected.astype(int),
            np.where(detected, pred.xy[:, 0], np.nan),
            np.where(detected, pred.xy[:, 1], np.nan),
            width=clip.width,
            height=clip.height,
        )
        names = (
            [p.name for p in clip.frame_paths]
            if clip.frame_paths is not None
            else [f"{clip.start + i:04d}.jpg" for i in range(len(clip))]
        )
        path = Path(out_dir) / (clip.whole or clip).id / "Label.csv"  # a time-split piece: its rows only
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tennis_labels(path, table, names)
        written.append(path)
    return written


def read_prediction_csvs(
    pred_dir: Any, clips: Sequence["Clip"], problems: list[Any] | None = None
) -> tuple[list[ClipPredictions], list[str]]:
    """Another tracker's per-clip CSVs (any supported dialect) placed on the ground-truth clips,
    and the ids of clips that have none (they are not scored; the caller says so).

    For clip `game1/Clip1` the file is PRED/game1/Clip1/<any>.csv, PRED/game1/Clip1.csv or PRED/Clip1.csv.
    A row with visibility > 0 and coordinates is a detection; its `Score` column is used when present.
    Rows that cannot be read (bad values, visibility outside 0-3, coordinates that are not finite or
    outside the frame, missing frames, unreadable scores) score as no detection and are appended to
    `problems` as `data.labels.Problem`s (file, row, kind), as `data inspect` reports labels.
    """
    from pathlib import Path

    from tracknet_cli.data.labels import read_labels
    from tracknet_cli.errors import InputError

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(f"--pred-csv {pred_dir} is not a directory of per-clip CSV files")
    out = []
    missing = []
    for clip in clips:
        candidates = sorted((pred_dir / clip.id).glob("*.csv")) if (pred_dir / clip.id).is_dir() else []
        candidates += [p for p in (pred_dir / f"{clip.id}.csv", pred_dir / f"{clip.name}.csv") if p.is_file()]
        if not candidates:
            missing.append(clip.id)
            continue
        path = candidates[0]
        names = [p.name for p in clip.frame_paths] if clip.frame_paths is not None else None
        table = read_labels(path, width=clip.width, height=clip.height, num_frames=len(clip), frame_names=names)
        xy = np.stack([table.x, table.y], axis=-1).astype(np.float64)
        found = (table.visibility > 0) & np.isfinite(xy).all(axis=1)
        xy[~found] = np.nan
        score = _score_column(path, len(clip), problems)
        if problems is not None:
            problems.extend(dataclasses.replace(p, clip=clip.id) for p in table.problems)
        score = np.where(found, score if score is not None else 1.0, 0.0)
        out.append(ClipPredictions(clip=clip, xy=xy, score=score))
    if not out:
        raise InputError(
            f"no prediction CSV for any of the {len(clips)} clips under {pred_dir} (first: {missing[0]}); "
            f"expected {pred_dir}/<clip>/Label.csv or {pred_dir}/<clip>.csv"
        )
    return out, missing


def _score_column(path: Any, n: int, problems: list[Any] | None = None) -> np.ndarray | None:
    """The `Score` column of a predict CSV (Frame,Visibility,X,Y,Score,...), by frame number; None if absent.
    A score that is not a finite number counts as 0 (and is a `bad_value` problem)."""
    import csv

    from tracknet_cli.data.labels import BAD_VALUE, Problem

    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if "score" not in header or "frame" not in header:
            return None
        fi, si = header.index("frame"), header.index("score")
        scores = np.ones(n, dtype=np.float64)
        for line, row in enumerate(reader, start=2):
            try:
                frame = int(float(row[fi]))
            except (ValueError, IndexError, OverflowError):
                continue  # the label reader reports the row
            try:
                value = float(row[si])
            except (ValueError, IndexError):
                value = float("nan")
            if not 0 <= frame < n:
                continue
            if not np.isfinite(value):
                if problems is not None:
                    cell = row[si] if si < len(row) else ""
                    problems.append(
                        Problem(BAD_VALUE, str(path), line, frame, f"score {cell[:40]!r} is not a finite number")
                    )
                value = 0.0
            scores[frame] = value
    return scores
