"""The one place where coordinates change frame of reference.

Three frames of reference, all continuous pixel coordinates with the origin at the top-left
*corner* of the top-left pixel: pixel (i, j) covers [i, i+1) x [j, j+1) and its centre is
(i + 0.5, j + 0.5). The same holds for heatmap cells.

- source: the original video frame or image, size (W, H);
- input: the model input canvas (Wi, Hi); the source is resized keeping its aspect ratio to
  `resized_size` and placed at the top-left, the right/bottom remainder is black padding;
- heatmap: (Wh, Hh) cells covering the whole input canvas (padding included).

`Affine` maps input-canvas coordinates to input-canvas coordinates for augmentation; its pixel
counterpart (`Affine.pil_data`) drives PIL so that points and pixels share one mapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tracknet_cli.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tracknet_cli.config.schema import DataConfig

Size = tuple[int, int]


def _scale_points(xy: Any, sx: float, sy: float) -> Any:
    """Scale (..., 2) points (numpy or torch, float32 kept, anything else float64); NaN stays NaN."""
    if _is_torch(xy):
        xy = xy if xy.is_floating_point() else xy.double()
        return xy * xy.new_tensor([sx, sy])
    xy = np.asarray(xy)
    if xy.dtype != np.float32:
        xy = xy.astype(np.float64)
    return xy * np.asarray([sx, sy], dtype=xy.dtype)


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


@dataclass(frozen=True)
class Codec:
    """Source pixels <-> input-canvas pixels <-> heatmap cells, Gaussian targets and their decoding.

    `sigma` is the Gaussian's standard deviation in heatmap cells. `refine_radius` (cells) is the
    half-width of the soft-argmax window; by default ceil(2.5 sigma), where the window's
    truncation bias stays below 0.03 cells for an exact Gaussian.
    """

    source_size: Size
    input_size: Size
    heatmap_size: Size
    sigma: float = 1.5
    refine_radius: int | None = None

    def __post_init__(self) -> None:
        w, h = self.source_size
        if w <= 0 or h <= 0:
            raise InputError(f"source frames have size {w}x{h}; a frame must be at least 1x1 pixel")
        for name, (a, b) in (("input", self.input_size), ("heatmap", self.heatmap_size)):
            if a <= 0 or b <= 0:
                raise ConfigError(f"{name} size {a}x{b} must be positive")
        if not self.sigma > 0:
            raise ConfigError(f"sigma {self.sigma} must be positive (heatmap cells)")
        if self.refine_radius is not None and self.refine_radius < 0:
            raise ConfigError(f"refine_radius {self.refine_radius} must be >= 0")
        object.__setattr__(self, "source_size", (int(w), int(h)))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "heatmap_size", tuple(int(v) for v in self.heatmap_size))

    @classmethod
    def from_config(cls, data: "DataConfig", source_size: Size) -> "Codec":
        return cls(
            source_size=source_size,
            input_size=(data.input_width, data.input_height),
            heatmap_size=(data.heatmap_width, data.heatmap_height),
            sigma=data.sigma,
        )

    # ------------------------------------------------------------ sizes
    @property
    def resized_size(self) -> Size:
        """(w, h) of the source inside the input canvas: aspect kept, fits the canvas, at least 1 px."""
        w, h = self.source_size
        wi, hi = self.input_size
        scale = min(wi / w, hi / h)
        return (min(wi, max(1, round(w * scale))), min(hi, max(1, round(h * scale))))

    @property
    def _input_per_source(self) -> tuple[float, float]:
        # Per-axis factors from the integer resized size, so the mapping matches the pixels exactly.
        rw, rh = self.resized_size
        return rw / self.source_size[0], rh / self.source_size[1]

    @property
    def _heatmap_per_input(self) -> tuple[float, float]:
        return self.heatmap_size[0] / self.input_size[0], self.heatmap_size[1] / self.input_size[1]

    @property
    def radius(self) -> int:
        return self.refine_radius if self.refine_radius is not None else max(1, math.ceil(2.5 * self.sigma))

    # ------------------------------------------------------------ points
    def source_to_input(self, xy: Any) -> Any:
        sx, sy = self._input_per_source
        return _scale_points(xy, sx, sy)

    def input_to_source(self, xy: Any) -> Any:
        sx, sy = self._input_per_source
        return _scale_points(xy, 1.0 / sx, 1.0 / sy)

    def input_to_heatmap(self, xy: Any) -> Any:
        hx, hy = self._heatmap_per_input
        return _scale_points(xy, hx, hy)

    def source_to_heatmap(self, xy: Any) -> Any:
        (sx, sy), (hx, hy) = self._input_per_source, self._heatmap_per_input
        return _scale_points(xy, sx * hx, sy * hy)

    def heatmap_to_source(self, xy: Any) -> Any:
        (sx, sy), (hx, hy) = self._input_per_source, self._heatmap_per_input
        return _scale_points(xy, 1.0 / (sx * hx), 1.0 / (sy * hy))

    # ------------------------------------------------------------ pixels
    def resize_frame(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> uint8 (Hi, Wi, 3) input canvas.

        Accepts a source frame, a frame already decoded at a reduced size with the same aspect
        (JPEG draft, PyAV reformat to `resized_size`), or a frame that is already the canvas.
        """
        from PIL import Image

        if frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"expected an RGB frame of shape (H, W, 3), got {tuple(frame.shape)}")
        wi, hi = self.input_size
        rw, rh = self.resized_size
        h, w = frame.shape[:2]
        if (w, h) == (wi, hi) and ((rw, rh) == (wi, hi) or (w, h) != self.source_size):
            return np.ascontiguousarray(frame, dtype=np.uint8)
        if (w, h) != (rw, rh):
            sw, sh = self.source_size
            if abs(w / h - sw / sh) > 0.02 * (sw / sh) + 2.0 / min(h, w):
                raise InputError(
                    f"a frame of {w}x{h} does not match the clip's {sw}x{sh} aspect; "
                    "check the clip's frames are all one size"
                )
            frame = np.asarray(
                Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).resize((rw, rh), Image.BILINEAR)
            )
        if (rw, rh) == (wi, hi):
            return np.ascontiguousarray(frame, dtype=np.uint8)
        canvas = np.zeros((hi, wi, 3), dtype=np.uint8)
        canvas[:rh, :rw] = frame
        return canvas

    # ------------------------------------------------------------ targets
    def encode(self, xy_source: np.ndarray) -> np.ndarray:
        """(N, 2) source points -> float32 (N, Hh, Wh) Gaussians worth 1.0 at the exact point.

        The largest cell is 1.0 only when the point sits on a cell centre; NaN rows give zeros.
        """
        xy = self.source_to_heatmap(np.asarray(xy_source, dtype=np.float64).reshape(-1, 2))
        return self.encode_heatmap(xy)

    def encode_heatmap(self, xy_heatmap: np.ndarray) -> np.ndarray:
        """Like `encode` for points already in heatmap cells (e.g. after augmentation)."""
        xy = np.asarray(xy_heatmap, dtype=np.float64).reshape(-1, 2)
        wh, hh = self.heatmap_size
        valid = np.isfinite(xy).all(axis=1)
        xy = np.where(valid[:, None], xy, 0.0)
        two_var = 2.0 * self.sigma**2
        gx = np.exp(-(((np.arange(wh) + 0.5)[None, :] - xy[:, :1]) ** 2) / two_var)
        gy = np.exp(-(((np.arange(hh) + 0.5)[None, :] - xy[:, 1:]) ** 2) / two_var)
        gx[~valid] = 0.0
        return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)

    def decode(self, probabilities: Any) -> tuple[Any, Any]:
        """(..., Hh, Wh) probabilities (numpy or torch) -> (xy_source (..., 2), score (...)).

        Peak cell, then the probability-weighted mean of cell centres in a window around it
        (soft-argmax). Near the canvas edge the window shrinks symmetrically per axis, so the
        estimate falls back towards the peak cell's centre (at most half a cell off) instead of
        being pulled inwards. Returns the input's kind (torch stays on its device).
        """
        if _is_torch(probabilities):
            xy, score = self._decode_torch(probabilities)
        else:
            xy, score = self._decode_numpy(np.asarray(probabilities))
        return self.heatmap_to_source(xy), score

    def _window(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        hh, wh = shape[-2:]
        if (wh, hh) != self.heatmap_size:
            raise InputError(
                f"heatmaps are {wh}x{hh} but the codec expects {self.heatmap_size[0]}x{self.heatmap_size[1]}"
            )
        return hh, wh, self.radius

    def _decode_numpy(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hh, wh, r = self._window(probs.shape)
        lead = probs.shape[:-2]
        flat = probs.reshape(-1, hh * wh).astype(np.float32, copy=False)
        if flat.shape[0] == 0:
            return np.zeros((*lead, 2), np.float32), np.zeros(lead, np.float32)
        peak = flat.argmax(axis=1)
        score = np.take_along_axis(flat, peak[:, None], axis=1)[:, 0]
        py, px = peak // wh, peak % wh
        k = np.arange(-r, r + 1)
        rx = np.minimum(r, np.minimum(px, wh - 1 - px))
        ry = np.minimum(r, np.minimum(py, hh - 1 - py))
        cols = px[:, None] + k[None, :]  # (N, K)
        rows = py[:, None] + k[None, :]
        use = (np.abs(k)[None, None, :] <= rx[:, None, None]) & (np.abs(k)[None, :, None] <= ry[:, None, None])
        index = np.clip(rows, 0, hh - 1)[:, :, None] * wh + np.clip(cols, 0, wh - 1)[:, None, :]
        w = np.take_along_axis(flat, index.reshape(len(flat), -1), axis=1).reshape(index.shape)
        w = np.where(use, np.maximum(w, 0.0), 0.0)
        total = w.sum(axis=(1, 2))
        safe = np.where(total > 0, total, 1.0)
        x = np.where(total > 0, (w.sum(axis=1) * (cols + 0.5)).sum(axis=1) / safe, px + 0.5)
        y = np.where(total > 0, (w.sum(axis=2) * (rows + 0.5)).sum(axis=1) / safe, py + 0.5)
        xy = np.stack([x, y], axis=-1).astype(np.float32)
        return xy.reshape(*lead, 2), score.reshape(lead)

    def _decode_torch(self, probs: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        import torch

        hh, wh, r = self._window(tuple(probs.shape))
        lead = tuple(probs.shape[:-2])
        flat = probs.detach().reshape(-1, hh * wh).float()
        if flat.shape[0] == 0:
            return flat.new_zeros((*lead, 2)), flat.new_zeros(lead)
        score, peak = flat.max(dim=1)
        py, px = peak // wh, peak % wh
        k = torch.arange(-r, r + 1, device=flat.device)
        rx = torch.minimum(torch.minimum(px, wh - 1 - px), torch.full_like(px, r))
        ry = torch.minimum(torch.minimum(py, hh - 1 - py), torch.full_like(py, r))
        cols = px[:, None] + k[None, :]
        rows = py[:, None] + k[None, :]
        use = (k.abs()[None, None, :] <= rx[:, None, None]) & (k.abs()[None, :, None] <= ry[:, None, None])
        index = rows.clamp(0, hh - 1)[:, :, None] * wh + cols.clamp(0, wh - 1)[:, None, :]
        w = torch.gather(flat, 1, index.reshape(flat.shape[0], -1)).reshape(index.shape)
        w = torch.where(use, w.clamp_min(0.0), torch.zeros_like(w))
        total = w.sum(dim=(1, 2))
        safe = torch.where(total > 0, total, torch.ones_like(total))
        x = torch.where(total > 0, (w.sum(dim=1) * (cols + 0.5)).sum(dim=1) / safe, px + 0.5)
        y = torch.where(total > 0, (w.sum(dim=2) * (rows + 0.5)).sum(dim=1) / safe, py + 0.5)
        return torch.stack([x, y], dim=-1).reshape(*lead, 2), score.reshape(lead)


@dataclass(frozen=True)
class Affine:
    """x' = a x + b y + c, y' = d x + e y + f on continuous pixel coordinates (see module doc)."""

    matrix: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

    @classmethod
    def identity(cls) -> "Affine":
        return cls()

    @classmethod
    def hflip(cls, width: float) -> "Affine":
        """Mirror left-right inside a canvas of `width`: pixel column i lands on width - 1 - i."""
        return cls((-1.0, 0.0, float(width), 0.0, 1.0, 0.0))

    @classmethod
    def zoom_crop(cls, size: Size, crop_center: tuple[float, float], zoom: float) -> "Affine":
        """Crop a (W/zoom, H/zoom) window centred at `crop_center` and resize it back to `size`."""
        w, h = size
        cx, cy = crop_center
        return cls((zoom, 0.0, w / 2 - zoom * cx, 0.0, zoom, h / 2 - zoom * cy))

    def then(self, other: "Affine") -> "Affine":
        """The mapping that applies self first, then other."""
        return Affine(tuple((other._m @ self._m)[:2].reshape(-1).tolist()))  # type: ignore[arg-type]

    def inverse(self) -> "Affine":
        return Affine(tuple(np.linalg.inv(self._m)[:2].reshape(-1).tolist()))  # type: ignore[arg-type]

    @property
    def _m(self) -> np.ndarray:
        return np.vstack([np.asarray(self.matrix, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) points -> (..., 2) points; NaN stays NaN."""
        xy = np.asarray(xy, dtype=np.float64)
        a, b, c, d, e, f = self.matrix
        out = np.empty_like(xy)
        out[..., 0] = a * xy[..., 0] + b * xy[..., 1] + c
        out[..., 1] = d * xy[..., 0] + e * xy[..., 1] + f
        return out

    def pil_data(self) -> tuple[float, ...]:
        """Coefficients for `PIL.Image.transform(..., Image.AFFINE, data)`.

        PIL asks, for each output pixel centre, where to sample the input, in the same
        corner-origin convention as ours, so the inverse matrix is used as is.
        """
        return self.inverse().matrix
