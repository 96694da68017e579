"""Windows of consecutive frames with one heatmap target per frame, and the batches they form.

Loss masking (``Sample.mask``: does this frame count in the loss):
- ball frames (state 1) always count;
- no-ball frames (state 0) count with an all-zero target under ``data.no_ball_frames: negative``
  (default, as the published trackers train) and are masked under ``mask``;
- unknown frames (state -1: visible without coordinates, outside the image, no label row) are
  always masked;
- a ball that augmentation (crop / shift) moves off the canvas is treated as unknown and masked,
  not as "no ball": the ball was there, and teaching the model to ignore balls at the border is
  worse than losing one frame of signal.

Augmentation (training datasets only) draws once per window from a generator seeded by
``(seed, epoch, index)``, so a run is reproducible whatever the number of DataLoader workers;
``EpochSampler`` carries the epoch to the workers inside each index.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from tracknet_cli.data.cache import FrameCache, resolve_cache
from tracknet_cli.data.frames import (
    DEFAULT_MEMORY_BYTES,
    ClipFrames,
    FrameMemory,
    VideoFrames,
    clip_codec,
    source_frames,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.utils.data import DataLoader

    from tracknet_cli.config.schema import DataConfig, TrackNetConfig
    from tracknet_cli.data.clips import Clip
    from tracknet_cli.data.geometry import Codec


# ---------------------------------------------------------------- samples and batches
@dataclass
class Sample:
    """One window, as numpy (what a worker returns)."""

    frames: np.ndarray  # uint8 (T, Hi, Wi, 3)
    heatmaps: np.ndarray  # float32 (T, Hh, Wh)
    mask: np.ndarray  # bool (T,)
    xy: np.ndarray  # float32 (T, 2) source pixels, NaN none
    visibility: np.ndarray  # int8 (T,)
    clip_id: str
    frame_ids: np.ndarray  # int64 (T,)
    source_size: tuple[int, int]  # (W, H)


@dataclass
class Batch:
    """A collated batch (see docs/architecture.md). Frames stay uint8; the training loop divides by 255."""

    frames: "torch.Tensor"  # uint8 (B, T, 3, Hi, Wi)
    heatmaps: "torch.Tensor"  # float32 (B, T, Hh, Wh)
    mask: "torch.Tensor"  # bool (B, T)
    xy: "torch.Tensor"  # float32 (B, T, 2)
    visibility: "torch.Tensor"  # int8 (B, T)
    clip_ids: list[str]
    frame_ids: "torch.Tensor"  # int64 (B, T)
    source_size: "torch.Tensor"  # int64 (B, 2)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def to(self, device: Any, non_blocking: bool = False) -> "Batch":
        """Move every tensor to ``device`` (dtypes unchanged)."""
        import torch

        moved = {
            f.name: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return Batch(**moved)

    def pin_memory(self) -> "Batch":
        """Lets ``DataLoader(pin_memory=True)`` pin a custom batch type."""
        import torch

        return Batch(
            **{
                f.name: (v.pin_memory() if isinstance(v, torch.Tensor) else v)
                for f in fields(self)
                for v in [getattr(self, f.name)]
            }
        )


def collate(samples: Sequence[Sample]) -> Batch:
    import torch

    t, h, w, _ = samples[0].frames.shape
    frames = np.empty((len(samples), t, 3, h, w), np.uint8)
    for i, s in enumerate(samples):  # HWC -> CHW in numpy: 2x faster than torch's uint8 permute copy
        frames[i] = s.frames.transpose(0, 3, 1, 2)
    return Batch(
        frames=torch.from_numpy(frames),
        heatmaps=torch.from_numpy(np.stack([s.heatmaps for s in samples])),
        mask=torch.from_numpy(np.stack([s.mask for s in samples])),
        xy=torch.from_numpy(np.stack([s.xy for s in samples]).astype(np.float32)),
        visibility=torch.from_numpy(np.stack([s.visibility for s in samples])),
        clip_ids=[s.clip_id for s in samples],
        frame_ids=torch.from_numpy(np.stack([s.frame_ids for s in samples])),
        source_size=torch.tensor([s.source_size for s in samples], dtype=torch.int64),
    )


# ---------------------------------------------------------------- windows
def window_starts(n_frames: int, length: int, stride: int, *, cover: bool = False) -> list[int]:
    """First frames of the windows of a clip.

    Training (``cover`` False): every ``stride`` frames while a whole window fits; a clip shorter
    than the window has none. Evaluation (``cover`` True): the same plus one window ending on the
    last frame, and one window for a clip shorter than ``length`` (its indices repeat the last frame),
    so every frame is covered at least once.
    """
    if n_frames <= 0:
        return []
    starts = list(range(0, max(n_frames - length, -1) + 1, stride))
    if cover:
        last = max(n_frames - length, 0)
        if not starts or starts[-1] != last:
            starts.append(last)
    return starts


def window_indices(start: int, length: int, n_frames: int) -> np.ndarray:
    """Frame indices of a window; a window past the end of a short clip repeats its last frame."""
    return np.minimum(np.arange(start, start + length, dtype=np.int64), n_frames - 1)


_CONFIG = "config"


class SequenceDataset:
    """Windows of ``T`` consecutive frames from a list of clips, one target per frame.

    ``cache``: a ``FrameCache``, ``"config"`` (default) to follow ``data.cache``, or ``None``:
    decode, sharing decodes between windows through an LRU of ``memory_bytes`` per process.
    A video clip is decoded whole, once, into that LRU; when the video clips together would not
    fit, they go to a private cache folder in the system temp dir instead, removed with the dataset.
    Items are ``Sample``; ``dataset[(epoch, i)]`` seeds augmentation with that epoch. A plain
    map-style dataset (torch's DataLoader needs no base class), so importing it does not import torch.
    """

    def __init__(
        self,
        clips: Sequence["Clip"],
        data: "DataConfig",
        *,
        train: bool = False,
        sequence_length: int | None = None,
        window_stride: int | None = None,
        cover: bool = False,
        cache: FrameCache | None | Literal["config"] = _CONFIG,
        seed: int = 0,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
    ) -> None:
        self.clips = list(clips)
        self.data = data
        self.train = train
        self.length = int(sequence_length if sequence_length is not None else data.sequence_length)
        self.stride = int(window_stride if window_stride is not None else data.window_stride)
        self.cover = cover
        self.cache = resolve_cache(data, training=train, exact=not train) if isinstance(cache, str) else cache
        self.seed = seed
        self.epoch = 0  # used by plain integer indexing; EpochSampler passes the epoch explicitly
        self.memory = FrameMemory(memory_bytes)
        self.codecs = [clip_codec(c, data) for c in self.clips]
        pairs = [
            (ci, s)
            for ci, c in enumerate(self.clips)
            for s in window_starts(len(c), self.length, self.stride, cover=cover)
        ]
        self._clip_index = np.asarray([p[0] for p in pairs], dtype=np.int64)
        self._starts = np.asarray([p[1] for p in pairs], dtype=np.int64)
        self._sources: dict[int, Any] = {}  # clip index -> what frames are read from
        self._decoders: dict[int, Any] = {}  # clip index -> its image/video decoder
        self._spill: FrameCache | None = None
        wi, hi = data.input_width, data.input_height
        video_bytes = sum(len(c) * wi * hi * 3 for c in self.clips if c.frame_paths is None)
        if self.cache is None and video_bytes > memory_bytes:
            # Decoded videos would not fit in memory and shuffled windows would decode whole clips
            # again and again: keep them in a private cache folder removed with the dataset.
            spill = tempfile.mkdtemp(prefix="tracknet-frames-")
            self._spill = FrameCache(Path(spill), (wi, hi))
            self._spill_owner = weakref.finalize(self, shutil.rmtree, spill, True)

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def decodes(self) -> int:
        """Frames decoded from images or videos by this process so far (cache hits decode nothing)."""
        return sum(s.decodes for s in self._decoders.values())

    def window(self, index: int) -> tuple["Clip", np.ndarray]:
        """The clip and frame indices of window ``index``."""
        ci = int(self._clip_index[index])
        clip = self.clips[ci]
        return clip, window_indices(int(self._starts[index]), self.length, len(clip))

    def frames(self, clip_index: int) -> ClipFrames:
        """This process's frame source of a clip (a cache file, or a decoder sharing ``memory``)."""
        source = self._sources.get(clip_index)
        if source is None:
            clip = self.clips[clip_index]
            decoder = source_frames(clip, self.codecs[clip_index], self.memory)
            self._decoders[clip_index] = decoder
            if self.cache is not None:
                source = self.cache.frames(clip, decoder)
            elif self._spill is not None and isinstance(decoder, VideoFrames):
                source = self._spill.frames(clip, decoder)
            else:
                source = decoder
            self._sources[clip_index] = source
        return source

    def __getstate__(self) -> dict[str, Any]:
        """Workers started by pickling get the clips and settings, not this process's decoded frames."""
        state = dict(self.__dict__)
        state.pop("_spill_owner", None)
        state["_sources"], state["_decoders"] = {}, {}
        state["memory"] = FrameMemory(self.memory.max_bytes)
        return state

    def __getitem__(self, item: int | tuple[int, int]) -> Sample:
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} of {len(self)}")
        ci = int(self._clip_index[index])
        clip, codec = self.clips[ci], self.codecs[ci]
        idx = window_indices(int(self._starts[index]), self.length, len(clip))
        if self.train and self.data.augment.still > 0:
            idx = self._still(idx, epoch, index)
        frames = self.frames(ci).get(idx)
        labels = clip.labels
        state = labels.state[idx].astype(np.int8)
        xy = np.stack([labels.x[idx], labels.y[idx]], axis=-1).astype(np.float64)
        xy[state != 1] = np.nan
        if self.train:
            frames, xy, state, heatmaps = self._augment(frames, xy, state, codec, epoch, index)
        else:
            heatmaps = codec.encode(xy)
        mask = state == 1
        if self.data.no_ball_frames == "negative":
            mask |= state == 0
        return Sample(
            frames=frames,
            heatmaps=heatmaps,
            mask=mask,
            xy=xy.astype(np.float32),
            visibility=labels.visibility[idx].astype(np.int8),
            clip_id=clip.id,
            frame_ids=idx,
            source_size=(clip.width, clip.height),
        )

    def _still(self, idx: np.ndarray, epoch: int, index: int) -> np.ndarray:
        """With probability ``augment.still``, one frame of the window repeated T times (its label with it).

        Its own random stream, so runs without it draw the same augmentations as before it existed."""
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        if rng.random() >= self.data.augment.still:
            return idx
        return np.full_like(idx, idx[rng.integers(len(idx))])

    def _augment(self, frames: np.ndarray, xy: np.ndarray, state: np.ndarray, codec: "Codec", epoch: int, index: int):
        from tracknet_cli.data.augment import augment_crop_window, augment_window

        rng = np.random.default_rng([self.seed, epoch, index])
        a, crop = self.data.augment, self.data.crop_size()
        if crop is not None:
            cell = (
                self.data.input_width // self.data.heatmap_width,
                self.data.input_height // self.data.heatmap_height,
            )
            out, state, corner = augment_crop_window(
                frames, codec.source_to_input(xy), state, a, crop, cell, 2.0 * self.data.sigma * max(cell), rng
            )
            crop_codec = replace(codec, input_size=crop, heatmap_size=(crop[0] // cell[0], crop[1] // cell[1]))
            heatmaps = crop_codec.encode_heatmap(crop_codec.input_to_heatmap(out.xy))
            # xy stays in the (augmented) frame's source pixels: the ball inside the crop, NaN elsewhere
            return out.frames, codec.input_to_source(out.xy + np.asarray(corner, np.float64)), state, heatmaps
        out = augment_window(frames, codec.source_to_input(xy), a, rng)
        state = np.where(out.outside, np.int8(-1), state).astype(np.int8)
        heatmaps = codec.encode_heatmap(codec.input_to_heatmap(out.xy))
        return out.frames, codec.input_to_source(out.xy), state, heatmaps


def eval_dataset(
    clips: Sequence["Clip"],
    data: "DataConfig",
    *,
    stride: int | None = None,
    cache: FrameCache | None | Literal["config"] = None,
) -> SequenceDataset:
    """Every frame of every clip covered by windows of ``data.sequence_length``.

    Validation and ``tracknet eval`` read only its clips, codecs and frame sources: the inference
    engine makes its own windows (``inference.engine``). As a map-style dataset, ``stride`` T
    (default) covers each frame once, except the last window of a clip, which ends on its last
    frame and may overlap the one before.
    """
    length = data.sequence_length
    return SequenceDataset(clips, data, train=False, window_stride=stride or length, cover=True, cache=cache)


# ---------------------------------------------------------------- building and loading
def build_datasets(config: "TrackNetConfig") -> tuple[SequenceDataset, SequenceDataset, SequenceDataset]:
    """(train, val, test) from ``data.root``: discovery, clip-level split, then subset.

    Train windows follow ``data.sequence_length`` / ``data.window_stride`` with augmentation;
    validation and test are whole clips for the inference engine (``eval_dataset``). Under ``data.cache:
    auto`` train and validation (both read every epoch) use the on-disk cache, test does not; train
    in ``data.cache_format``, validation in the exact ``npy`` format (it measures what predict computes).
    A split with no clips gives an empty dataset.
    """
    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.splits import apply_subset, split_clips

    data = config.data
    splits = apply_subset(split_clips(discover_clips(data.root), data.split), data.subset)
    train = SequenceDataset(splits.train, data, train=True, cache=_CONFIG, seed=config.training.seed)
    val = eval_dataset(splits.val, data, cache=resolve_cache(data, training=True))
    test = eval_dataset(splits.test, data, cache=resolve_cache(data, training=False))
    return train, val, test


def check_training_data(config: "TrackNetConfig") -> list[Any]:
    """What `build_datasets` would refuse, checked before a run directory exists (so a bad
    ``data.root`` leaves nothing behind): the folder, its clips, a non-empty training split.

    Returns the problems of the files under ``data.root`` that could not become clips (an
    unreadable video, unreadable labels): training leaves those clips out, the caller says so."""
    from tracknet_cli.data.clips import scan
    from tracknet_cli.data.splits import apply_subset, split_clips
    from tracknet_cli.errors import ConfigError

    data = config.data
    found = scan(Path(data.root))
    splits = apply_subset(split_clips(found.clips, data.split), data.subset)
    if not splits.train:
        raise ConfigError(f"no training clips in {data.root}: check data.split and data.subset")
    return list(found.problems)


class EpochSampler:
    """Yields ``(epoch, index)`` so augmentation seeds reach persistent workers; the epoch advances
    each time iteration starts (``set_epoch`` to resume). Shuffles with ``(seed, epoch)``.

    With ``world_size`` > 1 (DistributedDataParallel) every rank draws the same permutation, pads it by
    repeating its start to a multiple of ``world_size`` and takes every ``world_size``-th index from
    ``rank`` (like torch's DistributedSampler): all ranks see the same number of batches, together
    they see every window, and ``skip`` counts this rank's samples, so a resume stays exact."""

    def __init__(
        self, size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, epoch
        self.rank, self.world_size = rank, world_size
        self.per_rank = -(-size // world_size)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The epoch the next iteration uses, and how many of its first samples to leave out
        (a run resumed mid-epoch continues with exactly the samples it had not seen)."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)

    def __iter__(self):
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = self.epoch + 1, 0
        order = (
            np.random.default_rng([self.seed, epoch]).permutation(self.size) if self.shuffle else np.arange(self.size)
        )
        if self.world_size > 1 and self.size:
            order = np.resize(order, self.per_rank * self.world_size)[self.rank :: self.world_size]
        for index in list(order)[skip:]:
            yield (epoch, int(index))


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # workers decode; compute threads belong to the main process


def make_loader(
    dataset: SequenceDataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> "DataLoader":
    """A DataLoader of ``Batch`` that does not starve compute on a small machine.

    ``num_workers`` 0 (default) loads in the main process: on 2 cores a worker competes with the
    model for the same CPU. With workers: persistent (caches and memory-maps survive epochs), one
    torch thread each. The sampler is ``loader.sampler`` (an ``EpochSampler``; ``rank``/``world_size``
    shard it for DistributedDataParallel).
    """
    from torch.utils.data import DataLoader

    workers = num_workers > 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size),
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
        drop_last=drop_last,
        pin_memory=pin_memory,  # CUDA: page-locked batches, so the copy to the GPU is asynchronous
    )
