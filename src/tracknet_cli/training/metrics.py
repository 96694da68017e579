"""Detection metrics under the published protocols, in one place (pure numpy).

Each frame gets one outcome: TP (ball, detection within the tolerance), FP1 (ball, detection too
far), FP2 (detection, no ball), FN (ball, no detection), TN (no ball, no detection), or `ignored`
(its label cannot be scored: unlabelled, or visible without usable coordinates). Precision =
TP/(TP+FP1+FP2), recall = TP/(TP+FN), accuracy = (TP+TN)/scored frames: the definitions every TrackNet
paper uses, which is why recall ignores FP1 frames.

Protocols differ in the tolerance, the resolution it is measured at, and which visibility classes
count as "ball" (docs/training/metrics.md gives each one's source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from tracknet_cli.choices import PROTOCOL_NAMES, ProtocolName, check, registry

DEFAULT_PCK_RADII: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
OUTCOMES: tuple[str, ...] = ("tp", "fp1", "fp2", "fn", "tn")


@dataclass(frozen=True)
class ScoringProtocol:
    """How one paper scores a frame."""

    name: str
    tolerance_px: float
    reference_width: float | None
    """None: the tolerance is in source pixels; else it is in pixels at this width, scaled by source_width / it."""
    positive_min: int
    positive_max: int | None
    negative: frozenset[int]
    strict: bool
    """True: a TP needs distance < tolerance (WASB's evaluator); False: distance <= tolerance."""
    source: str

    def tolerance(self, source_width: np.ndarray | float) -> np.ndarray:
        """Tolerance in source pixels for frames of the given source width."""
        width = np.asarray(source_width, dtype=np.float64)
        if self.reference_width is None:
            return np.full(width.shape, self.tolerance_px)
        return self.tolerance_px * width / self.reference_width

    def roles(self, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) boolean masks; a frame in neither cannot be scored."""
        vis = np.asarray(visibility).astype(np.int64)
        positive = vis >= self.positive_min
        if self.positive_max is not None:
            positive &= vis <= self.positive_max
        negative = np.isin(vis, sorted(self.negative)) & ~positive
        return positive, negative

    def describe(self) -> str:
        """The tolerance with the resolution it is measured at, e.g. '4 px at 512-px width (scaled)'."""
        at = (
            "source resolution"
            if self.reference_width is None
            else f"{self.reference_width:g}-px width, scaled by source width"
        )
        hi = "" if self.positive_max is None else f"-{self.positive_max}"
        plus = "+" if self.positive_max is None else ""
        return f"{self.tolerance_px:g} px at {at}; ball = visibility {self.positive_min}{hi}{plus}"


PROTOCOLS: dict[str, ScoringProtocol] = registry(
    {
        "tracknet": ScoringProtocol(
            name="tracknet",
            tolerance_px=5.0,
            reference_width=None,
            positive_min=1,
            positive_max=3,
            negative=frozenset({0}),
            strict=False,
            source="TrackNet (Huang et al., AVSS 2019, arXiv:1907.03698), tennis dataset",
        ),
        "v2": ScoringProtocol(
            name="v2",
            tolerance_px=4.0,
            reference_width=512.0,
            positive_min=1,
            positive_max=None,
            negative=frozenset({0}),
            strict=False,
            source="TrackNetV2-V4 (TrackNetV3 test.py: tolerance 4 at 512x288, dist > tolerance is FP1)",
        ),
        "wasb": ScoringProtocol(
            name="wasb",
            tolerance_px=4.0,
            reference_width=None,
            positive_min=1,
            positive_max=2,
            negative=frozenset({0, 3}),
            strict=True,
            source=(
                "WASB-SBDT (Tarashima et al., BMVC 2023; src/utils/evaluator.py, dist_threshold 4, visible_flags [1,2])"
            ),
        ),
    },
    ProtocolName,
)
"""Every scoring protocol by name, keyed by `choices.ProtocolName` (which feeds the config schema and `--protocol`)."""


def get_protocol(name: str) -> ScoringProtocol:
    """The protocol called `name`; a `ConfigError` with the closest name otherwise."""
    return PROTOCOLS[check(name, PROTOCOL_NAMES, "protocol")]


@dataclass
class OutcomeCounts:
    tp: int = 0
    fp1: int = 0
    fp2: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: "OutcomeCounts") -> "OutcomeCounts":
        return OutcomeCounts(*(getattr(self, k) + getattr(other, k) for k in OUTCOMES))

    def to_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in OUTCOMES}


@dataclass
class Metrics:
    """Counts and the raw values derived statistics need, so per-clip results merge exactly."""

    protocol: str
    threshold: float
    tp: int = 0
    fp1: int = 0
    fp2: int = 0
    fn: int = 0
    tn: int = 0
    ignored: int = 0
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """L2 error in source pixels of every TP and FP1 frame."""
    positive_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """One per positive frame: L2 error of its detection, +inf without one (for PCK)."""
    ap_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ap_correct: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Every candidate detection (any score) and whether it is a hit, for threshold-free AP."""
    by_visibility: dict[int, OutcomeCounts] = field(default_factory=dict)
    pck_radii: tuple[float, ...] = DEFAULT_PCK_RADII

    # ------------------------------------------------------------ derived values
    @property
    def scored(self) -> int:
        return self.tp + self.fp1 + self.fp2 + self.fn + self.tn

    @property
    def positives(self) -> int:
        return self.tp + self.fp1 + self.fn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp1 + self.fp2)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.scored)

    @property
    def l2_mean(self) -> float | None:
        return float(self.errors.mean()) if self.errors.size else None

    @property
    def l2_median(self) -> float | None:
        return float(np.median(self.errors)) if self.errors.size else None

    @property
    def rmse(self) -> float | None:
        return float(np.sqrt(np.mean(self.errors**2))) if self.errors.size else None

    def pck(self, radius: float) -> float:
        """Share of positive frames with a detection within `radius` source pixels (threshold applied)."""
        return _ratio(int((self.positive_errors <= radius).sum()), self.positive_errors.size)

    @property
    def ap(self) -> float:
        return average_precision(self.ap_scores, self.ap_correct, self.positives)

    @property
    def recall_by_visibility(self) -> dict[int, float]:
        """TP/(TP+FN) per visibility class that holds a ball under this protocol."""
        return {v: _ratio(c.tp, c.tp + c.fn) for v, c in sorted(self.by_visibility.items()) if c.tp + c.fp1 + c.fn > 0}

    # ------------------------------------------------------------ combining and reporting
    def merge(self, *others: "Metrics") -> "Metrics":
        """Totals of this and `others` (same protocol, threshold and radii), e.g. per-clip → all clips."""
        parts = (self, *others)
        for m in others:
            if (m.protocol, m.threshold, m.pck_radii) != (self.protocol, self.threshold, self.pck_radii):
                raise ValueError("cannot merge metrics computed under different protocols, thresholds or radii")
        by_vis: dict[int, OutcomeCounts] = {}
        for m in parts:
            for v, c in m.by_visibility.items():
                by_vis[v] = by_vis.get(v, OutcomeCounts()) + c
        return Metrics(
            protocol=self.protocol,
            threshold=self.threshold,
            **{k: sum(getattr(m, k) for m in parts) for k in (*OUTCOMES, "ignored")},
            errors=np.concatenate([m.errors for m in parts]),
            positive_errors=np.concatenate([m.positive_errors for m in parts]),
            ap_scores=np.concatenate([m.ap_scores for m in parts]),
            ap_correct=np.concatenate([m.ap_correct for m in parts]),
            by_visibility=by_vis,
            pck_radii=self.pck_radii,
        )

    def __add__(self, other: "Metrics") -> "Metrics":
        return self.merge(other)

    @classmethod
    def total(cls, parts: Iterable["Metrics"]) -> "Metrics":
        parts = list(parts)
        if not parts:
            raise ValueError("no metrics to total")
        return parts[0].merge(*parts[1:])

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-safe: counts, rates, errors (None when undefined), pck@r and per-visibility recall."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "threshold": float(self.threshold),
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            **{k: int(getattr(self, k)) for k in OUTCOMES},
            "ignored": int(self.ignored),
            "frames": self.scored,
            "l2_mean": self.l2_mean,
            "l2_median": self.l2_median,
            "rmse": self.rmse,
            "ap": self.ap,
        }
        for r in self.pck_radii:
            out[f"pck@{r:g}"] = self.pck(r)
        for v, rec in self.recall_by_visibility.items():
            out[f"recall_vis{v}"] = rec
        return out


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def average_precision(scores: np.ndarray, correct: np.ndarray, num_positives: int) -> float:
    """Non-interpolated AP: Σ (R_k − R_{k−1}) · P_k over the distinct score levels, highest first.

    A candidate is a hit when its frame holds a ball and it lies within the tolerance; recall is
    over every positive frame. Tied scores enter together (as in scikit-learn's
    `average_precision_score`), so the order of ties cannot change the value.
    """
    if num_positives <= 0 or scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, c = scores[order], correct[order].astype(np.float64)
    hits, seen = np.cumsum(c), np.arange(1, s.size + 1, dtype=np.float64)
    last_of_level = np.r_[s[1:] != s[:-1], True]
    hits, seen = hits[last_of_level], seen[last_of_level]
    recall = hits / num_positives
    precision = hits / seen
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _frame_roles(
    proto: ScoringProtocol, vis: np.ndarray, gt_xy: np.ndarray, state: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positive, negative, ignored) masks: a "ball" frame is scored only with a usable coordinate
    (finite, and a state other than -1 unknown); a frame in neither role is ignored."""
    positive, negative = proto.roles(vis)
    usable = np.isfinite(gt_xy).all(axis=1)
    if state is not None:
        usable &= np.asarray(state).reshape(len(vis)) != -1
    positive &= usable
    return positive, negative, ~(positive | negative)


def _closeness(
    proto: ScoringProtocol, pred_xy: np.ndarray, gt_xy: np.ndarray, width: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(distance, within the protocol's tolerance) per frame; NaN distance (either point missing) is never close."""
    with np.errstate(invalid="ignore"):
        dist = np.sqrt(((pred_xy - gt_xy) ** 2).sum(axis=1))
    tol = proto.tolerance(width)
    close = (dist < tol) if proto.strict else (dist <= tol)
    close &= np.isfinite(dist)
    return dist, close


def _outcomes(
    positive: np.ndarray, negative: np.ndarray, detected: np.ndarray, close: np.ndarray
) -> dict[str, np.ndarray]:
    """One mask per outcome (the module doc defines them); ignored frames are in none."""
    return {
        "tp": positive & detected & close,
        "fp1": positive & detected & ~close,
        "fn": positive & ~detected,
        "fp2": negative & detected,
        "tn": negative & ~detected,
    }


def score_frames(
    pred_xy: np.ndarray,
    pred_score: np.ndarray,
    gt_xy: np.ndarray,
    visibility: np.ndarray,
    source_width: np.ndarray | float,
    protocol: str = "v2",
    threshold: float = 0.5,
    state: np.ndarray | None = None,
    pck_radii: Sequence[float] = DEFAULT_PCK_RADII,
) -> Metrics:
    """Score N frames under `protocol`. All coordinates are source pixels.

    pred_xy (N,2): the decoded peak, NaN for none; pred_score (N,): its score. A frame has a
    detection when its xy is finite and score >= threshold; every finite candidate (any score)
    enters AP. gt_xy (N,2) NaN for no coordinate; visibility (N,) int (-1 unlabelled);
    source_width (N,) or scalar; state (N,) optional LabelTable state, -1 marking unknown frames.
    Ignored: unlabelled frames, and frames the protocol calls "ball" that have no usable coordinate.
    """
    proto = get_protocol(protocol)
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    n = pred_xy.shape[0]
    pred_score = np.asarray(pred_score, dtype=np.float64).reshape(n)
    gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(n, 2)
    vis = np.asarray(visibility).astype(np.int64).reshape(n)
    width = np.broadcast_to(np.asarray(source_width, dtype=np.float64), (n,))

    positive, negative, ignored = _frame_roles(proto, vis, gt_xy, state)
    candidate = np.isfinite(pred_xy).all(axis=1) & np.isfinite(pred_score)
    detected = candidate & (pred_score >= threshold)
    dist, close = _closeness(proto, pred_xy, gt_xy, width)
    outcome = _outcomes(positive, negative, detected, close)
    by_visibility = {
        int(v): OutcomeCounts(**{k: int((m & (vis == v)).sum()) for k, m in outcome.items()})
        for v in np.unique(vis[~ignored])
    }
    ap_mask = candidate & ~ignored
    return Metrics(
        protocol=proto.name,
        threshold=float(threshold),
        **{k: int(m.sum()) for k, m in outcome.items()},
        ignored=int(ignored.sum()),
        errors=dist[outcome["tp"] | outcome["fp1"]],
        positive_errors=np.where(detected[positive], dist[positive], np.inf),
        ap_scores=pred_score[ap_mask],
        ap_correct=(positive & close)[ap_mask],
        by_visibility=by_visibility,
        pck_radii=tuple(float(r) for r in pck_radii),
    )
