"""Decoded video frames in their display orientation, for training data and prediction alike.

A phone stores a portrait video as landscape pixels plus a display matrix ("rotate 90"); players
and labelling tools show it upright, so labels are in upright pixels. Every decoder of this package
applies the matrix through this module (rotations by multiples of 90 degrees; other angles and
flips are left alone, and predict notes them), so a phone video trains upright as it predicts.

PyAV exposes the matrix per decoded frame (``frame.rotation``, degrees counter-clockwise), not per
stream, so sizes come from the first decoded frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tracknet_cli.errors import InputError

Size = tuple[int, int]


def rotation_steps(rotation: float) -> int | None:
    """Quarter turns counter-clockwise for ``np.rot90``, or None for an angle that is not applied."""
    quarter = round(rotation / 90.0)
    if abs(rotation - quarter * 90.0) > 0.5:
        return None
    return quarter % 4


def frame_steps(frame: Any) -> int:
    """The quarter turns that make a decoded frame upright (0 for angles that are not applied)."""
    return rotation_steps(frame_rotation(frame)) or 0


def frame_rotation(frame: Any) -> float:
    """The display matrix's rotation of a decoded PyAV frame in degrees (0 when it has none)."""
    return float(getattr(frame, "rotation", 0) or 0)


def display_size(frame: Any) -> Size:
    """(W, H) of a decoded frame once upright."""
    steps = frame_steps(frame)
    return (frame.height, frame.width) if steps in (1, 3) else (frame.width, frame.height)


def to_rgb(frame: Any, size: Size | None = None, steps: int | None = None) -> np.ndarray:
    """One decoded frame as contiguous uint8 RGB ``(H, W, 3)``, upright, at ``size`` = (W, H) of the
    upright picture (None: full size), resized and converted by libswscale in one pass.
    ``steps``: quarter turns (default: the frame's own display matrix)."""
    steps = frame_steps(frame) if steps is None else steps
    if size is None:
        width, height = frame.width, frame.height
    else:
        width, height = (size[1], size[0]) if steps in (1, 3) else size
    if (frame.width, frame.height) == (width, height) and frame.format.name == "rgb24":
        array = frame.to_ndarray()
    else:
        array = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    if steps:
        array = np.rot90(array, k=steps)
    return np.ascontiguousarray(array)


def read_frames(path: Path | str, size: Size | None = None, limit: int | None = None, *,
                threads: bool = True, start: int = 0) -> Iterator[np.ndarray]:
    """The frames of a video in decode order as upright uint8 RGB at ``size`` (None: full size).

    Frames are counted as they come out of the decoder; timestamps and header counts are ignored.
    ``start`` skips the first frames: decoded (the count is the frame number) but never converted;
    ``limit`` counts the frames yielded.
    An unopenable file, or one whose first frame does not decode, is an ``InputError``; a damaged
    tail ends the frames early (the caller checks the count it needs)."""
    import av

    if limit is not None and limit <= 0:
        return
    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as exc:
        raise InputError(f"cannot open video {path}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        count = decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded <= start:
                    continue
                yield to_rgb(frame, size)
                count += 1
                if limit is not None and count >= limit:
                    return
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise InputError(f"cannot decode video {path}: {exc}") from exc


def probe(path: Path | str) -> tuple[Size, int]:
    """((W, H) upright, frames) of a video's first video stream.

    Frames are counted from the demuxed packets that carry data, not from the header (headers of
    re-muxed files are often wrong); one packet is one frame in decode order for the codecs we read.
    The first packets are decoded until a frame comes out, for its display matrix."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            size: Size = (stream.codec_context.width, stream.codec_context.height)
            frames, first = 0, None
            for packet in container.demux(stream):
                if packet.size > 0:
                    frames += 1
                if first is None:
                    try:
                        first = next(iter(packet.decode()), None)
                    except av.error.FFmpegError:  # a damaged first packet: the stored size stands
                        continue
                    if first is not None:
                        size = display_size(first)
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: unreadable video ({exc})") from exc
    return size, frames
