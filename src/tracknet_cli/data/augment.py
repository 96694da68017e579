"""Training-time augmentation of a window: one draw, applied identically to all T frames.

Works on input-canvas frames (uint8 (T, Hi, Wi, 3)) and input-canvas points ((T, 2), NaN for
none). The geometric part is one `geometry.Affine` used for both pixels (PIL) and points, so a
ball stays under its label; colour jitter and hue are a fixed per-pixel function of the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tracknet_cli.config.schema import AugmentConfig
from tracknet_cli.data.geometry import Affine, Size

_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class AugmentParams:
    """One draw: the geometric mapping, the colour factors (1.0 = unchanged) and a hue rotation."""

    affine: Affine = Affine()
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue_degrees: float = 0.0

    @property
    def changes_colour(self) -> bool:
        return (self.brightness, self.contrast, self.saturation, self.hue_degrees) != (1.0, 1.0, 1.0, 0.0)


@dataclass(frozen=True)
class Augmented:
    frames: np.ndarray  # uint8 (T, Hi, Wi, 3)
    xy: np.ndarray  # float (T, 2) input-canvas pixels, NaN where none or moved off the canvas
    outside: np.ndarray  # bool (T,): had a point, the transform moved it off the canvas


def sample_params(config: AugmentConfig, size: Size, rng: np.random.Generator) -> AugmentParams:
    """Draw one augmentation for a canvas of `size` (Wi, Hi). Always consumes the same randoms.

    Zoom: in by up to `scale`, or (with `zoom_out`; half the draws when both are set) out by up to
    `zoom_out`, the shrunken frame centred on a black canvas. A hue rotation draws one more random,
    only when `hue` is set, so runs without it repeat exactly.
    """
    w, h = size
    u = rng.random(8)  # the first 7 as before zoom_out existed, so older runs repeat exactly
    affine = Affine.identity()
    if config.scale > 0 or config.translate > 0 or config.zoom_out > 0:
        zoom = 1.0 / (1.0 - config.scale * u[0])
        if config.zoom_out > 0 and (config.scale == 0 or u[7] < 0.5):
            zoom = 1.0 - config.zoom_out * u[0]
        shift_x = (2 * u[1] - 1) * config.translate * w
        shift_y = (2 * u[2] - 1) * config.translate * h
        if zoom != 1.0 or shift_x or shift_y:
            affine = Affine.zoom_crop(size, (w / 2 + shift_x, h / 2 + shift_y), zoom)
    if u[3] < config.hflip:
        affine = affine.then(Affine.hflip(w))
    j = config.color_jitter
    hue = 180.0 * config.hue * (2 * rng.random() - 1) if config.hue > 0 else 0.0
    return AugmentParams(
        affine=affine,
        brightness=1.0 + j * (2 * u[4] - 1),
        contrast=1.0 + j * (2 * u[5] - 1),
        saturation=1.0 + j * (2 * u[6] - 1),
        hue_degrees=hue,
    )


def apply(frames: np.ndarray, xy: np.ndarray, params: AugmentParams) -> Augmented:
    """Apply one draw to a window of frames and their points."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    xy = np.asarray(xy, dtype=np.float64).reshape(frames.shape[0], 2)
    h, w = frames.shape[1:3]
    out = _warp(frames, params.affine)
    if params.changes_colour:
        out = _jitter(out, params)
    moved = params.affine.apply(xy)
    had = np.isfinite(xy).all(axis=1)
    inside = (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
    outside = had & ~inside
    moved[~(had & inside)] = np.nan
    return Augmented(frames=out, xy=moved, outside=outside)


def augment_window(frames: np.ndarray, xy: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> Augmented:
    """Draw once and apply to the whole window."""
    size = (frames.shape[2], frames.shape[1])
    return apply(frames, xy, sample_params(config, size, rng))


def _warp(frames: np.ndarray, affine: Affine, size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames resampled through `affine` onto a (W, H) canvas (default: their own size).

    Whole-pixel shifts, with or without a flip, are exact numpy slices; anything else is PIL bilinear."""
    h, w = frames.shape[1:3]
    ow, oh = size or (w, h)
    a, b, c, d, e, f = affine.matrix
    if b == 0.0 and d == 0.0 and e == 1.0 and a in (1.0, -1.0) and float(c).is_integer() and float(f).is_integer():
        y0 = -int(f)
        x0 = -int(c) if a == 1.0 else int(c) - ow  # x' = c - x: output columns 0..ow-1 read c-1 .. c-ow
        if 0 <= y0 and y0 + oh <= h and 0 <= x0 and x0 + ow <= w:
            region = frames[:, y0 : y0 + oh, x0 : x0 + ow]
            return np.ascontiguousarray(region if a == 1.0 else region[:, :, ::-1])
    # Only the source pixels the output can sample (its corners mapped back, plus the bilinear
    # neighbours) go to PIL: a small crop of a large frame costs what the crop costs.
    corners = affine.inverse().apply(np.array([[0.0, 0.0], [ow, 0.0], [0.0, oh], [ow, oh]]))
    x_lo, y_lo = (max(int(np.floor(v)) - 2, 0) for v in corners.min(axis=0))
    x_hi, y_hi = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
    if x_lo >= x_hi or y_lo >= y_hi:  # the output lies wholly off the frame
        return np.zeros((frames.shape[0], oh, ow, 3), dtype=frames.dtype)
    region = frames[:, y_lo:y_hi, x_lo:x_hi]
    data = Affine((1.0, 0.0, float(x_lo), 0.0, 1.0, float(y_lo))).then(affine).pil_data()  # region -> output
    out = np.empty((frames.shape[0], oh, ow, 3), dtype=frames.dtype)
    for t, frame in enumerate(region):
        image = Image.fromarray(np.ascontiguousarray(frame)).transform(
            (ow, oh), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=(0, 0, 0)
        )
        out[t] = np.asarray(image)
    return out


def _jitter(frames: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Hue, brightness, then contrast about the window's mean grey, then saturation about each pixel's grey."""
    x = frames.astype(np.float32)
    if params.hue_degrees:
        x = np.stack([_mix(x, row) for row in _hue_rotation(params.hue_degrees)], axis=-1)
    x *= params.brightness
    if params.contrast != 1.0:
        mean = float(_grey(x).mean())
        x = (x - mean) * params.contrast + mean
    if params.saturation != 1.0:
        grey = _grey(x)[..., None]
        x = (x - grey) * params.saturation + grey
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _hue_rotation(degrees: float) -> np.ndarray:
    """The 3x3 RGB matrix turning colours by `degrees` about the grey axis (1, 1, 1): greys, the white
    of a ball or shuttle among them, are fixed points; red goes to green at 120° and to blue at 240°."""
    a = np.deg2rad(degrees)
    cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / np.sqrt(3.0)
    m = np.cos(a) * np.eye(3) + (1.0 - np.cos(a)) / 3.0 * np.ones((3, 3)) + np.sin(a) * cross
    return m.astype(np.float32)


def _grey(x: np.ndarray) -> np.ndarray:
    return _mix(x, _LUMA)


def _mix(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One channel as a weighted sum of the three: three multiply-adds, since numpy's matmul with an
    inner size of 3 is several times slower."""
    return x[..., 0] * weights[0] + x[..., 1] * weights[1] + x[..., 2] * weights[2]


def augment_crop_window(
    frames: np.ndarray,
    xy: np.ndarray,
    state: np.ndarray,
    config: AugmentConfig,
    crop: tuple[int, int],
    cell: tuple[int, int],
    margin: float,
    rng: np.random.Generator,
) -> tuple[Augmented, np.ndarray, tuple[int, int]]:
    """One draw of `augment_window`, then a `crop` (width, height) window of it, computed directly.

    The crop is placed on the augmented canvas: with probability `crop_ball` so that it contains the
    labelled ball of one frame of the window (uniformly, `margin` px inside its border), otherwise
    anywhere. Its corner is a multiple of `cell` (input pixels per heatmap cell), so the crop's cells
    are the canvas's cells. Only the crop's pixels are resampled and jittered (several times cheaper
    than augmenting the whole frame and cutting it afterwards). A ball outside the crop is "no ball"
    there (state 0) unless it lies within `margin` px of the border, where its Gaussian would be cut
    (masked, -1); a ball the zoom moved off the canvas is masked as in `apply`.
    Returns (frames and xy in crop pixels, the new state, the crop's corner on the canvas).
    """
    t, h, w = frames.shape[:3]
    cw, ch = int(crop[0]), int(crop[1])
    params = sample_params(config, (w, h), rng)
    xy = np.asarray(xy, dtype=np.float64).reshape(t, 2)
    moved = params.affine.apply(xy)
    had = np.isfinite(xy).all(axis=1)
    with np.errstate(invalid="ignore"):
        on_canvas = (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
    state = np.where(had & ~on_canvas, np.int8(-1), state).astype(np.int8)
    u = rng.random(4)
    balls = np.flatnonzero((state == 1) & had & on_canvas)
    if balls.size and u[0] < config.crop_ball:
        bx, by = moved[balls[min(int(u[1] * balls.size), balls.size - 1)]]
        lo_x, hi_x, lo_y, hi_y = bx - cw + margin, bx - margin, by - ch + margin, by - margin
    else:
        lo_x, hi_x, lo_y, hi_y = 0.0, float(w - cw), 0.0, float(h - ch)
    x0 = _aligned(lo_x + u[2] * max(hi_x - lo_x, 0.0), w - cw, cell[0])
    y0 = _aligned(lo_y + u[3] * max(hi_y - lo_y, 0.0), h - ch, cell[1])
    to_crop = params.affine.then(Affine((1.0, 0.0, -float(x0), 0.0, 1.0, -float(y0))))
    out = _warp(frames, to_crop, (cw, ch))
    if params.changes_colour:
        out = _jitter(out, params)
    crop_xy = moved - np.asarray([x0, y0], dtype=np.float64)
    ball = had & on_canvas & (state == 1)
    with np.errstate(invalid="ignore"):
        x, y = crop_xy[:, 0], crop_xy[:, 1]
        inside = (x >= 0) & (x < cw) & (y >= 0) & (y < ch)
        near = (x >= -margin) & (x < cw + margin) & (y >= -margin) & (y < ch + margin)
    state[ball & ~inside & ~near] = 0
    state[ball & ~inside & near] = -1
    crop_xy[~(ball & inside)] = np.nan
    return Augmented(frames=out, xy=crop_xy, outside=had & ~on_canvas), state, (x0, y0)


def _aligned(offset: float, largest: int, step: int) -> int:
    """An offset in [0, largest], rounded down to a multiple of `step`."""
    return int(min(max(int(np.floor(offset)) // step * step, 0), largest // step * step))
