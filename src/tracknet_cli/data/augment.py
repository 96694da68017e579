"""Training-time augmentation of a window: one draw, applied identically to all T frames.

Works on input-canvas frames (uint8 (T, Hi, Wi, 3)) and input-canvas points ((T, 2), NaN for
none). The geometric part is one `geometry.Affine` used for both pixels (PIL) and points, so a
ball stays under its label; colour jitter is a fixed per-pixel function of the whole window.
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
    """One draw: the geometric mapping and the colour factors (1.0 = unchanged)."""

    affine: Affine = Affine()
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0

    @property
    def changes_colour(self) -> bool:
        return (self.brightness, self.contrast, self.saturation) != (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Augmented:
    frames: np.ndarray  # uint8 (T, Hi, Wi, 3)
    xy: np.ndarray  # float (T, 2) input-canvas pixels, NaN where none or moved off the canvas
    outside: np.ndarray  # bool (T,): had a point, the transform moved it off the canvas


def sample_params(config: AugmentConfig, size: Size, rng: np.random.Generator) -> AugmentParams:
    """Draw one augmentation for a canvas of `size` (Wi, Hi). Always consumes the same randoms."""
    w, h = size
    u = rng.random(7)
    affine = Affine.identity()
    if config.scale > 0 or config.translate > 0:
        zoom = 1.0 / (1.0 - config.scale * u[0])
        shift_x = (2 * u[1] - 1) * config.translate * w
        shift_y = (2 * u[2] - 1) * config.translate * h
        if zoom != 1.0 or shift_x or shift_y:
            affine = Affine.zoom_crop(size, (w / 2 + shift_x, h / 2 + shift_y), zoom)
    if u[3] < config.hflip:
        affine = affine.then(Affine.hflip(w))
    j = config.color_jitter
    return AugmentParams(
        affine=affine,
        brightness=1.0 + j * (2 * u[4] - 1),
        contrast=1.0 + j * (2 * u[5] - 1),
        saturation=1.0 + j * (2 * u[6] - 1),
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


def _warp(frames: np.ndarray, affine: Affine) -> np.ndarray:
    if affine.is_identity:
        return frames
    if affine.is_hflip_only and affine.matrix[2] == frames.shape[2]:
        return np.ascontiguousarray(frames[:, :, ::-1])
    h, w = frames.shape[1:3]
    data = affine.pil_data()
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        image = Image.fromarray(frame).transform((w, h), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
        out[t] = np.asarray(image)
    return out


def _jitter(frames: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Brightness, then contrast about the window's mean grey, then saturation about each pixel's grey."""
    x = frames.astype(np.float32)
    x *= params.brightness
    if params.contrast != 1.0:
        mean = float((x @ _LUMA).mean())
        x = (x - mean) * params.contrast + mean
    if params.saturation != 1.0:
        grey = (x @ _LUMA)[..., None]
        x = (x - grey) * params.saturation + grey
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)
