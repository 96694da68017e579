"""One file of JPEG frames per clip: the frame cache of training clips under ``data.cache_format: jpeg``.

Why: a raw uint8 frame at 512x288 is 442 KB; the same frame as a quality-95 JPEG is about 53 KB
(8x smaller on real badminton video), costs about 0.5 ms to encode once and 0.8 ms to decode on every
read (Pillow on libjpeg-turbo), and differs from the raw frame by about 1.6/255 per pixel on average,
which augmented training does not mind. The decoding is CPU a fast model's training misses
(docs/datasets/loading.md, "Cache formats"); what measures a model (validation, eval) keeps exact
frames in the raw format.

Layout, all integers little-endian int64::

    MAGIC (8 bytes) | count | width | height | offsets[count + 1] | JPEG 0 | JPEG 1 | ...

``offsets`` are absolute byte positions: frame ``i`` is ``file[offsets[i]:offsets[i + 1]]`` and the
last offset is the file size, so a truncated or foreign file is recognised and rebuilt, never misread.
The file is memory-mapped; a read decodes only the frames it asks for.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np

from tracknet_cli.data.frames import short_clip_error
from tracknet_cli.errors import InputError

MAGIC = b"TNJPEG\x00\x01"
QUALITY = 95
_FIELDS = 3  # count, width, height


def _header_bytes(count: int) -> int:
    return len(MAGIC) + 8 * (_FIELDS + count + 1)


def encode_jpeg(frame: np.ndarray, quality: int = QUALITY) -> bytes:
    """A uint8 RGB (h, w, 3) frame as JPEG bytes (Pillow's default 4:2:0 chroma, as video sources have)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def decode_jpeg(data: bytes | memoryview) -> np.ndarray:
    """JPEG bytes as uint8 RGB (h, w, 3)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)


def write_jpegs(
    handle: BinaryIO, frames: Iterator[np.ndarray], input_size: tuple[int, int], count: int, what: str
) -> int:
    """Write ``count`` canvas frames to an empty binary file in the layout above; returns its size.

    Too few frames is the InputError decoding raises (``frames.fill``)."""
    width, height = input_size
    start = _header_bytes(count)
    handle.write(b"\0" * start)
    offsets = [start]
    for frame in frames:
        if len(offsets) > count:
            break
        data = encode_jpeg(frame)
        handle.write(data)
        offsets.append(offsets[-1] + len(data))
    if len(offsets) <= count:
        raise short_clip_error(what, len(offsets) - 1, count)
    handle.seek(0)
    handle.write(MAGIC + np.asarray([count, width, height, *offsets], dtype="<i8").tobytes())
    return offsets[-1]


def open_jpegs(path: Path, input_size: tuple[int, int], count: int) -> "JpegFrames | None":
    """The frames of a valid file with at least ``count`` frames of ``input_size``, else None."""
    try:
        if path.stat().st_size < _header_bytes(0):
            return None
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError):
        return None
    if bytes(raw[: len(MAGIC)]) != MAGIC:
        return None
    fields = raw[len(MAGIC) : _header_bytes(0) - 8].view("<i8")
    n, width, height = (int(v) for v in fields)
    if (width, height) != tuple(input_size) or n < max(count, 0) or _header_bytes(n) > len(raw):
        return None
    offsets = raw[len(MAGIC) + 8 * _FIELDS : _header_bytes(n)].view("<i8").astype(np.int64)
    if offsets[0] != _header_bytes(n) or offsets[-1] != len(raw) or np.any(np.diff(offsets) <= 0):
        return None
    return JpegFrames(path, raw, offsets, n)


class JpegFrames:
    """Random access to a clip's JPEG frames: each read decodes the frames it asks for."""

    def __init__(self, path: Path, raw: np.ndarray, offsets: np.ndarray, count: int) -> None:
        self.path, self.raw, self.offsets, self.count = path, raw, offsets, count
        self.decodes = 0  # frames decoded from the source video or images (none: these are cached)

    def __len__(self) -> int:
        return self.count

    def head(self, count: int) -> "JpegFrames":
        """The first ``count`` frames (a ``data.subset`` run reads a prefix of a longer file)."""
        return JpegFrames(self.path, self.raw, self.offsets, min(count, self.count))

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} of {self.count}")
        try:
            return decode_jpeg(self.raw[self.offsets[index] : self.offsets[index + 1]].tobytes())
        except (OSError, ValueError) as exc:  # bytes damaged after the file was written
            raise InputError(
                f"frame {index} of the frame cache file {self.path} cannot be decoded ({exc})",
                hint="delete the file; the next run rebuilds it",
            ) from exc

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (k, Hi, Wi, 3); a frame a window repeats (``augment.still``, a short clip) decodes once."""
        unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        decoded = np.stack([self.frame(int(i)) for i in unique])
        return decoded[inverse.reshape(-1)]
