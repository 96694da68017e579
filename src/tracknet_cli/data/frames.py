"""Fast frame access: every frame arrives as uint8 already resized and padded into the model canvas.

Why this module exists: decoding is what starves a CPU training run. Three rules keep it cheap:

- JPEGs are decoded at reduced scale (Pillow ``draft``: the JPEG decoder itself skips DCT detail)
  whenever the resized content is at most half the frame, then resized the rest of the way.
- Videos are decoded sequentially, counting frames as they come out (timestamps in real files are
  broken and header frame counts can be wrong), turned upright by their rotation metadata and
  resized inside libswscale with ``frame.reformat`` (about 4x faster than PIL), all in
  ``media.video``, the reader predict uses too. A video is decoded once per clip, never once per
  window: the whole clip's resized frames are kept (in memory here, or on disk by ``data.cache``).
- Overlapping windows share decodes through one byte-bounded LRU (``FrameMemory``) per dataset.

Memory: a decoded video clip costs ``frames x Hi x Wi x 3`` bytes (512x288: 442 KB a frame, so a
300-frame rally is 133 MB). ``FrameMemory`` evicts least recently used entries above its budget
(1 GiB by default) but always keeps the newest one, so a single clip larger than the budget still
loads. With the on-disk cache (``data.cache``) frames are read from its files instead: raw arrays
memory-mapped (the OS pages them), or, for training under ``data.cache_format: jpeg``, JPEGs decoded
on read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

import numpy as np

from tracknet_cli.errors import InputError
from tracknet_cli.media.images import image_rgb

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import DataConfig
    from tracknet_cli.data.clips import Clip
    from tracknet_cli.data.geometry import Codec

DEFAULT_MEMORY_BYTES = 1 << 30


# ---------------------------------------------------------------- geometry helpers
def clip_codec(clip: "Clip", data: "DataConfig") -> "Codec":
    """The codec of one clip under a data configuration (clips may differ in source size)."""
    from tracknet_cli.data.geometry import Codec

    return Codec.from_config(data, (clip.width, clip.height))


def content_size(codec: "Codec") -> tuple[int, int]:
    """(width, height) the source occupies inside the input canvas: what decoders resize to."""
    return codec.resized_size


def to_canvas(codec: "Codec", content: np.ndarray) -> np.ndarray:
    """Pad a frame already resized to ``content_size(codec)`` into the canvas, exactly as the codec does."""
    return codec.resize_frame(content)


# ---------------------------------------------------------------- single decoders
def decode_image(path: Path | str, size: tuple[int, int]) -> np.ndarray:
    """Decode an image to uint8 RGB (h, w, 3) at ``size`` = (w, h).

    JPEGs whose target is at most half the stored size are decoded with ``draft`` at 1/2, 1/4 or 1/8
    scale (never below ``size``), so the IDCT does a fraction of the work before the final resize.
    """
    from PIL import Image

    width, height = size
    try:
        with Image.open(path) as img:
            if img.format == "JPEG" and width * 2 <= img.width and height * 2 <= img.height:
                img.draft("RGB", (width, height))
            img = image_rgb(img)
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot decode image {path}: {exc}") from exc


def iter_video(
    path: Path | str, size: tuple[int, int] | None = None, limit: int | None = None, start: int = 0
) -> Iterator[np.ndarray]:
    """Yield the frames of a video in decode order as uint8 RGB (h, w, 3), upright (its rotation
    metadata applied, as predict reads it) and resized by libswscale (`media.video.read_frames`);
    ``start`` skips the first frames, ``limit`` counts those yielded."""
    from tracknet_cli.media.video import read_frames

    return read_frames(path, size, limit, start=start)


def fill(
    frames: Iterator[np.ndarray], input_size: tuple[int, int], count: int, what: str, out: np.ndarray | None = None
) -> np.ndarray:
    """Write ``count`` canvas frames into ``out`` (a new array by default); too few is an InputError."""
    width, height = input_size
    if out is None:
        out = np.empty((count, height, width, 3), dtype=np.uint8)
    n = 0
    for n, frame in enumerate(frames, start=1):
        out[n - 1] = frame
        if n == count:
            break
    if n < count:
        raise short_clip_error(what, n, count)
    return out


def short_clip_error(what: str, decoded: int, count: int) -> InputError:
    """The one line for a clip whose source holds fewer frames than its labels (decoding and caching)."""
    return InputError(
        f"{what} decodes {decoded} frames but its labels need {count}; re-export it or trim the label file"
    )


# ---------------------------------------------------------------- memory shared by a dataset
class FrameMemory:
    """Byte-bounded LRU of decoded arrays shared by the frame sources of one dataset (per process)."""

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def get(self, key: tuple) -> np.ndarray | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple, value: np.ndarray) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._items[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= evicted.nbytes

    def __len__(self) -> int:
        return len(self._items)


# ---------------------------------------------------------------- per-clip sources
class ClipFrames(Protocol):
    """Random access to one clip's frames in the model canvas: a decoder (`ImageFrames`, `VideoFrames`) or a
    cache file (`ArrayFrames`, `JpegFrames`), whichever `SequenceDataset.frames` hands out."""

    def __len__(self) -> int: ...

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (k, Hi, Wi, 3) for the given frame indices."""
        ...


class ImageFrames:
    """A clip stored as image files: frames decoded on demand, shared through ``FrameMemory``."""

    def __init__(self, key: str, paths: Sequence[Path], codec: "Codec", memory: FrameMemory) -> None:
        self.key, self.paths, self.codec, self.memory = key, list(paths), codec, memory
        self.decodes = 0

    def __len__(self) -> int:
        return len(self.paths)

    def frame(self, index: int) -> np.ndarray:
        cached = self.memory.get((self.key, index))
        if cached is not None:
            return cached
        frame = to_canvas(self.codec, decode_image(self.paths[index], content_size(self.codec)))
        self.decodes += 1
        self.memory.put((self.key, index), frame)
        return frame

    def get(self, indices: Sequence[int]) -> np.ndarray:
        return np.stack([self.frame(int(i)) for i in indices])

    def iter_all(self) -> Iterator[np.ndarray]:
        """Every frame in order (what the on-disk cache stores); bypasses the LRU."""
        for path in self.paths:
            self.decodes += 1
            yield to_canvas(self.codec, decode_image(path, content_size(self.codec)))


class VideoFrames:
    """A clip stored as a video: decoded once, sequentially, into an array held in ``FrameMemory``."""

    def __init__(self, key: str, path: Path, count: int, codec: "Codec", memory: FrameMemory, start: int = 0) -> None:
        self.key, self.path, self.count, self.codec, self.memory = key, path, count, codec, memory
        self.start = start  # frames of the video before the clip's first (a piece of a clip)
        self.decodes = 0

    def __len__(self) -> int:
        return self.count

    def iter_all(self) -> Iterator[np.ndarray]:
        """The clip's frames in decode order, in the canvas; one sequential pass over the video."""
        for frame in iter_video(self.path, content_size(self.codec), limit=self.count, start=self.start):
            self.decodes += 1
            yield to_canvas(self.codec, frame)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        frames = self.memory.get((self.key, "video"))
        if frames is None:
            frames = fill(self.iter_all(), self.codec.input_size, self.count, f"video {self.path}")
            self.memory.put((self.key, "video"), frames)
        return frames[np.asarray(indices, dtype=np.int64)]


@dataclass
class ArrayFrames:
    """Frames already in the canvas, e.g. a memory-mapped cache file."""

    array: np.ndarray
    decodes: int = 0

    def __len__(self) -> int:
        return len(self.array)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        return np.ascontiguousarray(self.array[np.asarray(indices, dtype=np.int64)])

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(frames)``: the (n, Hi, Wi, 3) array itself."""
        return np.asarray(self.array, dtype=dtype)

    def head(self, count: int) -> "ArrayFrames":
        """The first ``count`` frames (a ``data.subset`` run reads a prefix of a longer cache file)."""
        return ArrayFrames(self.array[:count])


def source_frames(
    clip: "Clip", codec: "Codec", memory: FrameMemory, count: int | None = None
) -> ImageFrames | VideoFrames:
    """The decoding source of a clip: its image files when it has them, else its video.

    ``count`` limits the clip to its first frames (``data.subset.max_frames_per_clip``).
    """
    n = len(clip) if count is None else min(count, len(clip))
    if clip.frame_paths is not None:
        return ImageFrames(clip.id, clip.frame_paths[:n], codec, memory)
    if clip.video is not None:
        return VideoFrames(clip.id, Path(clip.video), n, codec, memory, start=clip.start)
    raise InputError(f"clip {clip.id} has neither frame images nor a video")
