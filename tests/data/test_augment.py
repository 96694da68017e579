"""Augmentation keeps the ball under its label and treats every frame of a window alike."""

from __future__ import annotations

from dataclasses import replace

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


def test_hue_turns_colours_about_the_grey_axis_and_keeps_white_and_grey() -> None:
    window = np.zeros((T, 2, 3, 3), np.uint8)
    window[:, 0, 0] = (200, 0, 0)  # red
    window[:, 0, 1] = (255, 255, 255)  # a white shuttle
    window[:, 0, 2] = (90, 90, 90)
    window[:, 1, 0] = (0, 0, 200)  # blue
    none = np.full((T, 2), np.nan)
    turned = apply(window, none, AugmentParams(hue_degrees=120.0)).frames
    assert turned[0, 0, 0].tolist() == [0, 200, 0]  # red -> green
    assert turned[0, 1, 0].tolist() == [200, 0, 0]  # blue -> red
    assert turned[0, 0, 1].tolist() == [255, 255, 255] and turned[0, 0, 2].tolist() == [90, 90, 90]
    assert all(np.array_equal(turned[0], f) for f in turned)
    assert apply(window, none, AugmentParams(hue_degrees=240.0)).frames[0, 0, 0].tolist() == [0, 0, 200]


def test_hue_draws_within_its_range_and_leaves_the_other_draws_as_they_were() -> None:
    plain = AugmentConfig(hflip=0.5, scale=0.2, color_jitter=0.2)
    hued = plain.model_copy(update={"hue": 0.5})
    a = [sample_params(plain, (W, H), rng) for rng in [np.random.default_rng(5)] for _ in range(50)]
    b = [sample_params(hued, (W, H), rng) for rng in [np.random.default_rng(5)] for _ in range(50)]
    assert all(p.hue_degrees == 0.0 for p in a)
    assert a[0] == replace(b[0], hue_degrees=0.0)  # the first draw's other randoms are unchanged
    degrees = [p.hue_degrees for p in b]
    assert max(abs(d) for d in degrees) <= 90.0 and min(degrees) < -30 < 30 < max(degrees)


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


# ---------------------------------------------------------------- crops
def _blobs(points: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Like `_dots` with 3x3 white blobs (a zoomed-out 1-px dot fades below the background)."""
    frames, xy = _dots(points)
    for t, (i, j) in enumerate(points):
        frames[t, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2] = 255
    return frames, xy


def _crop_config(**kw) -> AugmentConfig:
    kw.setdefault("hflip", 0.0)
    return AugmentConfig(crop_width=kw.pop("w", 48), crop_height=kw.pop("h", 32), **kw)


def test_a_crop_around_the_ball_keeps_the_ball_under_its_label_on_a_heatmap_cell_grid() -> None:
    from tracknet_cli.data.augment import augment_crop_window

    frames, xy = _dots(POINTS)
    state = np.ones(T, np.int8)
    rng = np.random.default_rng(3)
    for _ in range(30):
        aug, new_state, (x0, y0) = augment_crop_window(
            frames, xy, state, _crop_config(crop_ball=1.0), (48, 32), (2, 2), 2.0, rng
        )
        out, moved = aug.frames, aug.xy
        assert out.shape == (T, 32, 48, 3)
        assert x0 % 2 == 0 and y0 % 2 == 0 and 0 <= x0 <= W - 48 and 0 <= y0 <= H - 32
        np.testing.assert_array_equal(out, frames[:, y0 : y0 + 32, x0 : x0 + 48])
        inside = new_state == 1
        assert inside.any()  # the crop holds the ball of at least the frame it was placed on
        for t in np.flatnonzero(inside):
            i, j = int(moved[t, 0]), int(moved[t, 1])
            assert out[t, j, i].min() == 255  # the dot is where the moved label says
        # a ball outside the crop is 'no ball' there (0), or masked (-1) when its Gaussian is cut
        assert set(new_state[~inside].tolist()) <= {0, -1}
        assert np.isnan(moved[~inside]).all()


def test_background_crops_land_anywhere_and_a_far_ball_is_no_ball() -> None:
    from tracknet_cli.data.augment import augment_crop_window

    frames, xy = _dots([(5, 5)] * T)
    state = np.ones(T, np.int8)
    rng = np.random.default_rng(0)
    corners = set()
    for _ in range(40):
        aug, new_state, corner = augment_crop_window(
            frames, xy, state, _crop_config(crop_ball=0.0), (48, 32), (1, 1), 2.0, rng
        )
        moved = aug.xy
        corners.add(corner)
        if corner[0] > 10 or corner[1] > 10:
            assert (new_state == 0).all() and np.isnan(moved).all()
    assert len(corners) > 20


def test_crop_settings_are_checked_against_the_canvas() -> None:
    from pydantic import ValidationError

    from tracknet_cli.config.schema import DataConfig

    with pytest.raises(ValidationError, match="both crop_width and crop_height"):
        AugmentConfig(crop_width=64)
    # a crop as large as the input is no crop (a quick run that lowers input_width keeps working)
    assert (
        DataConfig(
            input_width=64,
            input_height=32,
            heatmap_width=64,
            heatmap_height=32,
            augment={"crop_width": 96, "crop_height": 32},
        ).crop_size()
        is None
    )
    assert DataConfig(
        input_width=64,
        input_height=64,
        heatmap_width=64,
        heatmap_height=64,
        augment={"crop_width": 96, "crop_height": 32},
    ).crop_size() == (64, 32)
    with pytest.raises(ValidationError, match="multiple of input_width / heatmap_width"):
        DataConfig(
            input_width=256,
            input_height=144,
            heatmap_width=128,
            heatmap_height=72,
            augment={"crop_width": 63, "crop_height": 32},
        )
    DataConfig(
        input_width=256,
        input_height=144,
        heatmap_width=128,
        heatmap_height=72,
        augment={"crop_width": 64, "crop_height": 32},
    )


def test_zoom_out_shrinks_the_frame_and_keeps_the_ball_under_its_label() -> None:
    cfg = AugmentConfig(hflip=0.0, zoom_out=0.5)
    rng = np.random.default_rng(1)
    zooms = []
    for _ in range(20):
        params = sample_params(cfg, (W, H), rng)
        zooms.append(params.affine.matrix[0])
        frames, xy = _blobs(POINTS)
        out = apply(frames, xy, params)
        assert not out.outside.any()
        # a shrunken one-pixel dot spreads over neighbours: the brightest pixel is within a pixel
        assert (np.abs(_brightest(out.frames) - out.xy).max(axis=1) <= 1.01).all()
    assert min(zooms) < 0.7 and max(zooms) <= 1.0


@pytest.mark.parametrize("cfg", [dict(hflip=1.0), dict(hflip=0.5, scale=0.3, zoom_out=0.5, color_jitter=0.0)])
def test_a_crop_of_a_flipped_or_zoomed_window_keeps_the_ball_under_its_label(cfg: dict) -> None:
    from tracknet_cli.data.augment import augment_crop_window

    rng = np.random.default_rng(7)
    for _ in range(25):
        frames, xy = _blobs(POINTS)
        aug, new_state, _ = augment_crop_window(
            frames, xy, np.ones(T, np.int8), _crop_config(crop_ball=1.0, **cfg), (48, 32), (1, 1), 2.0, rng
        )
        for t in np.flatnonzero(new_state == 1):
            grey = aug.frames[t].astype(np.float64).sum(axis=-1)
            weight = np.clip(grey - 300.0, 0.0, None)  # the blob only, not the dim background
            jj, ii = np.indices(grey.shape)
            centre = np.array([(weight * (ii + 0.5)).sum(), (weight * (jj + 0.5)).sum()]) / weight.sum()
            assert np.abs(centre - aug.xy[t]).max() <= 0.5, (centre, aug.xy[t])
