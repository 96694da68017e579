"""On-disk frame cache at model resolution: decode every frame once, read it cheaply every epoch.

One file per clip holds its frames already resized and padded into the input canvas, in one of two
formats (``data.cache_format``):

- ``npy`` (default): raw ``(n, Hi, Wi, 3)`` uint8, memory-mapped: exact, and nothing to decode.
  Datasets that measure a model (validation, test, eval) always read this format, so validation
  sees the pixels predict decodes.
- ``jpeg`` (training clips only): quality-95 JPEGs in one file with an offsets index
  (``data.jpeg_store``): about 53 KB a frame at 512x288 instead of 442 KB, but each read decodes
  (~0.8 ms a frame, 3 a window). Not the default because that decoding cost the fast CPU model
  about 9-12 % of its samples/s on a busy 2-core machine (docs/datasets/loading.md, "Cache formats");
  worth it when the raw files would not fit the disk or the page cache.

The file name carries the clip id, the input size and a hash of ``CACHE_FORMAT``, the file format,
the clip id, source size, input size and the sources' modification times and sizes, so an edited
video or frame folder, another input size or an older layout gets a new file and never a stale one
(stale files of the clip are deleted when a new one is written). A file holding at least the frames
a run needs serves it (``data.subset`` runs read a prefix). Writes go to a temp file in the same
folder, then ``os.replace``; a lock file keeps DataLoader workers from building the same clip twice.

``data.cache``:
- ``off``: never read or write the cache.
- ``auto`` (default): datasets used during training (train and validation, which repeat every
  epoch) build each clip's file the first time the clip is touched, i.e. during the first epoch,
  then read it; evaluation-only datasets do not write. If the cache folder cannot be written
  (or sits in a folder marked read-only, as shared datasets are), auto quietly falls back to
  decoding.
- ``on``: every dataset reads and builds the cache; an unwritable folder is an error.

Where: ``data.cache_dir`` or ``ROOT/.tracknet_cache`` (``ROOT`` = ``data.root``).
Size at 512x288: raw ``frames x Hi x Wi x 3`` bytes (8,018 badminton frames: 3.5 GB); JPEG ~53 KB
a frame (the same frames: 427 MB).
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
from typing import TYPE_CHECKING, Callable, Collection, Iterator, Literal, Sequence

import numpy as np

from tracknet_cli.atomic import publish_mode
from tracknet_cli.data.frames import ArrayFrames, FrameMemory, ImageFrames, VideoFrames, fill, source_frames
from tracknet_cli.data.jpeg_store import JpegFrames, open_jpegs, write_jpegs
from tracknet_cli.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import DataConfig
    from tracknet_cli.data.clips import Clip

CACHE_FORMAT = 3  # bump when decoding, resize, padding or a file layout changes (2: videos upright; 3: JPEG files)
DIRNAME = ".tracknet_cache"
SUFFIXES = {"npy": ".npy", "jpeg": ".jpgs"}  # file format -> file name suffix
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


def clip_key(clip: "Clip", input_size: tuple[int, int], file_format: str = "npy") -> str:
    """Hash of what the cached bytes depend on: format, id, sources (mtime, size), source and input size."""
    digest = hashlib.sha1()
    width, height = input_size
    digest.update(f"{CACHE_FORMAT}|{file_format}|{clip.id}|{clip.width}x{clip.height}|{width}x{height}".encode())
    for path in _source_files(clip):
        try:
            st = path.stat()
        except OSError as exc:
            raise InputError(f"clip {clip.id}: cannot read {path}: {exc.strerror}") from exc
        digest.update(f"|{path.name}:{st.st_mtime_ns}:{st.st_size}".encode())
    return digest.hexdigest()[:16]


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


def _load_npy(path: Path, input_size: tuple[int, int], count: int) -> ArrayFrames | None:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    w, h = input_size
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (h, w, 3) or len(array) < count:
        return None
    return ArrayFrames(array)


def _write_npy(tmp: str, source: ImageFrames | VideoFrames, input_size: tuple[int, int], what: str) -> None:
    w, h = input_size
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(source), h, w, 3))
    fill(source.iter_all(), input_size, len(source), what, out=out)
    out.flush()
    del out


@dataclass
class FrameCache:
    """The cache folder for one input size and file format: ``npy`` holds exact frames, memory-mapped;
    ``jpeg`` quality-95 JPEGs, about 9x smaller, decoded on read (``data.jpeg_store``)."""

    directory: Path
    input_size: tuple[int, int]  # (Wi, Hi)
    format: Literal["npy", "jpeg"] = "npy"
    built: int = 0  # clips this object decoded and wrote (per process)

    def path_for(self, clip: "Clip", file_format: str | None = None) -> Path:
        fmt = file_format or self.format
        w, h = self.input_size
        return self.directory / f"{_safe(clip.id)}.{w}x{h}.{clip_key(clip, self.input_size, fmt)}{SUFFIXES[fmt]}"

    def load(self, clip: "Clip", count: int) -> ArrayFrames | JpegFrames | None:
        """The clip's frames when a valid file holds at least ``count`` of them."""
        if self.format == "jpeg":
            return open_jpegs(self.path_for(clip), self.input_size, count)
        return _load_npy(self.path_for(clip), self.input_size, count)

    def build(self, clip: "Clip", source: ImageFrames | VideoFrames) -> ArrayFrames | JpegFrames:
        """Decode the clip once (sequentially) into a new file and open it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the frame cache folder {self.directory}: {exc.strerror}") from exc
        path = self.path_for(clip)
        with _locked(path.with_suffix(".lock")):
            existing = self.load(clip, len(source))
            if existing is not None:  # another worker built it while we waited
                return existing
            self._write(path, clip, source)
            self._prune(clip)
            self.built += 1
        path.with_suffix(".lock").unlink(missing_ok=True)
        frames = self.load(clip, len(source))
        if frames is None:
            raise InputError(f"the frame cache file {path} cannot be read back (was it removed?)")
        return frames

    def _write(self, path: Path, clip: "Clip", source: ImageFrames | VideoFrames) -> None:
        """Write to a temp file in the same folder, then rename: readers never see half a file."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=self.directory)
        try:
            if self.format == "jpeg":
                with os.fdopen(fd, "wb") as handle:
                    write_jpegs(handle, source.iter_all(), self.input_size, len(source), f"clip {clip.id}")
            else:
                os.close(fd)
                _write_npy(tmp, source, self.input_size, f"clip {clip.id}")
            publish_mode(tmp, path)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def frames(self, clip: "Clip", source: ImageFrames | VideoFrames) -> ArrayFrames | JpegFrames:
        frames = self.load(clip, len(source))
        if frames is None:
            frames = self.build(clip, source)
        return frames.head(len(source))

    def _prune(self, clip: "Clip") -> None:
        """Drop this clip's files for this input size that an edited source or an older CACHE_FORMAT
        made stale, in either format (the current file of the other format stays)."""
        w, h = self.input_size
        keep = {self.path_for(clip, fmt) for fmt in SUFFIXES}
        for old in self.directory.glob(f"{_safe(clip.id)}.{w}x{h}.*"):
            if old.suffix in SUFFIXES.values() and old not in keep:
                old.unlink(missing_ok=True)


def resolve_cache(data: "DataConfig", *, training: bool, exact: bool = True) -> FrameCache | None:
    """The cache a dataset should use under ``data.cache`` (see the module docstring).

    ``exact``: the dataset measures a model (validation, eval), so it reads the exact ``npy`` frames
    predict would decode; training datasets (``exact=False``) get ``data.cache_format``."""
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
    return FrameCache(directory, (data.input_width, data.input_height), "npy" if exact else data.cache_format)


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
    exact: Collection[str] = (),
) -> CacheSummary:
    """Build (or validate) the cache files of ``clips`` at ``data``'s input size: `tracknet data cache`.

    Clips whose id is in ``exact`` (validation and test: they measure a model) get exact ``npy``
    files, the others ``data.cache_format``, as training reads them. Honours
    ``data.subset.max_frames_per_clip`` (a shorter prefix is cached). ``progress(clip, built)`` is
    called after each clip (built False when a valid file was reused). Ignores ``data.cache`` (asking
    for the cache is explicit); an unwritable folder raises InputError.
    """
    from tracknet_cli.data.frames import clip_codec

    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir(data)
    if not _writable(directory):
        raise InputError(
            f"the frame cache folder {directory} is not writable", hint="set data.cache_dir to a writable folder"
        )
    size = (data.input_width, data.input_height)
    caches = {fmt: FrameCache(directory, size, fmt) for fmt in ("npy", data.cache_format)}
    summary = CacheSummary(directory)
    limit = data.subset.max_frames_per_clip
    memory = FrameMemory(0)
    for clip in clips:
        cache = caches["npy" if clip.id in exact else data.cache_format]
        source = source_frames(clip, clip_codec(clip, data), memory, limit)
        built = cache.load(clip, len(source)) is None
        if built:
            cache.build(clip, source)
        (summary.built if built else summary.reused).append(clip.id)
        summary.bytes += cache.path_for(clip).stat().st_size
        if progress is not None:
            progress(clip, built)
    return summary
