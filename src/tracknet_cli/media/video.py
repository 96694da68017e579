"""Decoded video frames in their display orientation, for training data and prediction alike.

A phone stores a portrait video as landscape pixels plus a display matrix ("rotate 90"); players
and labelling tools show it upright, so labels are in upright pixels. Every decoder of this package
applies the matrix through this module (rotations by multiples of 90 degrees; other angles and
flips are left alone, and predict notes them), so a phone video trains upright as it predicts.

PyAV exposes the matrix per decoded frame (``frame.rotation``, degrees counter-clockwise), not per
stream, so sizes come from the first decoded frame.

Frame numbers (``decode``): frames are counted as the decoder gives them out, so broken timestamps
and variable frame rates never shift a frame. Damage is the exception: once a packet has failed to
decode (a damaged stretch, a corrupt first GOP), every later frame is numbered from its timestamp
(the time since the previous frame, ``pts * time_base * fps``, rounded; the first frame from the
stream's start), so the frames after the damage keep their true numbers and the ones that did not
decode are a gap (``DecodeLog.lost``). Predict writes no row for a lost frame; readers that match
frames to labels by position (training, import, labelling) refuse a gap (``read_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(kw_only=True)
class DecodeLog:
    """What one pass of ``decode`` met (keyword-only fields, so reports can extend it)."""

    errors: int = 0  # packets that did not decode, or the demuxer error that ended the file
    lost: list[tuple[int, int]] = field(default_factory=list)  # (first, last) frame numbers that did not decode
    finished: bool = False  # the decoder reached the end of the file
    through: int = 0  # the last decoded frame's number + 1


def decode(container: Any, stream: Any, log: DecodeLog) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) for every frame of ``stream`` that decodes, in order.

    A packet that fails to decode is counted in ``log.errors`` and skipped; from then on frames are
    numbered by their timestamps (see the module docstring) and the numbers skipped are recorded in
    ``log.lost``. A demuxer error (a cut file) is counted, the decoder drained, and decoding ends."""
    import av

    rate = stream.average_rate or stream.guessed_rate
    per_tick = float(stream.time_base * rate) if stream.time_base and rate and float(rate) > 0 else 0.0
    origin = stream.start_time
    last_pts: int | None = None

    def numbered(frames: Any) -> Iterator[tuple[int, Any]]:
        nonlocal last_pts
        for frame in frames:
            number = log.through
            if log.errors and frame.pts is not None and per_tick:
                if last_pts is not None:
                    number = log.through - 1 + max(1, round((frame.pts - last_pts) * per_tick))
                elif origin is not None:
                    number = max(0, round((frame.pts - origin) * per_tick))
            if number > log.through:
                log.lost.append((log.through, number - 1))
            last_pts = frame.pts
            log.through = number + 1
            yield number, frame

    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except av.error.FFmpegError:
            log.errors += 1
            try:
                yield from numbered(stream.codec_context.decode(None))
            except av.error.FFmpegError:
                pass
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            log.errors += 1
            continue
        yield from numbered(frames)
    log.finished = True


def lost_regions(lost: list[tuple[int, int]], within: int = 30) -> list[tuple[int, int, int]]:
    """(first, last, frames lost) per damaged stretch: lost frames fewer than ``within`` frames
    apart are one stretch (one burst of damage loses frames here and there as the decoder recovers)."""
    regions: list[tuple[int, int, int]] = []
    for first, last in lost:
        if regions and first - regions[-1][1] <= within:
            a, _, n = regions[-1]
            regions[-1] = (a, last, n + last - first + 1)
        else:
            regions.append((first, last, last - first + 1))
    return regions


def frame_span(first: int, last: int) -> str:
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def read_frames(
    path: Path | str, size: Size | None = None, limit: int | None = None, *, threads: bool = True, start: int = 0
) -> Iterator[np.ndarray]:
    """The frames of a video from frame ``start`` on, as upright uint8 RGB at ``size`` (None: full
    size): the k-th frame yielded is frame ``start + k``, for callers that match frames to labels
    by position (training, import, labelling). ``limit`` counts the frames yielded.

    Frames before ``start`` are decoded but never converted. An unopenable file, or one of which no
    frame decodes, is an ``InputError``; so is a gap (frames that did not decode, followed by one
    that did: the frames after it would be matched to the wrong labels). A damaged tail ends the
    frames early (the caller checks the count it needs)."""
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
        log = DecodeLog()
        count = 0
        for number, frame in decode(container, stream, log):
            if number < start:
                continue
            if number > start + count:
                raise InputError(
                    f"{path} is damaged: {frame_span(start + count, number - 1)} did not decode, so "
                    "the later frames cannot be matched to their labels by position; re-encode or "
                    "replace the video, or leave it out"
                )
            yield to_rgb(frame, size)
            count += 1
            if limit is not None and count >= limit:
                return
        if log.through == 0:
            raise InputError(f"cannot decode any frame of {path}: the file is damaged or not a video")


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
