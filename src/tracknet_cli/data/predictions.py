"""Per-clip predictions beside their labels, and `tracknet eval`'s prediction CSVs: `--save-csv` writes
them in the tennis `Label.csv` dialect, `--pred-csv` reads any tracker's (every dialect `data.labels`
reads, with `tracknet predict`'s `Score` column when present).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tracknet_cli.atomic import first_overwritten_input, refuse_special
from tracknet_cli.data.labels import BAD_VALUE, PREDICT_HEADER, LabelTable, Problem, read_labels, write_tennis_labels
from tracknet_cli.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.data.clips import Clip

# The predict CSV's columns a `--pred-csv` reader looks up, matched case-blind as the label dialects are.
_FRAME, _SCORE = PREDICT_HEADER[0].lower(), PREDICT_HEADER[4].lower()


@dataclass
class ClipPredictions:
    """One clip's decoded predictions in source pixels, beside its labels."""

    clip: "Clip"
    xy: np.ndarray  # (n, 2) float, NaN where no peak
    score: np.ndarray  # (n,)

    @property
    def clip_id(self) -> str:
        return self.clip.id


def prediction_csv_targets(
    out_dir: Any, clips: Sequence["Clip"], *, overwrite: bool = False, reads: Sequence[Any] = ()
) -> list[Path]:
    """DIR/<clip id>/Label.csv for each clip, checked before any work is done.

    A target that is a file the evaluation reads (a clip's labels, frames or video, or any path in
    `reads` such as the checkpoint) is refused always, `overwrite` or not; any other existing file
    is refused unless `overwrite`, one that is not a regular file always. All raise `InputError` (exit 2)."""
    targets = [Path(out_dir) / (clip.whole or clip).id / "Label.csv" for clip in clips]
    inputs = [*reads, *(p for c in clips for p in (c.label_path, c.video, *(c.frame_paths or ())))]
    target = first_overwritten_input(targets, inputs)
    if target is not None:
        raise InputError(
            f"{{out_dir}} {out_dir} would write over {target}, which this evaluation reads; "
            "choose a folder outside the dataset",
            parameter="out_dir",
            value=out_dir,
        )
    for target in targets:
        refuse_special(target)
        if target.exists() and not overwrite:
            raise InputError(
                f"{target} already exists; pass {{overwrite}} to replace it or choose another {{out_dir}} folder",
                parameter="overwrite",
                also=("out_dir",),
            )
    return targets


def write_prediction_csvs(out_dir: Any, predictions: Sequence[ClipPredictions], threshold: float) -> list[Path]:
    """Per-clip predictions in the tennis `Label.csv` dialect, mirroring the layout: DIR/<clip id>/Label.csv
    (`prediction_csv_targets` checks these paths before the evaluation starts). A piece of a time split
    writes its rows, named by their frames in the whole clip, to its whole clip's file.

    A frame whose score reaches the threshold is written visible (1) with its coordinates, others 0.
    """
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
    pred_dir: Any, clips: Sequence["Clip"], problems: list[Problem] | None = None
) -> tuple[list[ClipPredictions], list[str]]:
    """Another tracker's per-clip CSVs (any supported dialect) placed on the ground-truth clips,
    and the ids of clips that have none (they are not scored; the caller says so).

    For clip `game1/Clip1` the file is PRED/game1/Clip1/<any>.csv, PRED/game1/Clip1.csv or PRED/Clip1.csv.
    A row with visibility > 0 and coordinates is a detection; its `Score` column is used when present.
    Rows that cannot be read (bad values, visibility outside 0-3, coordinates that are not finite or
    outside the frame, missing frames, unreadable scores) score as no detection and are appended to
    `problems` as `data.labels.Problem`s (file, row, kind), as `data inspect` reports labels.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(
            f"{{pred_dir}} {pred_dir} is not a directory of per-clip CSV files", parameter="pred_dir", value=pred_dir
        )
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


def _score_column(path: Path, n: int, problems: list[Problem] | None = None) -> np.ndarray | None:
    """The `Score` column of a predict CSV (`PREDICT_HEADER`), by frame number; None if absent.
    A score that is not a finite number counts as 0 (and is a `bad_value` problem)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if _SCORE not in header or _FRAME not in header:
            return None
        fi, si = header.index(_FRAME), header.index(_SCORE)
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
