"""Score a model on whole clips through the inference engine: exactly what `tracknet predict` computes.

Used by validation inside `fit` (which calibrates the checkpoint's threshold on these predictions)
and by `tracknet eval`; `score_predictions` also scores CSVs written by any tracker
(`tracknet eval --pred-csv`, read by `data.predictions`), so every number comes from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tracknet_cli.data.predictions import ClipPredictions
from tracknet_cli.training.artifacts import Overlay
from tracknet_cli.training.metrics import Metrics, score_frames

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.data.clips import Clip
    from tracknet_cli.data.datasets import SequenceDataset
    from tracknet_cli.inference.engine import Engine


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

    loss_fn: Any
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
            self.total += float(self.loss_fn(logits, targets, mask, no_ball_logit=no_ball).total)
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
    engine: "Engine",
    dataset: "SequenceDataset",
    *,
    protocol: str,
    threshold: float,
    loss_fn: Any = None,
    overlay_frames: int = 0,
    keep_predictions: bool = False,
) -> EvalReport:
    """Run every frame of `dataset`'s clips through `engine` (model, device, precision, batch, window
    stride, the loss that decides its probabilities), decode, score.

    One clip at a time, streamed: memory holds a few windows of frames and maps, not a clip.
    `loss_fn` (validation: a `models.losses` loss) is averaged over the engine's windows, padded
    slots masked out; no-ball frames count in it as the dataset's `data.no_ball_frames` says, as in training.
    """
    picks = _overlay_picks(dataset, overlay_frames)
    negative = dataset.data.no_ball_frames == "negative"
    predictions: list[ClipPredictions] = []
    overlay_parts: list[_OverlayPart] = []
    loss_sum, loss_batches, frames_seen = 0.0, 0, 0
    for ci, clip in enumerate(dataset.clips):
        codec, source = dataset.codecs[ci], dataset.frames(ci)
        on_batch = _LossSum(loss_fn, *_targets(clip, codec, negative)) if loss_fn is not None else None
        pred, maps = _predict_clip(engine, clip, codec, source, set(picks.get(clip.id, [])), on_batch)
        if on_batch is not None:
            loss_sum, loss_batches = loss_sum + on_batch.total, loss_batches + on_batch.batches
        predictions.append(pred)
        frames_seen += len(clip)
        overlay_parts += _overlay_parts(pred, codec, source, maps, picks.get(clip.id, []))

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
    engine: "Engine", clip: "Clip", codec: Any, source: Any, wanted: set[int], on_batch: _LossSum | None
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

    `test` falls back to every clip when the config defines no test split (no list, ratio 0). A
    listed val or test split is resolved alone: the run's other lists may name folders this root does
    not hold (the bundled `padel` trained on a tennis/ folder beside its padel points).
    """
    from pathlib import Path

    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.splits import SPLITS, split_clips

    clips = discover_clips(Path(root))
    if split == "all":
        return clips
    settings = config.data.split
    if split != "train" and settings.by == "clip" and getattr(settings, split):
        settings = settings.model_copy(update={other: None for other in SPLITS if other != split})
    splits = split_clips(clips, settings)
    chosen = getattr(splits, split)
    if split == "test" and not chosen and not config.data.split.test and config.data.split.test_ratio == 0:
        return clips
    return list(chosen)
