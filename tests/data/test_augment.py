"""Augmentation keeps the ball under its label and treats every frame of a window alike."""

from __future__ import annotations

import numpy as np
import pytest

from tracknet_cli.config.schema import AugmentConfig
from tracknet_cli.data.augment import AugmentParams, apply, augment_window, sample_params
from tracknet_cli.data.geometry import Affine

W, H, T = 160, 96, 3


def _dots(points: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """One bright 1-pixel dot per frame on a dim textured background; labels at the pixel centres."""
    rng = np.random.default_rng(5)
    frames = np.repeat(rng.integers(20, 60, (1, H, W, 3), dtype=np.uint8), len(points), axis=0)
    for t, (i, j) in enumerate(points):
        frames[t, j, i] = 255
    xy = np.array([[i + 0.5, j + 0.5] for i, j in points], dtype=np.float64)
    return frames, xy


def _brightest(frames: np.ndarray) -> np.ndarray:
    grey = frames.astype(np.int32).sum(axis=-1).reshape(len(frames), -1)
    j, i = np.divmod(grey.argmax(axis=1), W)
    return np.stack([i + 0.5, j + 0.5], axis=-1)


POINTS = [(40, 30), (80, 50), (101, 62)]
TRANSFORMS = {
    "hflip": Affine.hflip(W),
    "zoom": Affine.zoom_crop((W, H), (W / 2, H / 2), 1.6),
    "zoom+shift": Affine.zoom_crop((W, H), (W / 2 + 12.3, H / 2 - 7.7), 1.3),
    "shift": Affine.zoom_crop((W, H), (W / 2 - 9.0, H / 2 + 5.0), 1.0),
    "zoom+shift+flip": Affine.zoom_crop((W, H), (W / 2 + 4.2, H / 2 + 3.1), 1.25).then(Affine.hflip(W)),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_the_ball_pixel_stays_under_its_label(name: str) -> None:
    # Within half a pixel per axis (stricter than 1 px): a half-pixel convention slip would fail.
    frames, xy = _dots(POINTS)
    out = apply(frames, xy, AugmentParams(affine=TRANSFORMS[name]))
    assert out.frames.shape == frames.shape and out.frames.dtype == np.uint8
    assert not out.outside.any()
    dist = np.abs(_brightest(out.frames) - out.xy).max(axis=1)
    assert (dist <= 0.51).all(), (name, _brightest(out.frames), out.xy)


def test_sampled_draws_keep_the_ball_under_its_label_and_are_the_same_for_every_frame() -> None:
    cfg = AugmentConfig(hflip=0.5, scale=0.3, translate=0.1, color_jitter=0.3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        frames, xy = _dots(POINTS)
        params = sample_params(cfg, (W, H), rng)
        out = apply(frames, xy, params)
        visible = ~out.outside
        dist = np.abs(_brightest(out.frames) - out.xy)[visible].max(axis=1, initial=0.0)
        assert (dist <= 0.51).all()
        # Same transform for all frames: an identical window in gives identical frames out.
        same = apply(np.repeat(frames[:1], T, axis=0), np.repeat(xy[:1], T, axis=0), params)
        assert all(np.array_equal(same.frames[0], f) for f in same.frames[1:])
        if visible[0]:
            np.testing.assert_allclose(same.xy, np.repeat(out.xy[:1], T, axis=0))


def test_flip_is_exact_and_undone_by_a_second_flip() -> None:
    frames, xy = _dots(POINTS)
    once = apply(frames, xy, AugmentParams(affine=Affine.hflip(W)))
    assert np.array_equal(once.frames, frames[:, :, ::-1])
    np.testing.assert_allclose(once.xy[0], [W - 40 - 0.5, 30.5])
    twice = apply(once.frames, once.xy, AugmentParams(affine=Affine.hflip(W)))
    assert np.array_equal(twice.frames, frames)
    np.testing.assert_allclose(twice.xy, xy)


def test_a_ball_pushed_off_the_canvas_becomes_nan_and_is_flagged() -> None:
    frames, xy = _dots([(5, 5), (80, 48), (80, 48)])
    xy[2] = np.nan  # no ball in the last frame: stays NaN, not flagged
    out = apply(frames, xy, AugmentParams(affine=Affine.zoom_crop((W, H), (W / 2, H / 2), 2.0)))
    assert out.outside.tolist() == [True, False, False]
    assert np.isnan(out.xy[0]).all() and np.isfinite(out.xy[1]).all() and np.isnan(out.xy[2]).all()


def test_colour_jitter_changes_colours_only_and_identically() -> None:
    frames, xy = _dots([(40, 30)] * T)
    out = apply(frames, xy, AugmentParams(brightness=1.2, contrast=0.8, saturation=1.3))
    assert not np.array_equal(out.frames, frames)
    assert all(np.array_equal(out.frames[0], f) for f in out.frames)
    np.testing.assert_allclose(out.xy, xy)
    np.testing.assert_allclose(_brightest(out.frames), xy)
    # Brightness alone is a plain scaling: 50 * 1.2 = 60.
    flat = np.full((1, 4, 4, 3), 50, np.uint8)
    assert apply(flat, np.full((1, 2), np.nan), AugmentParams(brightness=1.2)).frames.max() == 60


def test_disabled_config_is_the_identity() -> None:
    frames, xy = _dots(POINTS)
    cfg = AugmentConfig(hflip=0.0, scale=0.0, translate=0.0, color_jitter=0.0)
    out = augment_window(frames, xy, cfg, np.random.default_rng(3))
    assert np.array_equal(out.frames, frames)
    np.testing.assert_allclose(out.xy, xy)


def test_draws_are_reproducible_for_a_seed() -> None:
    cfg = AugmentConfig(hflip=0.5, scale=0.2, translate=0.1, color_jitter=0.2)
    a = [sample_params(cfg, (W, H), np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    draws = [sample_params(cfg, (W, H), rng) for rng in [np.random.default_rng(8)] for _ in range(40)]
    flips = sum(p.affine.matrix[0] < 0 for p in draws)
    assert 8 <= flips <= 32  # about half
