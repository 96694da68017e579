"""Metrics: every protocol against hand-counted confusion tables, tolerance scaling, visibility 3,
ignored frames, L2/PCK/AP, merging per-clip results, and window ensembling."""

from __future__ import annotations

import json
import math
from typing import get_args

import numpy as np
import pytest

from tracknet_cli.config.schema import TrainingConfig
from tracknet_cli.errors import ConfigError
from tracknet_cli.training.metrics import (
    PROTOCOLS,
    Metrics,
    ProtocolName,
    average_precision,
    get_protocol,
    score_frames,
)

N = float("nan")

# One 1280x720 clip, threshold 0.5. Tolerances: tracknet 5 px (<=), v2 4*1280/512 = 10 px (<=),
# wasb 4 px (strict <, and visibility 3 means "no ball").
# columns: visibility, gt x, gt y, pred x, pred y, score, distance, expected outcome per protocol
TABLE = [
    # vis  gx    gy    px    py    score  dist   tracknet  v2      wasb
    (1, 100, 100, 103, 104, 0.90, 5.0, "tp", "tp", "fp1"),
    (1, 200, 200, 200, 204, 0.80, 4.0, "tp", "tp", "fp1"),  # exactly 4: wasb needs < 4
    (2, 300, 300, 306, 308, 0.70, 10.0, "fp1", "tp", "fp1"),  # exactly the v2 tolerance
    (3, 400, 400, 400, 400, 0.60, 0.0, "tp", "tp", "fp2"),  # vis 3 is "no ball" for wasb
    (3, 500, 500, N, N, 0.00, N, "fn", "fn", "tn"),
    (0, N, N, 10, 10, 0.95, N, "fp2", "fp2", "fp2"),
    (0, N, N, N, N, 0.00, N, "tn", "tn", "tn"),
    (1, 600, 600, 600, 600, 0.30, 0.0, "fn", "fn", "fn"),  # below the threshold: no detection
    (2, 700, 100, 700, 130, 0.85, 30.0, "fp1", "fp1", "fp1"),
    (-1, N, N, 5, 5, 0.90, N, "ignored", "ignored", "ignored"),  # unlabelled
    (1, N, N, 1, 1, 0.90, N, "ignored", "ignored", "ignored"),  # visible without coordinates
    (3, N, N, 50, 50, 0.40, N, "ignored", "ignored", "tn"),  # occluded, no coordinate
    (3, N, N, 60, 60, 0.90, N, "ignored", "ignored", "fp2"),
    (2, 800, 300, 802, 301, 0.75, math.sqrt(5), "tp", "tp", "tp"),
]
COLUMN = {"tracknet": 7, "v2": 8, "wasb": 9}

# The same table counted by hand.
EXPECTED = {
    #            tp fp1 fp2 fn tn ignored   precision recall accuracy
    "tracknet": (4, 2, 1, 2, 1, 4, 4 / 7, 4 / 6, 5 / 10),
    "v2": (5, 1, 1, 2, 1, 4, 5 / 7, 5 / 7, 6 / 10),
    "wasb": (1, 4, 3, 1, 3, 2, 1 / 8, 1 / 2, 4 / 12),
}


def table_arrays(rows=TABLE):
    arr = np.array([r[:6] for r in rows], dtype=np.float64)
    return {
        "visibility": arr[:, 0].astype(np.int8),
        "gt_xy": arr[:, 1:3],
        "pred_xy": arr[:, 3:5],
        "pred_score": arr[:, 5],
    }


def score_table(protocol: str, rows=TABLE, width=1280, **kw) -> Metrics:
    return score_frames(**table_arrays(rows), source_width=width, protocol=protocol, threshold=0.5, **kw)


def test_table_is_consistent_with_its_expected_totals() -> None:
    for name, col in COLUMN.items():
        outcomes = [r[col] for r in TABLE]
        counts = tuple(outcomes.count(k) for k in ("tp", "fp1", "fp2", "fn", "tn", "ignored"))
        assert counts == EXPECTED[name][:6], name


@pytest.mark.parametrize("name", ["tracknet", "v2", "wasb"])
def test_protocol_confusion_table(name: str) -> None:
    m = score_table(name)
    tp, fp1, fp2, fn, tn, ignored, precision, recall, accuracy = EXPECTED[name]
    assert (m.tp, m.fp1, m.fp2, m.fn, m.tn, m.ignored) == (tp, fp1, fp2, fn, tn, ignored)
    assert m.precision == pytest.approx(precision)
    assert m.recall == pytest.approx(recall)
    assert m.accuracy == pytest.approx(accuracy)
    assert m.f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert m.scored + m.ignored == len(TABLE)


def test_registry_matches_config() -> None:
    assert set(PROTOCOLS) == set(get_args(ProtocolName)) == {"tracknet", "v2", "wasb"}
    assert set(get_args(TrainingConfig.model_fields["protocol"].annotation)) == set(PROTOCOLS)
    assert TrainingConfig().protocol == "v2"
    for protocol in PROTOCOLS.values():
        assert protocol.source and "px at" in protocol.describe()


def test_v2_tolerance_scales_with_source_width() -> None:
    v2 = get_protocol("v2")
    assert v2.tolerance(512).item() == pytest.approx(4.0)
    assert v2.tolerance(1280).item() == pytest.approx(10.0)
    assert v2.tolerance(640).item() == pytest.approx(5.0)
    assert v2.tolerance(np.array([1920.0, 320.0])) == pytest.approx([15.0, 2.5])
    assert get_protocol("tracknet").tolerance(1920).item() == 5.0  # source resolution, no scaling
    # The same 6-px miss: FP1 at 640 wide (tolerance 5), TP at 1280 wide (tolerance 10); per-frame widths.
    rows = [(1, 100, 100, 106, 100, 0.9, 6.0), (1, 100, 100, 106, 100, 0.9, 6.0)]
    m = score_frames(**table_arrays(rows), source_width=np.array([640, 1280]), protocol="v2", threshold=0.5)
    assert (m.tp, m.fp1) == (1, 1)
    assert m.by_visibility[1].tp == 1 and m.by_visibility[1].fp1 == 1


def test_wasb_visibility_3_is_no_ball() -> None:
    rows = [(3, 10, 10, 10, 10, 0.9), (3, 10, 10, N, N, 0.0), (3, N, N, N, N, 0.0)]
    wasb = score_frames(**table_arrays(rows), source_width=1280, protocol="wasb", threshold=0.5)
    assert (wasb.tp, wasb.fp2, wasb.tn, wasb.fn, wasb.ignored) == (0, 1, 2, 0, 0)
    v2 = score_frames(**table_arrays(rows), source_width=1280, protocol="v2", threshold=0.5)
    assert (v2.tp, v2.fp2, v2.tn, v2.fn, v2.ignored) == (1, 0, 0, 1, 1)


def test_label_state_marks_unknown_frames() -> None:
    # state -1 (e.g. coordinates outside the image) ignores a ball frame; a no-ball frame stays scored.
    state = np.zeros(len(TABLE), dtype=np.int8)
    state[0] = -1  # was a v2 TP
    m = score_table("v2", state=state)
    assert (m.tp, m.ignored) == (4, 5)


def test_error_statistics_pck_and_recall_per_visibility() -> None:
    m = score_table("v2")
    errors = [5.0, 4.0, 10.0, 0.0, 30.0, math.sqrt(5)]  # TP + FP1 frames
    assert sorted(m.errors) == pytest.approx(sorted(errors))
    assert m.l2_mean == pytest.approx(sum(errors) / 6)
    assert m.l2_median == pytest.approx(4.5)
    assert m.rmse == pytest.approx(math.sqrt((25 + 16 + 100 + 0 + 900 + 5) / 6))
    # 8 positive frames; detections at 5, 4, 10, 0, 30, 2.24 px and two without one.
    assert m.pck(2) == pytest.approx(1 / 8)
    assert m.pck(5) == pytest.approx(4 / 8)
    assert m.pck(10) == pytest.approx(5 / 8)
    assert m.pck(40) == pytest.approx(6 / 8)
    assert m.recall_by_visibility == pytest.approx({1: 2 / 3, 2: 1.0, 3: 0.5})
    w = score_table("wasb")
    assert w.recall_by_visibility == pytest.approx({1: 0.0, 2: 1.0})  # vis 3 holds no ball under wasb
    assert w.by_visibility[3].fp2 == 2 and w.by_visibility[3].tn == 2


def test_ap_hand_example() -> None:
    # Candidates ranked by score: hit, miss (no ball), hit, miss (too far); one ball frame has none.
    rows = [
        (1, 100, 100, 100, 100, 0.9),
        (0, N, N, 5, 5, 0.8),
        (1, 200, 200, 201, 200, 0.7),
        (1, 300, 300, 350, 300, 0.6),
        (1, 400, 400, N, N, 0.0),
    ]
    # 4 positive frames: recall steps of 1/4 at precision 1 (rank 1) and 2/3 (rank 3).
    expected = 0.25 * 1 + 0.25 * (2 / 3)
    for threshold in (0.5, 0.75):  # AP ranks every candidate, so the decode threshold does not change it
        m = score_frames(**table_arrays(rows), source_width=1280, protocol="v2", threshold=threshold)
        assert m.ap == pytest.approx(expected)
    assert average_precision(np.array([0.9, 0.9]), np.array([True, False]), 1) == pytest.approx(0.5)  # ties together
    assert average_precision(np.array([0.9, 0.8]), np.array([False, True]), 1) == pytest.approx(0.5)
    assert average_precision(np.zeros(0), np.zeros(0, dtype=bool), 3) == 0.0


def test_merge_equals_scoring_everything_at_once() -> None:
    whole = score_table("v2")
    first, second = score_table("v2", rows=TABLE[:7]), score_table("v2", rows=TABLE[7:])
    merged = first + second
    assert merged.to_dict() == pytest.approx(whole.to_dict())
    assert Metrics.total([first, second]).to_dict() == pytest.approx(whole.to_dict())
    with pytest.raises(ValueError):
        first.merge(score_table("wasb", rows=TABLE[7:]))


def test_to_dict_is_json_safe() -> None:
    d = score_table("tracknet").to_dict()
    for key in (
        "precision",
        "recall",
        "f1",
        "accuracy",
        "tp",
        "fp1",
        "fp2",
        "fn",
        "tn",
        "ignored",
        "l2_median",
        "rmse",
        "ap",
        "pck@5",
        "recall_vis1",
    ):
        assert key in d
    json.dumps(d, allow_nan=False)
    empty = score_frames(np.full((1, 2), N), [0.0], np.full((1, 2), N), [-1], 1280, "v2", 0.5).to_dict()
    assert empty["l2_median"] is None and empty["f1"] == 0.0 and empty["ignored"] == 1
    json.dumps(empty, allow_nan=False)


def test_unknown_protocol() -> None:
    with pytest.raises(ConfigError, match="protocol 'wsab' is not one of") as err:
        score_table("wsab")
    assert "wasb" in err.value.line()


# ---------------------------------------------------------------- window ensembling
def average_windows(maps: np.ndarray, starts: list[int], num_frames: int) -> np.ndarray:
    """The inference engine's averager over windows starting at ``starts`` (slots past the end are padding)."""
    from tracknet_cli.inference.windows import HeatmapAverager, WindowBatch

    t = maps.shape[1]
    ids = np.array([[min(s + j, num_frames - 1) for j in range(t)] for s in starts])
    valid = np.array([[s + j < num_frames for j in range(t)] for s in starts])
    released = HeatmapAverager().add(WindowBatch(np.zeros(ids.shape), ids, valid, num_frames), maps)
    assert [fid for fid, _ in released] == list(range(num_frames))
    return np.stack([m for _, m in released])


def test_average_windows_counts_each_frame_once() -> None:
    # 3 windows of T=3 starting at 0, 1, 2 over 5 frames; cell value = 10*window + position.
    maps = np.array([[[[10 * w + p]] for p in range(3)] for w in range(3)], dtype=np.float32)  # (3,3,1,1)
    out = average_windows(maps, [0, 1, 2], num_frames=5)
    assert out.shape == (5, 1, 1)
    assert out[:, 0, 0] == pytest.approx([0, (1 + 10) / 2, (2 + 11 + 20) / 3, (12 + 21) / 2, 22])


def test_average_windows_stride_and_padded_tail() -> None:
    maps = np.ones((3, 3, 2, 2), dtype=np.float32) * np.array([1, 2, 4], dtype=np.float32)[:, None, None, None]
    out = average_windows(maps, [0, 2, 4], num_frames=6)  # last window's third frame is padding
    assert out[:, 0, 0] == pytest.approx([1, 1, 1.5, 2, 3, 4])


def test_ensembled_windows_scored_once_per_frame() -> None:
    # 4 frames, windows of T=2 at starts 0,1,2. Ball at cell (x=1, y=0) in frames 1 and 2, none in 0 and 3.
    # Frame 2: window 1 puts the peak on the wrong cell (x=3) at 0.6, window 2 on the right cell at 0.9;
    # averaged, the right cell (0.45 + ...) wins. Scoring is per frame: 4 frames, not 6 window positions.
    hm = np.zeros((3, 2, 1, 4), dtype=np.float32)
    hm[0, 1, 0, 1] = 0.9  # window 0, frame 1: right cell
    hm[1, 0, 0, 1] = 0.8  # window 1, frame 1: right cell
    hm[1, 1, 0, 3] = 0.6  # window 1, frame 2: wrong cell
    hm[2, 0, 0, 1] = 0.9  # window 2, frame 2: right cell
    frames = average_windows(hm, [0, 1, 2], num_frames=4)
    flat = frames.reshape(4, -1)
    peak = flat.argmax(axis=1)
    score = flat.max(axis=1)
    cell = 100.0  # each heatmap cell is 100 source pixels wide: (x + 0.5) * 100
    pred_xy = np.stack([(peak + 0.5) * cell, np.full(4, 50.0)], axis=1)
    gt_xy = np.array([[N, N], [150, 50], [150, 50], [N, N]])
    m = score_frames(pred_xy, score, gt_xy, np.array([0, 1, 1, 0]), 1280, "v2", threshold=0.3)
    assert score == pytest.approx([0.0, 0.85, 0.45, 0.0])
    assert (m.tp, m.fp1, m.fp2, m.fn, m.tn, m.scored) == (2, 0, 0, 0, 2, 4)
