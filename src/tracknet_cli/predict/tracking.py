"""Online ball tracking over per-frame heatmap peaks: threshold, gating, resets, gap filling.

The tracker is a push/flush state machine: ``push(peak, scene_diff)`` for every frame in order,
``flush()`` at the end; both return the rows that became final, in frame order, exactly one row per
pushed frame. Peak and row are one type, ``BallPoint`` (one frame's ball point: the tracker decides
``visible`` and ``interpolated``). Behaviour (``TrackingConfig`` names in brackets):

- **Threshold**: a frame whose peak score is below ``threshold`` (or whose peak is NaN) has no ball.
- **Gating**: a detection is accepted when it lies within ``max_jump`` px *per elapsed frame* of
  the track's last accepted point (``max_jump * (frame - last_frame)``). A detection beyond that
  starts a *candidate*; it is **confirmed** when ``confirm`` more detections follow, each within the
  same gate of the previous candidate point and at most ``max_gap + 1`` frames after it. On
  confirmation the track switches to the candidate: its points are accepted, points the old track
  accepted after the candidate's first frame are rejected, and no gap is filled across the switch.
  A candidate that is not confirmed is rejected (a new out-of-gate detection replaces it).
- **Resets**: after more than ``reset_gap`` frames with no accepted point, or at a scene cut
  (``push``'s ``scene_diff > scene_cut``: the caller's mean absolute difference of small
  grayscale thumbnails, see ``gray_thumbnail``/``scene_difference``), the track ends; the next
  detection starts a new one without gating and nothing is interpolated across the reset.
- **Gap filling**: a run of at most ``max_gap`` frames without an accepted point between two
  accepted points of the same track is linearly interpolated: ``visible=True, interpolated=True,
  score=0``. Interpolated rows are never detections.
- ``enabled=False`` (``--no-track``): raw thresholded detections, no gating, resets or filling.

Lookahead: a row waits until its fate is known, at most ``(confirm + 1) * (max_gap + 1)`` frames
after it was pushed (``TrackingConfig.max_delay``); memory is bounded by that many rows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tracknet_cli.errors import UsageError

DEFAULT_MAX_JUMP_FRACTION = 0.1  # of the frame diagonal, per frame, when max_jump is not given


@dataclass(frozen=True)
class TrackingConfig:
    threshold: float = 0.5
    max_gap: int = 5  # longest run of missing frames that is interpolated
    max_jump: float | None = None  # px per frame in source pixels; None: 10 % of the frame diagonal
    confirm: int = 2  # detections after an out-of-gate one that confirm it
    reset_gap: int = 15  # frames without an accepted point after which the track ends
    scene_cut: float | None = 40.0  # thumbnail mean |difference| (0-255) above which the track resets
    enabled: bool = True  # False: raw detections (--no-track)

    def __post_init__(self) -> None:
        self.check_options(self.threshold, self.max_gap, self.max_jump)
        if self.confirm < 0 or self.reset_gap < 0:
            raise UsageError(f"confirm {self.confirm} and reset gap {self.reset_gap} must be >= 0")

    @staticmethod
    def check_options(threshold: float | None, max_gap: int, max_jump: float | None) -> None:
        """The one check of predict's --threshold (None: the checkpoint's), --max-gap and --max-jump,
        for the CLI, the Python API (`Tracker`) and every `TrackingConfig`: `UsageError` (exit 2)."""
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise UsageError(
                f"threshold {threshold:g} must be between 0 and 1 ({{threshold}})",
                parameter="threshold",
                value=threshold,
            )
        if max_gap < 0:
            raise UsageError(f"max gap {max_gap} must be >= 0 ({{max_gap}})", parameter="max_gap", value=max_gap)
        if max_jump is not None and not max_jump > 0:
            raise UsageError(
                f"max jump {max_jump:g} must be positive, in source pixels per frame ({{max_jump}})",
                parameter="max_jump",
                value=max_jump,
            )

    def jump_for(self, size: tuple[int, int]) -> float:
        """The gate in px/frame for frames of ``size`` = (W, H)."""
        if self.max_jump is not None:
            return float(self.max_jump)
        return DEFAULT_MAX_JUMP_FRACTION * math.hypot(size[0], size[1])

    @property
    def max_delay(self) -> int:
        """Most frames a row can wait in the tracker before it is emitted."""
        return (self.confirm + 1) * (self.max_gap + 1)


@dataclass(frozen=True)
class BallPoint:
    """One frame's ball point in source pixels. Going into the tracker it is the frame's decoded heatmap
    peak (``visible`` when its coordinates are finite, whatever its score); coming out it is the row the
    CSV and the overlay show for the frame (a detection, a filled gap, or no ball)."""

    frame: int
    x: float  # source pixels; 0 in a row without a ball, NaN in a peak without coordinates
    y: float
    score: float  # the peak's score; in a row 0 for interpolated points and frames without a ball
    visible: bool
    interpolated: bool = False  # a row filled in between two detections (never a detection)

    @classmethod
    def from_peak(cls, frame: int, x: float, y: float, score: float) -> "BallPoint":
        """A decoded heatmap peak (before the threshold and the tracker)."""
        return cls(frame, x, y, score, visible=bool(math.isfinite(x) and math.isfinite(y)))

    @classmethod
    def absent(cls, frame: int) -> "BallPoint":
        """The row of a frame without a ball."""
        return cls(frame, 0.0, 0.0, 0.0, visible=False)


_State = Literal["none", "accepted", "rejected", "candidate"]


@dataclass
class _Entry:
    frame: int
    x: float
    y: float
    score: float
    detected: bool  # above the threshold with a finite peak
    state: _State = "none"
    track: int = -1  # the id of the track that accepted it


@dataclass
class OnlineTracker:
    """Streaming tracker: ``push`` frames in order, ``flush`` at the end (see the module doc)."""

    config: TrackingConfig
    frame_size: tuple[int, int]
    _jump: float = field(init=False)
    _buffer: deque[_Entry] = field(init=False, default_factory=deque)
    _last: _Entry | None = field(init=False, default=None)  # the track's last accepted point
    _track: int = field(init=False, default=0)
    _candidate: list[_Entry] = field(init=False, default_factory=list)
    _anchor: _Entry | None = field(init=False, default=None)  # the last accepted point emitted (gaps after it may fill)
    _next_frame: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._jump = self.config.jump_for(self.frame_size)

    # ------------------------------------------------------------ public
    def push(self, peak: BallPoint, scene_diff: float = 0.0) -> list[BallPoint]:
        """``peak``: the frame's decoded heatmap peak; ``scene_diff``: the difference of its thumbnail
        from the previous frame's (0-255; 0 for the first). Returns the rows that became final."""
        if self._next_frame is not None and peak.frame != self._next_frame:
            raise ValueError(f"frames must be pushed in order: expected {self._next_frame}, got {peak.frame}")
        self._next_frame = peak.frame + 1
        cfg = self.config
        detected = bool(
            np.isfinite(peak.x) and np.isfinite(peak.y) and np.isfinite(peak.score) and peak.score >= cfg.threshold
        )
        entry = _Entry(peak.frame, float(peak.x), float(peak.y), float(peak.score), detected)
        if not cfg.enabled:
            return [self._raw_row(entry)]
        self._buffer.append(entry)
        cut = cfg.scene_cut is not None and scene_diff > cfg.scene_cut
        if cut or (self._last is not None and entry.frame - self._last.frame > cfg.reset_gap):
            self._reset()
        if self._candidate and entry.frame - self._candidate[-1].frame > cfg.max_gap + 1:
            self._drop_candidate()
        if detected:
            self._place(entry)
        return self._release(final=False)

    def flush(self) -> list[BallPoint]:
        """Finalise every waiting row (an unconfirmed candidate at the end is rejected)."""
        if not self.config.enabled:
            return []
        self._drop_candidate()
        rows = self._release(final=True)
        self._buffer.clear()
        return rows

    @property
    def pending(self) -> int:
        """Rows pushed but not emitted yet."""
        return len(self._buffer)

    # ------------------------------------------------------------ decisions
    def _near(self, a: _Entry, b: _Entry) -> bool:
        return math.hypot(b.x - a.x, b.y - a.y) <= self._jump * (b.frame - a.frame)

    def _reset(self) -> None:
        self._drop_candidate()
        self._last = None
        self._track += 1

    def _drop_candidate(self) -> None:
        for e in self._candidate:
            e.state = "rejected"
        self._candidate = []

    def _place(self, entry: _Entry) -> None:
        if self._last is None:
            self._track += 1
            self._accept(entry)
        elif self._near(self._last, entry):
            self._accept(entry)
        elif self._candidate and self._near(self._candidate[-1], entry):
            entry.state = "candidate"
            self._candidate.append(entry)
            if len(self._candidate) > self.config.confirm:
                self._switch()
        else:
            self._drop_candidate()
            entry.state = "candidate"
            self._candidate = [entry]
            if self.config.confirm == 0:
                self._switch()

    def _accept(self, entry: _Entry) -> None:
        entry.state = "accepted"
        entry.track = self._track
        self._last = entry

    def _switch(self) -> None:
        """The candidate is confirmed: it becomes the track from its first frame on."""
        first = self._candidate[0].frame
        for e in self._buffer:
            if e.frame > first and e.state == "accepted":
                e.state = "rejected"
        self._track += 1
        for e in self._candidate:
            self._accept(e)
        self._candidate = []

    # ------------------------------------------------------------ output
    def _raw_row(self, e: _Entry) -> BallPoint:
        if e.detected:
            return BallPoint(e.frame, e.x, e.y, e.score, visible=True)
        return BallPoint.absent(e.frame)

    def _release(self, final: bool) -> list[BallPoint]:
        """Emit rows from the front of the buffer whose fate can no longer change."""
        rows: list[BallPoint] = []
        limit = self._candidate[0].frame if self._candidate else math.inf
        buf = self._buffer
        while buf and buf[0].frame < limit:
            e = buf[0]
            if e.state == "accepted":
                rows.append(BallPoint(e.frame, e.x, e.y, e.score, visible=True))
                self._anchor = e  # no longer in the buffer: nothing changes it from here on
                buf.popleft()
                continue
            fill = self._fill_for(e, limit, final)
            if fill is _WAIT:
                break
            buf.popleft()
            rows.append(fill if fill is not None else BallPoint.absent(e.frame))
        return rows

    def _fill_for(self, e: _Entry, limit: float, final: bool):
        """The interpolated row for a frame without an accepted point, None, or _WAIT to decide later."""
        a = self._anchor
        if a is None or e.frame - a.frame > self.config.max_gap:
            return None
        reach = a.frame + self.config.max_gap + 1  # the last frame that could close this gap
        for later in self._buffer:
            if later.frame > reach or later.frame >= limit:
                break
            if later.state == "accepted":
                if later.track != a.track:
                    return None
                t = (e.frame - a.frame) / (later.frame - a.frame)
                x, y = a.x + t * (later.x - a.x), a.y + t * (later.y - a.y)
                return BallPoint(e.frame, x, y, 0.0, visible=True, interpolated=True)
        if final:
            return None
        # No closing point yet: wait if one may still arrive on the same track within reach.
        still_possible = self._last is not None and self._last.track == a.track and reach >= (self._next_frame or 0)
        if still_possible or (self._candidate and limit <= reach):
            return _WAIT
        return None


_WAIT = object()


def gray_thumbnail(image: np.ndarray, width: int = 32) -> np.ndarray:
    """A tiny grayscale copy (about ``width`` columns, by striding) for scene-cut detection; float32."""
    h, w = image.shape[:2]
    step = max(1, w // width)
    small = image[::step, ::step]
    if small.ndim == 3:
        small = small.mean(axis=2, dtype=np.float32)
    return small.astype(np.float32, copy=False)


def scene_difference(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Mean absolute difference (0-255) between two thumbnails; 0 when there is no previous one."""
    if previous is None or previous.shape != current.shape:
        return 0.0
    return float(np.abs(current - previous).mean())
