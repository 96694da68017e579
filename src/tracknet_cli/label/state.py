"""Per-frame labelling state: a person's labels, the model's proposals, and what each frame needs.

A frame is *confirmed* when it has a label (placed or confirmed by a person, or read from a label
file), *uncertain* when it only has a proposal the model is unsure of, *proposed* when it has a
confident proposal, and *empty* otherwise. Only labels are written to the label file: proposals
stay proposals (in the sidecar) until a person confirms them, so training never learns from
model output nobody looked at.

A proposal is uncertain for the model's own reasons (`proposals.classify`: `score`, `jump`, `gap`)
or, here, for `track`: its ball is more than `track_limit` (10 px, or 2% of the image diagonal when
that is more) from where the frames around it put the ball: the midpoint of the frames just before
and after, or, when one of them has no ball, the line through the two frames on the other side.
A frame's point is its label, else its proposal; a no-ball label or proposal has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

State = Literal["confirmed", "proposed", "uncertain", "empty"]
STATES: tuple[State, ...] = ("confirmed", "proposed", "uncertain", "empty")
Reason = Literal["", "score", "jump", "gap", "track"]
TRACK_MIN_PX, TRACK_FRACTION = 10.0, 0.02


class LabelRequestError(ValueError):
    """A change the page sent that cannot be applied: the server answers 4xx with this message."""


class LabelConflict(LabelRequestError):
    """Another program changed the label file: saving stopped, changes are refused (409)."""


@dataclass(frozen=True)
class Label:
    """One frame's label in source pixels (x, y None at visibility 0); status -1 unknown."""

    visibility: int
    x: float | None = None
    y: float | None = None
    status: int = -1

    def to_json(self) -> dict[str, Any]:
        return {"visibility": self.visibility, "x": self.x, "y": self.y}


@dataclass(frozen=True)
class Proposal:
    """The model's answer for one frame: a ball (visibility 1, x, y) or none (0), its peak score,
    and why it is uncertain ('' when it is not)."""

    visibility: int
    x: float | None
    y: float | None
    score: float
    reason: Reason = ""

    def to_json(self, reason: Reason | None = None) -> list[Any]:
        return [self.visibility, self.x, self.y, round(self.score, 4), self.reason if reason is None else reason]

    @classmethod
    def from_json(cls, item: Sequence[Any]) -> "Proposal":
        v, x, y, score, reason = item
        return cls(int(v), x, y, float(score), reason)


def rounded(value: float) -> float:
    """Coordinates keep 3 decimals, as the label file does, so reopening gives the same numbers."""
    return float(f"{value:.3f}")


def _finite(value: int | float) -> bool:
    """A JSON integer of 400 digits is a Python int that no float holds (math.isfinite raises OverflowError)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_change(item: Any, frames: int, width: int, height: int) -> tuple[int, Label | None]:
    """One change from the page: `{"frame": i, "visibility": 0-3, "x": .., "y": ..}`, or
    `{"frame": i, "clear": true}`. Raises LabelRequestError naming what is wrong."""
    if not isinstance(item, dict):
        raise LabelRequestError(f"each change must be an object, got {type(item).__name__}")
    frame = item.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise LabelRequestError(f"frame must be an integer, got {frame!r}"[:200])
    if not 0 <= frame < frames:
        raise LabelRequestError(f"frame {frame} is outside 0..{frames - 1}")
    if item.get("clear") is True:
        return frame, None
    vis = item.get("visibility")
    if isinstance(vis, bool) or not isinstance(vis, int) or not 0 <= vis <= 3:
        raise LabelRequestError(f"frame {frame}: visibility must be 0, 1, 2 or 3, got {vis!r}"[:200])
    if vis == 0:
        return frame, Label(0)
    x, y = item.get("x"), item.get("y")
    for name, value, limit in (("x", x, width), ("y", y, height)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise LabelRequestError(f"frame {frame}: {name} must be a number for visibility {vis}, got {value!r}"[:200])
        if not 0 <= value <= limit:
            raise LabelRequestError(f"frame {frame}: {name}={value} is outside the image (0..{limit})")
    return frame, Label(vis, rounded(float(x)), rounded(float(y)))  # type: ignore[arg-type]


def track_limit(width: int, height: int) -> float:
    return max(TRACK_MIN_PX, TRACK_FRACTION * math.hypot(width, height))


def reasons(
    labels: Sequence[Label | None], proposals: Sequence[Proposal | None], width: int, height: int
) -> list[Reason]:
    """Why each frame's proposal is uncertain: the model's reason, else `track` (see the module doc;
    checked only for frames without a label); '' for a confident proposal and for no proposal."""
    n, limit = len(labels), track_limit(width, height)

    def point(i: int) -> tuple[float, float] | None:
        if not 0 <= i < n:
            return None
        lab, prop = labels[i], proposals[i]
        ball = lab if lab is not None else prop
        if ball is None or ball.visibility == 0 or ball.x is None or ball.y is None:
            return None
        return ball.x, ball.y

    out: list[Reason] = [""] * n
    for i, prop in enumerate(proposals):
        if prop is None:
            continue
        out[i] = prop.reason
        here = point(i)
        if prop.reason or labels[i] is not None or here is None:
            continue
        before, after = point(i - 1), point(i + 1)
        if before and after:
            expected = ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
        elif before and (earlier := point(i - 2)):
            expected = (2 * before[0] - earlier[0], 2 * before[1] - earlier[1])
        elif after and (later := point(i + 2)):
            expected = (2 * after[0] - later[0], 2 * after[1] - later[1])
        else:
            continue
        if math.hypot(here[0] - expected[0], here[1] - expected[1]) > limit:
            out[i] = "track"
    return out


def frame_state(label: Label | None, proposal: Proposal | None, reason: Reason | None = None) -> State:
    """reason: the proposal's uncertainty as `reasons` sees it (None: the model's own)."""
    if label is not None:
        return "confirmed"
    if proposal is None:
        return "empty"
    return "uncertain" if (proposal.reason if reason is None else reason) else "proposed"


def next_needing(states: Sequence[State], after: int, step: int = 1) -> int | None:
    """The next frame after `after` (step -1: the previous one before it), wrapping, that needs a
    person: uncertain ones first, then any frame without a label; None when every frame is confirmed."""
    n = len(states)
    order = [(after + step * k) % n for k in range(1, n + 1)]
    for wanted in (("uncertain",), ("uncertain", "proposed", "empty")):
        for i in order:
            if states[i] in wanted:
                return i
    return None
