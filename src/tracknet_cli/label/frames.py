"""Frames for the page as JPEG bytes, decoded ahead of the one shown and kept in a window around it.

Why a window: a person steps forward and back a few frames at a time, and the next frame must
appear within 100 ms also for 1080p. A decoder thread follows the frame the page asked for last
(the *focus*), decoding and encoding up to `AHEAD` frames past it and keeping `BEHIND` before it;
entries farthest from the focus are dropped first. A video is decoded sequentially from its first
frame (frame numbers are decoder output order, as in training); a jump back before what is cached
restarts that decode, skipping frames without converting them. JPEG frame files are served as
they are; other images are encoded once. Only frames of INPUT are served: the page names a frame
number, never a path.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from tracknet_cli.errors import InputError
from tracknet_cli.label.media import LabelMedia

AHEAD = 48
BEHIND = 24
CAPACITY = 160  # frames kept; at 1080p about 40 MB of JPEG
QUALITY = 90
WAIT_S = 60.0


def encode_jpeg(frame: np.ndarray, quality: int = QUALITY) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class FrameStore:
    """`jpeg(i)`: frame i of INPUT as JPEG bytes (blocks until decoded); `close()` stops the thread."""

    def __init__(
        self, media: LabelMedia, *, ahead: int = AHEAD, behind: int = BEHIND, capacity: int = CAPACITY
    ) -> None:
        self.media = media
        self.ahead, self.behind, self.capacity = ahead, behind, max(capacity, ahead + behind + 1)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cond = threading.Condition()
        self._focus = 0
        self._closed = False
        self._failed: dict[int, str] = {}
        self.decoded = 0  # frames converted and encoded (tests and benchmarks)
        self.restarts = 0
        self._thread = threading.Thread(target=self._run, name="tracknet-label-frames", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public
    def jpeg(self, index: int) -> bytes:
        if not 0 <= index < self.media.frames:
            raise IndexError(index)
        with self._cond:
            self._focus = index
            self._cond.notify_all()
            ok = self._cond.wait_for(lambda: index in self._cache or index in self._failed or self._closed, WAIT_S)
            if index in self._cache:
                return self._cache[index]
            if index in self._failed:
                raise InputError(self._failed[index])
            raise TimeoutError(f"frame {index} was not decoded in {WAIT_S:.0f} s" if not ok else "closed")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------ the decoder thread
    def _wanted(self) -> int | None:
        """The first frame from the focus on that is not cached yet; for frame folders (random
        access) also the ones behind it. A video fills its behind window when a jump restarts it."""
        f, n = self._focus, self.media.frames
        order = list(range(f, min(n, f + self.ahead)))
        if self.media.kind == "frames":
            order += list(range(f - 1, max(-1, f - self.behind - 1), -1))
        for i in order:
            if i not in self._cache and i not in self._failed:
                return i
        return None

    def _put(self, index: int, data: bytes) -> None:
        self._cache[index] = data
        while len(self._cache) > self.capacity:
            far = max(self._cache, key=lambda i: abs(i - self._focus))
            del self._cache[far]
        self._cond.notify_all()

    def _run(self) -> None:
        frames: Iterator[tuple[int, bytes]] | None = None
        position = 0  # the frame `frames` yields next
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._wanted() is not None)
                if self._closed:
                    return
                wanted = self._wanted()
            assert wanted is not None
            if frames is None or wanted < position or self.media.kind == "frames":
                start = wanted if self.media.kind == "frames" else max(0, min(wanted, self._focus - self.behind))
                frames, position = self._open(start), start
                self.restarts += 1
            try:
                index, data = next(frames)
            except StopIteration:  # a video that decodes fewer frames than its packets promised
                with self._cond:
                    for i in range(position, self.media.frames):
                        self._failed[i] = f"frame {i} of {self.media.path} does not decode (damaged or truncated file)"
                    self._cond.notify_all()
                frames = None
                continue
            except InputError as exc:
                with self._cond:
                    self._failed[wanted] = exc.render()
                    self._cond.notify_all()
                frames = None
                continue
            position = index + 1
            with self._cond:
                keep = self._focus - self.behind <= index < self._focus + self.ahead
                if keep or self.media.kind == "frames":
                    self._put(index, data)

    def _open(self, start: int) -> Iterator[tuple[int, bytes]]:
        if self.media.kind == "frames":
            return iter([(start, self._image(start))])
        return self._video(start)

    def _image(self, index: int) -> bytes:
        assert self.media.frame_paths is not None
        path = self.media.frame_paths[index]
        from tracknet_cli.data.frames import decode_image

        if path.suffix.lower() in (".jpg", ".jpeg"):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
            if data[:2] == b"\xff\xd8":
                self.decoded += 1
                return data
        frame = decode_image(path, (self.media.width, self.media.height))
        self.decoded += 1
        return encode_jpeg(frame)

    def _video(self, start: int) -> Iterator[tuple[int, bytes]]:
        """Frames from `start` on; the ones the focus has moved past are skipped unencoded."""
        from tracknet_cli.data.frames import iter_video

        index = start
        for frame in iter_video(Path(self.media.path), start=start):
            with self._cond:
                skip = index < self._focus - self.behind
            if not skip:
                self.decoded += 1
                yield index, encode_jpeg(frame)
            index += 1
