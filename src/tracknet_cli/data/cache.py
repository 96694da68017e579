"""On-disk uint8 frame cache at model resolution: decode every frame once, memory-map it every epoch.

One ``.npy`` per clip holds its frames already resized and padded into the input canvas,
``(n, Hi, Wi, 3)`` uint8. The file name carries the clip id, the input size and a hash of the
clip id, source size, input size and the sources' modification times and sizes, so an edited video
or frame folder, or another input size, gets a new file and never a stale one. A file holding at
least the frames a run needs serves it (``data.subset`` runs read a prefix). Writes go to a temp
file in the same folder, then ``os.replace``; a lock file keeps DataLoader workers from building
the same clip twice.

``data.cache``:
- ``off``: never read or write the cache.
- ``auto`` (default): datasets used during training (train and validation, which repeat every
  epoch) build each clip's file the first time the clip is touched, i.e. during the first epoch,
  then memory-map it; evaluation-only datasets do not write. If the cache folder cannot be written
  (or sits in a folder marked read-only, as shared datasets are), auto quietly falls back to
  decoding.
- ``on``: every dataset reads and builds the cache; an unwritable folder is an error.

Where: ``data.cache_dir`` or ``ROOT/.tracknet_cache`` (``ROOT`` = ``data.root``).
Size: ``frames x Hi x Wi x 3`` bytes (8,018 frames at 512x288 = 3.5 GB; at 256x144 = 0.9 GB).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from tracknet_cli.atomic import publish_mode
from tracknet_cli.data.frames import ArrayFrames, FrameMemory, ImageFrames, VideoFrames, fill, source_frames
from tracknet_cli.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import DataConfig
    from tracknet_cli.data.clips import Clip

CACHE_FORMAT = 2  # bump when decoding, resize or padding changes so old files are not reused (2: videos upright)
DIRNAME = ".tracknet_cache"
log = logging.getLogger(__name__)


def default_cache_dir(data: "DataConfig") -> Path:
    return Path(data.cache_dir) if data.cache_dir is not None else Path(data.root) / DIRNAME


def _writable(directory: Path) -> bool:
    """Whether we may create files under ``directory``; a folder marked read-only counts as not,
    even for root (who could write it anyway): shared datasets are marked that way on purpose."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    if not probe.is_dir():
        return False
    mode = probe.stat().st_mode
    return os.access(probe, os.W_OK | os.X_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _source_files(clip: "Clip") -> list[Path]:
    if clip.frame_paths is not None:
        return [Path(p) for p in clip.frame_paths]
    return [Path(clip.video)] if clip.video is not None else []


def clip_key(clip: "Clip", input_size: tuple[int, int]) -> str:
    """Hash of what the cached pixels depend on: id, sources (mtime, size), source and input size."""
    h = hashlib.sha1()
    h.update(f"{CACHE_FORMAT}|{clip.id}|{clip.width}x{clip.height}|{input_size[0]}x{input_size[1]}".encode())
    for path in _source_files(clip):
        try:
            st = path.stat()
        except OSError as exc:
            raise InputError(f"clip {clip.id}: cannot read {path}: {exc.strerror}") from exc
        h.update(f"|{path.name}:{st.st_mtime_ns}:{st.st_size}".encode())
    return h.hexdigest()[:16]


def _safe(clip_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", clip_id).strip("._") or "clip"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: duplicate work is possible but writes stay atomic
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class FrameCache:
    """The cache folder for one input size."""

    directory: Path
    input_size: tuple[int, int]  # (Wi, Hi)
    built: int = 0  # clips this object decoded and wrote (per process)

    def path_for(self, clip: "Clip") -> Path:
        w, h = self.input_size
        return self.directory / f"{_safe(clip.id)}.{w}x{h}.{clip_key(clip, self.input_size)}.npy"

    def load(self, clip: "Clip", count: int) -> np.ndarray | None:
        """The memory-mapped frames when a valid file holds at least ``count`` of them."""
        path = self.path_for(clip)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        w, h = self.input_size
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (h, w, 3) or len(array) < count:
            return None
        return array

    def build(self, clip: "Clip", source: ImageFrames | VideoFrames) -> np.ndarray:
        """Decode the clip once (sequentially) into a new file and memory-map it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the frame cache folder {self.directory}: {exc.strerror}") from exc
        path = self.path_for(clip)
        count = len(source)
        with _locked(path.with_suffix(".lock")):
            existing = self.load(clip, count)
            if existing is not None:  # another worker built it while we waited
                return existing
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy.tmp", dir=self.directory)
            os.close(fd)
            try:
                w, h = self.input_size
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, h, w, 3))
                fill(source.iter_all(), self.input_size, count, f"clip {clip.id}", out=out)
                out.flush()
                del out
                publish_mode(tmp, path)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._prune(clip, keep=path)
            self.built += 1
        path.with_suffix(".lock").unlink(missing_ok=True)
        return np.load(path, mmap_mode="r")

    def frames(self, clip: "Clip", source: ImageFrames | VideoFrames) -> ArrayFrames:
        array = self.load(clip, len(source))
        if array is None:
            array = self.build(clip, source)
        return ArrayFrames(array[: len(source)])

    def _prune(self, clip: "Clip", keep: Path) -> None:
        """Drop this clip's files for the same input size that an edited source made stale."""
        w, h = self.input_size
        for old in self.directory.glob(f"{_safe(clip.id)}.{w}x{h}.*.npy"):
            if old != keep:
                old.unlink(missing_ok=True)


def resolve_cache(data: "DataConfig", *, training: bool) -> FrameCache | None:
    """The cache a dataset should use under ``data.cache`` (see the module docstring)."""
    if data.cache == "off" or (data.cache == "auto" and not training):
        return None
    directory = default_cache_dir(data)
    if not _writable(directory):
        if data.cache == "on":
            raise InputError(
                f"the frame cache folder {directory} is not writable",
                hint="set data.cache_dir to a writable folder or data.cache=off",
            )
        log.info("frame cache disabled: %s is not writable (set data.cache_dir)", directory)
        return None
    return FrameCache(directory, (data.input_width, data.input_height))


@dataclass
class CacheSummary:
    directory: Path
    built: list[str] = field(default_factory=list)  # clip ids decoded and written now
    reused: list[str] = field(default_factory=list)  # clip ids whose file was already valid
    bytes: int = 0  # size of all files for these clips


def build_cache(
    clips: Sequence["Clip"],
    data: "DataConfig",
    *,
    cache_dir: Path | None = None,
    progress: Callable[["Clip", bool], None] | None = None,
) -> CacheSummary:
    """Build (or validate) the cache files of ``clips`` at ``data``'s input size: `tracknet data cache`.

    Honours ``data.subset.max_frames_per_clip`` (a shorter prefix is cached). ``progress(clip,
    built)`` is called after each clip (built False when a valid file was reused). Ignores
    ``data.cache`` (asking for the cache is explicit); an unwritable folder raises InputError.
    """
    from tracknet_cli.data.frames import clip_codec

    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir(data)
    if not _writable(directory):
        raise InputError(
            f"the frame cache folder {directory} is not writable", hint="pass a writable --cache-dir / data.cache_dir"
        )
    cache = FrameCache(directory, (data.input_width, data.input_height))
    summary = CacheSummary(directory)
    limit = data.subset.max_frames_per_clip
    memory = FrameMemory(0)
    for clip in clips:
        source = source_frames(clip, clip_codec(clip, data), memory, limit)
        array = cache.load(clip, len(source))
        built = array is None
        if built:
            array = cache.build(clip, source)
        (summary.built if built else summary.reused).append(clip.id)
        summary.bytes += cache.path_for(clip).stat().st_size
        if progress is not None:
            progress(clip, built)
    return summary
