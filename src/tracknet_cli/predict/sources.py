"""Prediction inputs: videos, frame folders, folders of videos and single images, read lazily.

Every source yields ``SourceFrame``s in decode order with absolute 0-based frame numbers, one
frame at a time (memory never grows with the length of the input). One decode serves several
consumers: ``frames(sizes=[model_size, overlay_size, None])`` gives each decoded frame at every
requested size (``None`` = the source size), resized inside libswscale for videos
(``frame.reformat``, ~4x faster than PIL) and with Pillow (JPEG ``draft``) for images.

What the video reader supports and why:
- Frame numbers count frames as the decoder outputs them, so broken or missing timestamps and
  variable frame rate do not shift rows; after damage (a packet that does not decode) frames are
  numbered by their timestamps, so the rows after it keep their true frame numbers and the frames
  lost have no row (``media.video.decode``). ``info.fps`` is the stream's average rate (the overlay
  is written at that constant rate); 30 when the file does not say.
- Rotation metadata (the display matrix, e.g. phone videos): rotations by multiples of 90 degrees
  are applied, so frames, sizes and coordinates are in the upright display orientation. Flips and
  other angles are ignored (counted as one warning).
- A damaged or truncated file yields every frame that decodes, also past a corrupt start; decode
  errors, the frames lost (where), corrupt frames and a header frame count the decode did not reach
  are counted in ``source.report`` and summarised by ``report.warning()`` at the end instead of
  raising. A file that cannot be opened, has no video stream or decodes no frame at all raises
  ``InputError`` (exit 2) before any work.
- ``start``/``end`` are 0-based frame numbers, ``end`` exclusive (Python slicing: ``start=10,
  end=20`` gives frames 10..19). Video frames before ``start`` are decoded (decode order is the
  only reliable frame number) but never converted or kept; decoding stops at ``end``. Frame
  folders skip straight to ``start`` without reading the files before it.
- Frame folders are sorted naturally (``2.jpg`` before ``10.jpg``), play at 30 fps unless told,
  and take the size of their first image; a differently sized image is resized to it (a warning).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from tracknet_cli.errors import InputError, UsageError
from tracknet_cli.media.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, image_files, video_files
from tracknet_cli.media.images import image_rgb
from tracknet_cli.media.video import DecodeLog, decode, frame_rotation, frame_span, lost_regions, rotation_steps, to_rgb

DEFAULT_FPS = 30.0

Size = tuple[int, int]  # (width, height)
SourceKind = Literal["video", "frames", "image"]


@dataclass(frozen=True)
class SourceInfo:
    """What is known about an input before decoding it."""

    path: Path
    kind: SourceKind
    size: Size  # (W, H) of the frames as yielded at full size (after rotation)
    fps: float
    rate: Fraction  # the same frame rate as an exact fraction (what the overlay encoder wants)
    frame_count: int | None  # the header's claim for videos (may be wrong or absent), exact for files
    rotation: int = 0  # degrees counter-clockwise applied to every decoded frame: 0, 90, 180 or 270

    @property
    def stem(self) -> str:
        return self.path.stem if self.kind != "frames" else self.path.name


@dataclass
class SourceFrame:
    """One decoded frame, at every size the caller asked for (same order as ``sizes``)."""

    index: int  # absolute 0-based frame number (decode order; after damage from the timestamp)
    images: tuple[np.ndarray, ...]  # uint8 (h, w, 3) RGB, C-contiguous
    name: str | None = None  # the image file name for frame folders and images
    overlay: Any = None  # with overlay_size: a yuv420p av.VideoFrame (videos) or an RGB array


@dataclass
class DecodeReport(DecodeLog):
    """Counts gathered while decoding, turned into one warning line at the end. From ``DecodeLog``:
    ``errors`` (decode/demux errors or unreadable images), ``lost`` (frame numbers that did not
    decode), ``finished`` (the end of the input was reached, not --end), ``through``."""

    path: Path
    decoded: int = 0  # frames that came out of the decoder (or images read), including skipped ones
    yielded: int = 0
    corrupt: int = 0  # frames the decoder flagged corrupt (still yielded)
    resized: int = 0  # images whose size differed from the first one
    header_frames: int | None = None
    notes: list[str] = field(default_factory=list)

    def warning(self) -> str | None:
        """One line naming what went wrong, or None when the input decoded cleanly."""
        parts: list[str] = []
        if self.errors:
            parts.append(f"{self.errors} decode error{'s' if self.errors != 1 else ''}")
        if self.lost:
            regions = lost_regions(self.lost)
            n = sum(r[2] for r in regions)
            where = ", ".join(frame_span(a, b) for a, b, _ in regions[:3]) + (" and more" if len(regions) > 3 else "")
            parts.append(
                f"{n} frame{'s' if n != 1 else ''} did not decode ({where}; no rows for them, "
                "the later rows keep their frame numbers)"
            )
        if self.corrupt:
            parts.append(f"{self.corrupt} corrupt frame{'s' if self.corrupt != 1 else ''}")
        if self.finished and self.header_frames and max(self.through, self.decoded) < self.header_frames:
            parts.append(f"{self.decoded} of the {self.header_frames} frames the header claims decoded (truncated?)")
        if self.resized:
            parts.append(f"{self.resized} image{'s' if self.resized != 1 else ''} resized to the first image's size")
        parts.extend(self.notes)
        if not parts:
            return None
        return f"{self.path}: " + "; ".join(parts) + f"; kept the {self.yielded} frames that decoded"


def _check_slice(start: int, end: int | None) -> None:
    if start < 0:
        raise UsageError(f"{{start}} {start} is negative; frame numbers start at 0", parameter="start", value=start)
    if end is not None and end <= start:
        raise UsageError(
            f"{{end}} {end} must be greater than {{start}} {start} (end is exclusive)",
            parameter="end",
            value=end,
            also=("start",),
        )


class FrameSource:
    """Base of the input kinds: ``info`` up front, ``frames(sizes)`` streams, ``report`` after."""

    info: SourceInfo
    report: DecodeReport

    def __init__(self, start: int = 0, end: int | None = None) -> None:
        _check_slice(start, end)
        self.start, self.end = start, end

    @property
    def expected_frames(self) -> int | None:
        """How many frames the slice should yield, when the count is known (progress bars)."""
        total = self.info.frame_count
        if total is None or total <= 0:
            return None
        stop = total if self.end is None else min(total, self.end)
        return max(0, stop - self.start)

    def frames(
        self, sizes: Sequence[Size | None] = (None,), overlay_size: Size | None = None, *, decoder_threads: bool = True
    ) -> Iterator[SourceFrame]:
        """Frames of the slice, each at every size in ``sizes`` (None: the source size). With
        ``overlay_size`` (even numbers, e.g. ``OverlayWriter.frame_size``) each frame also carries
        ``overlay``: for unrotated videos the decoded frame itself as yuv420p, which the overlay
        writer draws on and encodes with no RGB round trip; an RGB array otherwise.
        ``decoder_threads``: let FFmpeg decode a video in threads of its own (faster when cores are
        free; the pipeline turns it off when the model's forward already uses every core)."""
        raise NotImplementedError

    def _check_not_past_end(self) -> None:
        if self.report.yielded == 0 and self.report.through > 0 and self.start >= self.report.through:
            raise UsageError(
                f"{{start}} {self.start} is past the end of {self.info.path} ({self.report.through} frames decoded)",
                parameter="start",
                value=self.start,
            )


# ---------------------------------------------------------------- videos
class VideoSource(FrameSource):
    """A video file decoded with PyAV (``media.video.decode``: frames numbered in decode order, by
    timestamp after damage)."""

    def __init__(self, path: Path | str, start: int = 0, end: int | None = None) -> None:
        super().__init__(start, end)
        self.path = Path(path)
        self.info = self._probe()
        self.report = DecodeReport(self.path, header_frames=self.info.frame_count)

    def _open(self):  # -> av.container.InputContainer
        import av

        if not self.path.exists():
            raise InputError(f"input not found: {self.path}")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, expected a video file")
        try:
            container = av.open(str(self.path))
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot open video {self.path}: {_reason(exc)}") from exc
        if not container.streams.video:
            container.close()
            raise InputError(f"no video stream in {self.path}")
        return container

    def _probe(self) -> SourceInfo:
        """Open the file and decode its first frame (past a damaged start): size, rotation, rate;
        fail early if no frame decodes."""
        container = self._open()
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            rate = Fraction(rate) if rate and 0 < float(rate) < 1000 else Fraction(int(DEFAULT_FPS))
            count = int(stream.frames) if stream.frames and stream.frames > 0 else None
            first = next((frame for _, frame in decode(container, stream, DecodeLog())), None)
            if first is None:
                raise InputError(f"cannot decode any frame of {self.path}: the file is damaged or not a video")
            width, height = first.width, first.height
            steps = rotation_steps(frame_rotation(first))
            rotation = 90 * (steps or 0)
            if steps in (1, 3):
                width, height = height, width
            return SourceInfo(self.path, "video", (width, height), float(rate), rate, count, rotation)
        finally:
            container.close()

    def frames(
        self, sizes: Sequence[Size | None] = (None,), overlay_size: Size | None = None, *, decoder_threads: bool = True
    ) -> Iterator[SourceFrame]:
        """Decode lazily; stop at ``end``; count errors in ``report`` instead of raising."""
        report = self.report = DecodeReport(self.path, header_frames=self.info.frame_count)
        full = self.info.size
        targets = [full if s is None else (int(s[0]), int(s[1])) for s in sizes]
        container = self._open()
        stream = container.streams.video[0]
        if decoder_threads:
            stream.thread_type = "AUTO"
        odd_angle_seen = False
        try:
            for index, frame in decode(container, stream, report):
                report.decoded += 1
                if index < self.start:
                    continue
                if self.end is not None and index >= self.end:
                    return
                if frame.is_corrupt:
                    report.corrupt += 1
                raw = frame_rotation(frame)
                steps = rotation_steps(raw)
                if steps is None:
                    steps = 0
                    if not odd_angle_seen:
                        odd_angle_seen = True
                        report.notes.append(f"rotation {raw:g} degrees is not a multiple of 90; not applied")
                images = tuple(to_rgb(frame, size, steps) for size in targets)
                overlay = None
                if overlay_size is not None:
                    if steps:
                        overlay = to_rgb(frame, overlay_size, steps)
                    else:
                        overlay = frame.reformat(width=overlay_size[0], height=overlay_size[1], format="yuv420p")
                report.yielded += 1
                yield SourceFrame(index, images, overlay=overlay)
        finally:
            container.close()
        if report.decoded == 0:
            raise InputError(f"cannot decode any frame of {self.path}: the file is damaged or not a video")
        self._check_not_past_end()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


# ---------------------------------------------------------------- images
class ImageFolderSource(FrameSource):
    """A folder of frame images (natural order), or one image (a one-frame source)."""

    def __init__(
        self,
        paths: Sequence[Path],
        root: Path,
        kind: SourceKind,
        start: int = 0,
        end: int | None = None,
        *,
        fps: float = DEFAULT_FPS,
    ) -> None:
        super().__init__(start, end)
        if not paths:
            raise InputError(f"no images in {root}")
        self.paths = list(paths)
        first = self.paths[0]
        size = _image_size(first)
        rate = Fraction(fps).limit_denominator(1001)
        self.info = SourceInfo(root, kind, size, float(fps), rate, len(self.paths))
        self.report = DecodeReport(root, header_frames=len(self.paths))
        if start >= len(self.paths):
            raise UsageError(
                f"{{start}} {start} is past the end of {root} ({len(self.paths)} frames)",
                parameter="start",
                value=start,
            )

    def frames(
        self, sizes: Sequence[Size | None] = (None,), overlay_size: Size | None = None, *, decoder_threads: bool = True
    ) -> Iterator[SourceFrame]:
        report = self.report = DecodeReport(self.info.path, header_frames=len(self.paths))
        full = self.info.size
        targets = [full if s is None else (int(s[0]), int(s[1])) for s in sizes]
        if overlay_size is not None:
            targets.append((int(overlay_size[0]), int(overlay_size[1])))
        stop = len(self.paths) if self.end is None else min(self.end, len(self.paths))
        report.decoded = min(self.start, len(self.paths))
        for index in range(self.start, stop):
            path = self.paths[index]
            report.decoded += 1
            try:
                images = _read_image(path, targets, full, report)
            except (OSError, ValueError):
                report.errors += 1
                continue
            report.yielded += 1
            if overlay_size is not None:
                yield SourceFrame(index, images[:-1], path.name, overlay=images[-1])
            else:
                yield SourceFrame(index, images, path.name)
        report.finished = True


def _image_size(path: Path) -> Size:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {_reason(exc)}") from exc


def _read_image(path: Path, targets: Sequence[Size], full: Size, report: DecodeReport) -> tuple[np.ndarray, ...]:
    """Decode once; JPEGs use ``draft`` when every requested size is at most half the stored one."""
    from PIL import Image

    with Image.open(path) as img:
        if img.size != full:
            report.resized += 1
        biggest = (max(t[0] for t in targets), max(t[1] for t in targets))
        if img.format == "JPEG" and biggest[0] * 2 <= img.width and biggest[1] * 2 <= img.height:
            img.draft("RGB", biggest)
        img = image_rgb(img)
        # The draft image may be smaller than the stored one: scale relative to the first image's size.
        out = []
        for width, height in targets:
            resized = img if img.size == (width, height) else img.resize((width, height), Image.BILINEAR)
            out.append(np.asarray(resized, dtype=np.uint8))
        return tuple(out)


# ---------------------------------------------------------------- discovery
_images_in = image_files  # media.files: the same frames and order as training data
_videos_in = video_files


def open_source(
    path: Path | str, start: int = 0, end: int | None = None, *, fps: float = DEFAULT_FPS
) -> list[FrameSource]:
    """The sources one INPUT names: a video → one; an image → one; a folder of frames → one;
    a folder of videos → one per video (natural order). ``fps`` applies to frames and images."""
    path = Path(path)
    _check_slice(start, end)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        images = _images_in(path)
        if images:
            return [ImageFolderSource(images, path, "frames", start, end, fps=fps)]
        videos = _videos_in(path)
        if videos:
            return [VideoSource(v, start, end) for v in videos]
        raise InputError(
            f"{path} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}) "
            f"and no videos ({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [ImageFolderSource([path], path, "image", start, end, fps=fps)]
    return [VideoSource(path, start, end)]


def open_sources(
    paths: Sequence[Path | str], start: int = 0, end: int | None = None, *, fps: float = DEFAULT_FPS
) -> list[FrameSource]:
    """Every source named by the command's INPUTs, in the order given; fails before any decode."""
    if not paths:
        raise UsageError("no INPUT given: name a video, a folder of frames or videos, or an image")
    sources: list[FrameSource] = []
    for p in paths:
        sources.extend(open_source(p, start, end, fps=fps))
    return sources


class ArraySource(FrameSource):
    """Frames the caller already holds (uint8 RGB (H, W, 3), all one size), numbered from ``first``.

    The first frame is read up front to learn the size; the iterable is consumed once."""

    def __init__(
        self, frames: Iterable[np.ndarray], *, first: int = 0, fps: float = DEFAULT_FPS, name: str = "frames"
    ) -> None:
        super().__init__(0, None)
        from fractions import Fraction

        self._it = iter(frames)
        try:
            head = next(self._it)
        except StopIteration:
            raise UsageError("track_frames got no frames") from None
        self._head = _check_array(head, None)
        self._first = first
        h, w = self._head.shape[:2]
        rate = Fraction(fps).limit_denominator(1001)
        self.info = SourceInfo(Path(name), "frames", (w, h), float(fps), rate, None)
        self.report = DecodeReport(Path(name))

    def frames(
        self, sizes: Sequence[Size | None] = (None,), overlay_size: Size | None = None, *, decoder_threads: bool = True
    ) -> Iterator[SourceFrame]:
        full = self.info.size
        targets = [full if s is None else (int(s[0]), int(s[1])) for s in sizes]
        index = self._first
        for array in itertools.chain([self._head], self._it):
            array = _check_array(array, full)
            self.report.decoded += 1
            images = tuple(_resize(array, t) for t in targets)
            overlay = _resize(array, overlay_size) if overlay_size is not None else None
            self.report.yielded += 1
            yield SourceFrame(index, images, overlay=overlay)
            index += 1
        self.report.finished = True


def _check_array(array: Any, size: Size | None) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise UsageError(f"frames must be uint8 RGB arrays of shape (H, W, 3), got {a.dtype} {tuple(a.shape)}")
    if size is not None and (a.shape[1], a.shape[0]) != size:
        raise UsageError(f"every frame must be {size[0]}x{size[1]} like the first one, got {a.shape[1]}x{a.shape[0]}")
    return np.ascontiguousarray(a)


def _resize(array: np.ndarray, size: Size) -> np.ndarray:
    if (array.shape[1], array.shape[0]) == tuple(size):
        return array
    import av

    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
    return frame.reformat(width=int(size[0]), height=int(size[1]), format="rgb24").to_ndarray()
