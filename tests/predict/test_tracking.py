"""Online tracking on hand-made detection sequences with hand-computed rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracknet_cli.predict.tracking import (
    BallPoint,
    OnlineTracker,
    TrackingConfig,
    gray_thumbnail,
    scene_difference,
)

CFG = TrackingConfig(threshold=0.5, max_gap=3, max_jump=10.0, confirm=2, reset_gap=6, scene_cut=40.0)
Det = tuple[float, float] | tuple[float, float, float] | None


def run(dets: list[Det], cfg: TrackingConfig = CFG, cuts: dict[int, float] | None = None) -> list[BallPoint]:
    tracker = OnlineTracker(cfg, (640, 360))
    rows: list[BallPoint] = []
    for i, d in enumerate(dets):
        if d is None:
            x, y, s = math.nan, math.nan, 0.0
        else:
            x, y, s = (d[0], d[1], d[2]) if len(d) == 3 else (d[0], d[1], 0.9)
        rows += tracker.push(BallPoint.from_peak(i, x, y, s), (cuts or {}).get(i, 0.0))
    rows += tracker.flush()
    assert [r.frame for r in rows] == list(range(len(dets)))
    return rows


def kinds(rows: list[BallPoint]) -> str:
    """One letter per row: D detection, I interpolated, . nothing."""
    return "".join("I" if r.interpolated else ("D" if r.visible else ".") for r in rows)


def test_threshold_and_no_track_give_raw_detections() -> None:
    cfg = TrackingConfig(threshold=0.5, enabled=False)
    tracker = OnlineTracker(cfg, (100, 100))
    outs = [
        tracker.push(BallPoint.from_peak(i, x, 5.0, s))
        for i, (x, s) in enumerate([(1.0, 0.9), (300.0, 0.4), (2.0, 0.5), (math.nan, 0.99), (400.0, 0.8)])
    ]
    assert all(len(o) == 1 for o in outs)  # no delay at all
    rows = [o[0] for o in outs]
    assert kinds(rows) == "D.D.D"  # 0.4 < threshold, NaN peak; the jump to 400 is kept (no gating)
    assert rows[1] == BallPoint(1, 0.0, 0.0, 0.0, visible=False, interpolated=False)
    assert rows[4].x == 400.0 and rows[4].score == pytest.approx(0.8)
    assert tracker.flush() == []


def test_short_gaps_are_interpolated_long_ones_are_not() -> None:
    dets: list[Det] = [(0, 0), (2, 0), None, (6, 0, 0.2), (8, 0)] + [None] * 5 + [(20, 0)]
    rows = run(dets)
    assert kinds(rows) == "DDIID.....D"
    assert (rows[2].x, rows[2].y, rows[3].x) == (pytest.approx(4.0), 0.0, pytest.approx(6.0))
    assert rows[2].visible and rows[2].score == 0.0  # interpolated rows are visible, never scored
    assert rows[4].score == pytest.approx(0.9)


def test_an_isolated_jump_is_rejected_and_filled() -> None:
    dets: list[Det] = [(2.0 * i, 0) for i in range(10)]
    dets[5] = (100, 100, 0.95)
    rows = run(dets)
    assert kinds(rows) == "DDDDDIDDDD"
    assert rows[5].x == pytest.approx(10.0) and rows[5].y == pytest.approx(0.0)


def test_a_confirmed_jump_switches_the_track_without_bridging_it() -> None:
    dets: list[Det] = [(2.0 * i, 0) for i in range(5)] + [None, None] + [(200.0 + 3 * k, 50) for k in range(4)]
    rows = run(dets)
    # Frames 7, 8, 9: an out-of-gate detection and 2 confirmations; the gap 5-6 is not bridged.
    assert kinds(rows) == "DDDDD..DDDD"
    assert [r.x for r in rows[7:]] == [200.0, 203.0, 206.0, 209.0]


def test_old_track_points_inside_a_confirmed_switch_are_rejected() -> None:
    dets: list[Det] = [(2.0 * i, 0) for i in range(5)]
    dets += [(100, 50), (10, 0), (102, 50), (104, 50), (106, 50)]
    rows = run(dets)
    assert kinds(rows) == "DDDDDDIDDD"
    # Frame 6 (the old track at x=10) lost to the confirmed new track and is filled from it.
    assert (rows[6].x, rows[6].y) == (pytest.approx(101.0), pytest.approx(50.0))


def test_unconfirmed_candidate_at_the_end_is_rejected() -> None:
    rows = run([(0, 0), (1, 0), (2, 0), (300, 300)])
    assert kinds(rows) == "DDD."


def test_long_gap_resets_the_track() -> None:
    dets: list[Det] = [(0, 0), (1, 0), (2, 0)] + [None] * 8 + [(500, 300), (501, 300)]
    rows = run(dets)
    assert kinds(rows) == "DDD" + "." * 8 + "DD"  # accepted at once: no gate after a reset
    # Without the reset the far detection needs confirmation, which a single follower does not give.
    no_reset = TrackingConfig(threshold=0.5, max_gap=3, max_jump=10.0, confirm=2, reset_gap=100)
    assert kinds(run(dets, no_reset)) == "DDD" + "." * 8 + ".."


def test_scene_cut_resets_the_track_and_stops_filling() -> None:
    dets: list[Det] = [(2.0 * i, 0) for i in range(5)] + [None, (300, 300), (302, 300)]
    assert kinds(run(dets, cuts={6: 80.0})) == "DDDDD.DD"
    assert kinds(run(dets, cuts={6: 39.0})) == "DDDDD..."  # below scene_cut: gated, unconfirmed
    # A cut between two close detections still prevents filling the gap between them.
    near: list[Det] = [(0, 0), (1, 0), None, (3, 0)]
    assert kinds(run(near)) == "DDID"
    assert kinds(run(near, cuts={3: 90.0})) == "DD.D"


def test_rows_stream_out_with_bounded_delay() -> None:
    rng = np.random.default_rng(7)
    cfg = CFG
    tracker = OnlineTracker(cfg, (640, 360))
    rows: list[BallPoint] = []
    x = 100.0
    for i in range(2000):
        x += rng.normal(0, 4)
        r = rng.random()
        cut = 0.0
        if r < 0.25:
            peak = BallPoint.from_peak(i, math.nan, math.nan, 0.0)
        elif r < 0.35:
            peak = BallPoint.from_peak(i, float(rng.uniform(0, 640)), float(rng.uniform(0, 360)), 0.9)
        else:
            peak = BallPoint.from_peak(i, x, 50.0, float(rng.uniform(0.3, 1.0)))
            cut = 90.0 if r > 0.995 else 0.0
        rows += tracker.push(peak, cut)
        assert tracker.pending <= cfg.max_delay
    rows += tracker.flush()
    assert [r.frame for r in rows] == list(range(2000))
    text = kinds(rows)
    assert "I" in text and "D" in text
    # Every interpolated run is short and sits between two detections.
    for start in range(len(text)):
        if text[start] == "I" and (start == 0 or text[start - 1] != "I"):
            end = start
            while text[end] == "I":
                end += 1
            assert end - start <= cfg.max_gap and text[start - 1] == "D" and text[end] == "D"


def test_clean_track_is_emitted_without_delay() -> None:
    tracker = OnlineTracker(CFG, (640, 360))
    for i in range(20):
        assert len(tracker.push(BallPoint.from_peak(i, float(i), 10.0, 0.9))) == 1


def test_frames_must_come_in_order() -> None:
    tracker = OnlineTracker(CFG, (640, 360))
    tracker.push(BallPoint.from_peak(3, 1.0, 1.0, 0.9))
    with pytest.raises(ValueError):
        tracker.push(BallPoint.from_peak(5, 1.0, 1.0, 0.9))


def test_default_gate_scales_with_the_frame() -> None:
    cfg = TrackingConfig()
    assert cfg.jump_for((640, 360)) == pytest.approx(0.1 * math.hypot(640, 360))
    assert TrackingConfig(max_jump=25).jump_for((1920, 1080)) == 25.0
    assert cfg.max_delay == (cfg.confirm + 1) * (cfg.max_gap + 1)


def test_scene_difference_on_thumbnails() -> None:
    black = np.zeros((144, 256, 3), np.uint8)
    white = np.full((144, 256, 3), 255, np.uint8)
    tb, tw = gray_thumbnail(black), gray_thumbnail(white)
    assert tb.shape == (18, 32)
    assert scene_difference(None, tb) == 0.0
    assert scene_difference(tb, tb) == 0.0
    assert scene_difference(tb, tw) == pytest.approx(255.0)


def test_settings_are_checked_once_for_every_caller() -> None:
    from tracknet_cli.errors import UsageError

    for kwargs in ({"threshold": -0.1}, {"max_gap": -1}, {"max_jump": 0.0}, {"max_jump": float("nan")}):
        with pytest.raises(UsageError):
            TrackingConfig(**kwargs)
