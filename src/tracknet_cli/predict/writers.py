"""Prediction outputs, written as rows arrive: the positions CSV and the overlay video.

Both writers work on a hidden temp file beside the target and move it into place on ``close()``
(``os.replace``), so a reader never sees a half-written file under the final name. ``close()``
always finalises what was written: after Ctrl-C or an error mid-video, the CSV holds every row
written so far and the mp4 is a playable file of the frames encoded so far. Both are context
managers whose exit calls ``close()``; ``discard()`` removes the temp file instead.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from tracknet_cli.atomic import publish_mode, refuse_special, remove_stale_temps, temp_prefix
from tracknet_cli.choices import CSV_FORMATS, CsvFormat, check
from tracknet_cli.data.labels import PREDICT_HEADER, TENNIS_HEADER
from tracknet_cli.errors import InputError, RuntimeFailure
from tracknet_cli.predict.tracking import BallPoint


def refuse_existing(paths: "Iterable[Path | str | None]", overwrite: bool) -> None:
    """The one "output exists" check: `InputError` for the first of `paths` that exists, unless
    `overwrite`, and for one that is not a regular file (a FIFO, a device, a link), `-` included,
    always (`atomic.refuse_special`). The writers make it when they claim their file; the CLI makes
    it for every output before the model loads."""
    for path in paths:
        if path is None:
            continue
        refuse_special(path)
        if not overwrite and Path(path).exists():
            raise InputError(
                f"{path} already exists; pass {{overwrite}} to replace it or choose another name", parameter="overwrite"
            )


def _claim(path: Path, overwrite: bool, suffix: str) -> tuple[Path, str]:
    """Check the target, create its folder and a temp file beside it; returns (path, temp path)."""
    path = Path(path)
    refuse_existing([path], overwrite)  # also a folder, a FIFO, a device or a link there
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)  # what a killed run (SIGKILL) left beside this output
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write to {path.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    publish_mode(tmp, path)  # the result gets the user's normal permissions, not mkstemp's 0600
    return path, tmp


def _num(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class CsvWriter:
    """Streams rows (``tracking.BallPoint``) to CSV.

    ``default``: ``Frame,Visibility,X,Y,Score,Interpolated`` (``data.labels.PREDICT_HEADER``) — Frame
    0-based absolute, Visibility 1 for detections and interpolated rows, X/Y source pixels (0,0 when
    not visible), Score the detection's peak (0 for interpolated and empty rows), Interpolated 0/1.
    ``tracknet``: the tennis ``Label.csv`` dialect ``file name,visibility,x-coordinate,y-coordinate,
    status`` (file name: the frame's image name, else ``NNNN.jpg`` from the frame number; empty
    x,y when not visible; status unknown, left empty), which ``data.labels`` reads back.
    """

    def __init__(self, path: Path | str, *, fmt: CsvFormat = "default", overwrite: bool = False) -> None:
        check(fmt, CSV_FORMATS, "CSV format", InputError)
        self.path, self._tmp = _claim(Path(path), overwrite, ".csv.part")
        self.fmt = fmt
        self.rows = 0
        self._fh = open(self._tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(PREDICT_HEADER if fmt == "default" else TENNIS_HEADER)
        self._closed = False
        self._size = 0

    def write(self, row: BallPoint, name: str | None = None) -> None:
        if self.fmt == "default":
            vis = 1 if row.visible else 0
            x, y = (_num(row.x, 2), _num(row.y, 2)) if vis else ("0", "0")
            score = _num(row.score, 4) if vis and not row.interpolated else "0"
            self._csv.writerow((row.frame, vis, x, y, score, 1 if row.interpolated else 0))
        else:
            file_name = name or f"{row.frame:04d}.jpg"
            if row.visible:
                # 3 decimals, as the Label.csv files `tracknet eval --save-csv` writes.
                self._csv.writerow((file_name, 1, _num(row.x, 3), _num(row.y, 3), ""))
            else:
                self._csv.writerow((file_name, 0, "", "", ""))
        self.rows += 1

    def close(self) -> Path:
        """Move the rows written so far into place (also after an interruption). If the last rows
        cannot be written (disk full) the temp file is removed and the error raised."""
        if not self._closed:
            self._closed = True
            self._size = self.bytes_written
            try:
                self._fh.close()
                os.replace(self._tmp, self.path)
            except BaseException:
                Path(self._tmp).unlink(missing_ok=True)
                raise
        return self.path

    @property
    def bytes_written(self) -> int:
        """Bytes of CSV written so far, buffered ones included (what a full disk refused too)."""
        if self._fh.closed:
            return self._size
        try:
            return self._fh.tell()
        except (OSError, ValueError):
            return self._size

    def discard(self) -> None:
        """Remove the temp file; never raises for the file's own errors (a full disk refusing the
        buffered rows must not keep the temp file)."""
        if not self._closed:
            self._closed = True
            try:
                self._fh.close()
            except OSError:
                pass
            finally:
                Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> "CsvWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- overlay
DETECTION_RGB = (255, 48, 48)  # filled red disk
INTERPOLATED_RGB = (255, 214, 0)  # hollow yellow ring
OUTLINE_RGB = (0, 0, 0)


def even_size(size: tuple[int, int], scale: float = 1.0) -> tuple[int, int]:
    """The overlay's (w, h): ``size * scale`` rounded down to even numbers (yuv420p needs them)."""
    w = max(2, int(round(size[0] * scale)) // 2 * 2)
    h = max(2, int(round(size[1] * scale)) // 2 * 2)
    return w, h


def _yuv(rgb: tuple[int, int, int]) -> np.ndarray:
    """BT.601 limited-range YUV of an RGB colour (what swscale and x264 assume by default)."""
    r, g, b = rgb
    return np.array(
        [
            16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255,
            128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255,
            128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255,
        ],
        dtype=np.float32,
    )


_SHAPES: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}


def _shape(radius: int, hollow: bool) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) offsets of a disk or a 2-px ring of ``radius``, cached."""
    key = (radius, hollow)
    if key not in _SHAPES:
        yy, xx = np.mgrid[-radius - 1 : radius + 2, -radius - 1 : radius + 2]
        dist = np.hypot(yy, xx)
        mask = dist <= radius + 0.5
        if hollow:
            mask &= dist >= max(0.0, radius - 1.5)
        _SHAPES[key] = (yy[mask], xx[mask])
    return _SHAPES[key]


def _blend(plane: np.ndarray, ys: np.ndarray, xs: np.ndarray, value: np.ndarray | float, alpha: float) -> None:
    if alpha >= 1.0:
        plane[ys, xs] = np.round(value).astype(np.uint8)
    else:
        plane[ys, xs] = np.round(plane[ys, xs] * (1.0 - alpha) + np.asarray(value) * alpha).astype(np.uint8)


class Canvas:
    """Marks drawn with numpy on an RGB array, or on the planes of a yuv420p frame (no colour
    conversion of the whole frame: the decoder's YUV goes straight back to the encoder)."""

    def __init__(self, rgb: np.ndarray | None = None, yuv: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.rgb, self.yuv = rgb, yuv
        self.height, self.width = rgb.shape[:2] if rgb is not None else yuv[0].shape  # type: ignore[index]

    def stamp(self, x: float, y: float, radius: int, hollow: bool, color: tuple[int, int, int], alpha: float) -> None:
        dy, dx = _shape(radius, hollow)
        ys, xs = dy + int(round(y)), dx + int(round(x))
        keep = (ys >= 0) & (ys < self.height) & (xs >= 0) & (xs < self.width)
        ys, xs = ys[keep], xs[keep]
        if self.rgb is not None:
            _blend(self.rgb, ys, xs, np.array(color, np.float32), alpha)
        else:
            yp, up, vp = self.yuv  # type: ignore[misc]
            yuv = _yuv(color)
            _blend(yp, ys, xs, yuv[0], alpha)
            _blend(up, ys // 2, xs // 2, yuv[1], alpha)
            _blend(vp, ys // 2, xs // 2, yuv[2], alpha)


def draw_marks(canvas: Canvas, trail: list[tuple[float, float, bool]], radius: int) -> None:
    """The trail (oldest first): small marks, more opaque when newer; detections filled,
    interpolated points hollow."""
    n = len(trail)
    small = max(1, int(round(radius * 0.6)))
    for i, (x, y, interp) in enumerate(trail):
        alpha = 0.25 + 0.6 * (i + 1) / max(1, n)
        canvas.stamp(x, y, small, interp, INTERPOLATED_RGB if interp else DETECTION_RGB, alpha)


def draw_current(canvas: Canvas, x: float, y: float, interpolated: bool, radius: int) -> None:
    """The frame's own point: a filled red disk (detection) or a hollow yellow ring (interpolated)."""
    canvas.stamp(x, y, radius + 1, interpolated, OUTLINE_RGB, 1.0)
    canvas.stamp(x, y, radius, interpolated, INTERPOLATED_RGB if interpolated else DETECTION_RGB, 1.0)


def _planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable numpy views of a yuv420p frame's planes (line padding cut off)."""
    views = []
    for plane in frame.planes:
        buf = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        views.append(buf[:, : plane.width])
    return views[0], views[1], views[2]


class OverlayWriter:
    """H.264 mp4 (libx264, yuv420p, +faststart) of the frames with the ball marked.

    ``write`` takes the frame at ``frame_size`` either as a uint8 RGB array or, fastest, as a
    yuv420p ``av.VideoFrame`` (``VideoSource.frames(overlay_size=...)`` gives one): marks are then
    drawn on its planes and it goes to the encoder with no colour conversion. Other sizes are
    resized (odd sizes at scale 1 are cropped by one pixel). ``trail``: the points of the previous
    N frames, fading; detections are filled red disks, interpolated points hollow yellow rings.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        fps: float | Fraction,
        source_size: tuple[int, int],
        scale: float = 1.0,
        trail: int = 10,
        preset: str = "veryfast",
        crf: int = 23,
        overwrite: bool = False,
    ) -> None:
        import av

        if not 0 < scale <= 4:
            raise InputError(f"{{overlay_scale}} {scale} must be in (0, 4]", parameter="overlay_scale", value=scale)
        self.path, self._tmp = _claim(Path(path), overwrite, ".mp4.part")
        self.source_size = (int(source_size[0]), int(source_size[1]))
        self.frame_size = even_size(self.source_size, scale)
        w, h = self.frame_size
        self._crop = scale == 1.0
        self._fx = 1.0 if self._crop else w / self.source_size[0]
        self._fy = 1.0 if self._crop else h / self.source_size[1]
        self.radius = max(3, int(round(min(w, h) / 100)))
        self.trail: deque[tuple[int, float, float, bool]] = deque(maxlen=max(0, int(trail)))
        rate = fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(1001)
        self.rate = rate if rate > 0 else Fraction(30)
        self.frames = 0
        self._closed = False
        try:
            self._container = av.open(self._tmp, "w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream(
                "libx264", rate=self.rate, options={"preset": preset, "crf": str(crf)}
            )
            self._stream.width, self._stream.height = w, h
            self._stream.pix_fmt = "yuv420p"
        except av.error.FFmpegError as exc:
            Path(self._tmp).unlink(missing_ok=True)
            raise RuntimeFailure(f"cannot start the H.264 encoder for {self.path}: {exc}") from exc
        self._time_base = Fraction(1) / self.rate

    def _frame(self, image, copy: bool):
        """An encoder-ready frame and a canvas drawing on it."""
        import av

        w, h = self.frame_size
        if isinstance(image, av.VideoFrame):
            if image.format.name != "yuv420p" or (image.width, image.height) != (w, h):
                image = image.reformat(width=w, height=h, format="yuv420p")
            image.make_writable()  # copies when the decoder still references the buffer
            image.pict_type = av.video.frame.PictureType.NONE  # let x264 choose the frame types
            return image, Canvas(yuv=_planes(image))
        ih, iw = image.shape[:2]
        if (iw, ih) == (w, h):
            rgb = np.array(image, copy=True) if copy else np.ascontiguousarray(image)
        elif self._crop and iw - w in (0, 1) and ih - h in (0, 1):
            rgb = np.ascontiguousarray(image[:h, :w])
        else:
            src = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="rgb24")
            rgb = src.reformat(width=w, height=h, format="rgb24").to_ndarray()
        # from_numpy_buffer wraps the array without a copy (from_ndarray copies slowly: ~5x at 1080p);
        # the encoder converts it to yuv420p before returning, so the array may be reused afterwards.
        return av.VideoFrame.from_numpy_buffer(rgb, format="rgb24"), Canvas(rgb=rgb)

    def write(self, image, row: BallPoint, *, copy: bool = True) -> None:
        """Draw ``row`` (source pixels) on ``image`` and encode it. ``image``: uint8 RGB (h, w, 3) or a
        yuv420p ``av.VideoFrame``; ``copy=False`` lets it draw on the caller's RGB array."""
        frame, canvas = self._frame(image, copy)
        if self.trail.maxlen:
            while self.trail and self.trail[0][0] < row.frame - self.trail.maxlen:
                self.trail.popleft()
            draw_marks(canvas, [(x, y, i) for _, x, y, i in self.trail], self.radius)
        if row.visible:
            x, y = row.x * self._fx, row.y * self._fy
            draw_current(canvas, x, y, row.interpolated, self.radius)
            if self.trail.maxlen:
                self.trail.append((row.frame, x, y, row.interpolated))
        frame.pts = self.frames
        frame.time_base = self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Drain the encoder, write the index at the front and move the file into place.
        With no frame written nothing is created and None is returned."""
        if self._closed:
            return self.path if self.frames else None
        self._closed = True
        try:
            try:
                if self.frames:
                    for packet in self._stream.encode(None):
                        self._container.mux(packet)
            finally:
                self._container.close()
            if not self.frames:
                Path(self._tmp).unlink(missing_ok=True)
                return None
            os.replace(self._tmp, self.path)
        except BaseException:  # disk full while draining or writing the index: no temp file is kept
            self._size = self.bytes_written
            Path(self._tmp).unlink(missing_ok=True)
            raise
        return self.path

    @property
    def bytes_written(self) -> int:
        """Bytes of the temp file (what the disk took); after a failed close, its size then."""
        try:
            return os.path.getsize(self._tmp)
        except OSError:
            return getattr(self, "_size", 0)

    def discard(self) -> None:
        """Remove the temp file; never raises for the file's own errors (see CsvWriter.discard)."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - PyAV's errors on a full disk are not all OSErrors
                pass
            finally:
                Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> "OverlayWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
