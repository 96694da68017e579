"""Streaming windows over a frame stream, and the averaging of overlapping per-frame heatmaps.

``WindowScheduler`` turns frames pushed one at a time into batches of ``batch_size`` windows of
``length`` (T) consecutive frames, starting every ``stride`` frames (1: every frame is seen by up
to T windows and their heatmaps are averaged, the TrackNetV3 "ensemble"; T: each frame is seen
once, T times cheaper). The stream's tail is padded by repeating its last frame so the last
frames are covered (a stream shorter than T gives one padded window); padded slots are marked
``valid=False`` and ignored by the averager.

``HeatmapAverager`` adds every valid slot's heatmap to its frame and releases a frame's mean as
soon as no later window can cover it (``WindowBatch.final_before``), in frame order. Heatmaps may
be numpy arrays or torch tensors (any device); nothing is converted. Memory: the scheduler holds
at most ``batch_size * stride + length`` frames, the averager ``batch_size * stride + length``
heatmaps. After the scheduler's ``flush()`` batches, call ``HeatmapAverager.flush()`` for the rest.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class WindowBatch:
    frames: np.ndarray  # (B, T, *frame_shape): the pushed arrays, stacked
    frame_ids: np.ndarray  # (B, T) int64 absolute frame numbers (a padded slot repeats the last frame's)
    valid: np.ndarray  # (B, T) bool; False for padding
    final_before: int  # no later window covers a frame below this number

    def __len__(self) -> int:
        return int(self.frame_ids.shape[0])


@dataclass
class WindowScheduler:
    """Push frames (consecutive numbers, any first number); get ready batches back."""

    length: int
    batch_size: int
    stride: int = 1
    _frames: deque[tuple[int, Any]] = field(init=False, default_factory=deque)
    _starts: list[int] = field(init=False, default_factory=list)  # windows waiting for a batch
    _next_start: int | None = field(init=False, default=None)
    _covered_to: int = field(init=False, default=-1)  # last frame number inside an emitted-or-queued window
    _last: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.length < 1 or self.batch_size < 1:
            raise ValueError("window length and batch size must be >= 1")
        if not 1 <= self.stride <= self.length:
            raise ValueError(f"stride must be between 1 and the window length {self.length}")

    def push(self, frame_id: int, frame: Any) -> list[WindowBatch]:
        if self._last is not None and frame_id != self._last + 1:
            raise ValueError(f"frames must be consecutive: expected {self._last + 1}, got {frame_id}")
        if self._next_start is None:
            self._next_start = frame_id
        self._last = frame_id
        self._frames.append((frame_id, frame))
        out: list[WindowBatch] = []
        while self._next_start + self.length - 1 <= frame_id:
            self._queue(self._next_start)
            if len(self._starts) == self.batch_size:
                out.append(self._batch(final=False))
        return out

    def flush(self) -> list[WindowBatch]:
        """Pad and emit what is left; the last batch releases every frame."""
        if self._last is None:
            return []
        if self._covered_to < self._last:
            self._queue(self._next_start)
        return [self._batch(final=True)] if self._starts else []

    def _queue(self, start: int) -> None:
        self._starts.append(start)
        self._covered_to = start + self.length - 1
        self._next_start = start + self.stride

    def _batch(self, final: bool) -> WindowBatch:
        first = self._frames[0][0]
        ids = np.array([[min(s + t, self._last) for t in range(self.length)] for s in self._starts], dtype=np.int64)
        valid = np.array([[s + t <= self._last for t in range(self.length)] for s in self._starts], dtype=bool)
        frames = np.stack([np.stack([self._frames[i - first][1] for i in row]) for row in ids])
        final_before = self._last + 1 if final else int(self._next_start)
        self._starts = []
        # Frames below the next window start are never needed again.
        while self._frames and self._frames[0][0] < self._next_start:
            self._frames.popleft()
        return WindowBatch(frames, ids, valid, final_before)


@dataclass
class HeatmapAverager:
    """Mean heatmap per frame over every window that covered it, released in frame order."""

    _sums: dict[int, Any] = field(init=False, default_factory=dict)
    _counts: dict[int, int] = field(init=False, default_factory=dict)

    def add(self, batch: WindowBatch, heatmaps: Any) -> list[tuple[int, Any]]:
        """``heatmaps``: (B, T, Hh, Wh) for ``batch`` (probabilities, numpy or torch)."""
        b, t = batch.frame_ids.shape
        if tuple(heatmaps.shape[:2]) != (b, t):
            raise ValueError(f"heatmaps {tuple(heatmaps.shape)} do not match the batch's windows ({b}, {t})")
        for i in range(b):
            for j in range(t):
                if not batch.valid[i, j]:
                    continue
                fid = int(batch.frame_ids[i, j])
                hm = heatmaps[i, j]
                if fid in self._sums:
                    self._sums[fid] = self._sums[fid] + hm
                    self._counts[fid] += 1
                else:
                    self._sums[fid] = _copy(hm)
                    self._counts[fid] = 1
        return self._release(batch.final_before)

    def flush(self) -> list[tuple[int, Any]]:
        return self._release(None)

    @property
    def pending(self) -> int:
        return len(self._sums)

    def _release(self, before: int | None) -> list[tuple[int, Any]]:
        ready = sorted(f for f in self._sums if before is None or f < before)
        out = []
        for fid in ready:
            total, count = self._sums.pop(fid), self._counts.pop(fid)
            out.append((fid, total / count if count > 1 else total))
        return out


def _copy(array: Any) -> Any:
    return array.copy() if isinstance(array, np.ndarray) else array.clone()
