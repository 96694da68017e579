"""The on-disk uint8 cache: same pixels as decoding, keyed by sources, atomic, and the auto policy."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from test_datasets import N, data_config, write_flat_video_clip, write_tennis_clip

from tracknet_cli.data.cache import FrameCache, build_cache, resolve_cache
from tracknet_cli.data.clips import discover_clips
from tracknet_cli.data.datasets import SequenceDataset
from tracknet_cli.data.jpeg_store import MAGIC
from tracknet_cli.errors import InputError


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    write_tennis_clip(tmp_path / "data" / "game1" / "Clip1")
    write_flat_video_clip(tmp_path / "data" / "flat")
    return tmp_path / "data"


def all_frames(ds: SequenceDataset) -> np.ndarray:
    return np.stack([ds[i].frames for i in range(len(ds))])


def test_cached_frames_equal_decoded_frames(roots: Path, tmp_path: Path) -> None:
    clips = discover_clips(roots)
    assert sorted(c.source for c in clips) == ["images", "video"]
    data = data_config(roots)
    cache = FrameCache(tmp_path / "cache", (160, 96))
    cached = SequenceDataset(clips, data, cache=cache)
    plain = SequenceDataset(clips, data, cache=None)
    assert np.array_equal(all_frames(cached), all_frames(plain))
    assert cache.built == 2 and cached.decodes == N + 20
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and all(f.endswith(".npy") and ".160x96." in f for f in files)
    # A second dataset (a new epoch or run) memory-maps the files and decodes nothing.
    again = SequenceDataset(clips, data, cache=FrameCache(tmp_path / "cache", (160, 96)))
    assert np.array_equal(all_frames(again), all_frames(plain)) and again.decodes == 0
    assert isinstance(np.load(tmp_path / "cache" / files[0], mmap_mode="r"), np.memmap)


def test_edited_source_gets_a_new_file_and_the_stale_one_goes(roots: Path, tmp_path: Path) -> None:
    clip = [c for c in discover_clips(roots) if c.source == "images"][0]
    data = data_config(roots)
    cache = FrameCache(tmp_path / "cache", (160, 96))
    SequenceDataset([clip], data, cache=cache)[0]
    first = cache.path_for(clip)
    os.utime(clip.frame_paths[5], ns=(1, 1))  # the frame changed on disk
    second = cache.path_for(clip)
    assert second != first
    ds = SequenceDataset([clip], data, cache=cache)
    ds[0]
    assert ds.decodes == N and second.exists() and not first.exists()
    assert FrameCache(tmp_path / "cache", (96, 64)).path_for(clip) != second  # input size is in the key


@pytest.mark.parametrize("fmt", ["npy", "jpeg"])
def test_a_longer_cached_clip_serves_a_subset_run(roots: Path, tmp_path: Path, fmt: str) -> None:
    clip = [c for c in discover_clips(roots) if c.source == "video"][0]
    data = data_config(roots, cache_format=fmt)
    full = build_cache([clip], data, cache_dir=tmp_path / "cache")
    cache = FrameCache(tmp_path / "cache", (160, 96), fmt)
    assert full.built == ["flat/rally"] and len(cache.load(clip, 20)) == 20
    assert full.bytes > 20 * 96 * 160 * 3 if fmt == "npy" else full.bytes < 20 * 96 * 160 * 3 / 4
    short = SequenceDataset([clip.head(8)], data, cache=cache)
    assert len(ds_frames := all_frames(short)) == 6 and short.decodes == 0
    assert abs(ds_frames[5, 2, :90].mean() - (20 + 10 * 7)) < 3


def test_build_cache_builds_then_reuses_and_leaves_no_temp_files(roots: Path, tmp_path: Path) -> None:
    clips = discover_clips(roots)
    seen: list[tuple[str, bool]] = []
    data = data_config(roots, cache_format="jpeg")
    first = build_cache(
        clips,
        data,
        cache_dir=tmp_path / "c",
        progress=lambda c, b: seen.append((c.id, b)),
        exact={"game1/Clip1"},  # a validation clip: exact frames
    )
    second = build_cache(clips, data, cache_dir=tmp_path / "c", exact={"game1/Clip1"})
    assert sorted(first.built) == ["flat/rally", "game1/Clip1"] and first.reused == []
    assert second.built == [] and sorted(second.reused) == sorted(first.built) and second.bytes == first.bytes
    assert sorted(seen) == [("flat/rally", True), ("game1/Clip1", True)]
    files = sorted((p.suffix, p.name.split(".")[0]) for p in (tmp_path / "c").iterdir())
    assert files == [(".jpgs", "flat_rally"), (".npy", "game1_Clip1")]  # no .tmp, no .lock


def test_auto_policy_caches_training_data_only_and_respects_read_only_folders(roots: Path, tmp_path: Path) -> None:
    auto = data_config(roots, cache="auto", cache_dir=tmp_path / "cache")
    assert resolve_cache(auto, training=False) is None
    assert resolve_cache(auto, training=True).directory == tmp_path / "cache"
    # Training reads data.cache_format (raw npy by default); validation (exact, the default) always raw frames.
    jpeg = auto.model_copy(update={"cache_format": "jpeg"})
    assert resolve_cache(auto, training=True, exact=False).format == "npy"
    assert resolve_cache(jpeg, training=True, exact=False).format == "jpeg"
    assert resolve_cache(jpeg, training=True).format == "npy"
    assert resolve_cache(data_config(roots, cache="auto"), training=True).directory == roots / ".tracknet_cache"
    assert resolve_cache(data_config(roots, cache="on", cache_dir=tmp_path / "c"), training=False) is not None
    assert resolve_cache(data_config(roots, cache="off"), training=True) is None

    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert resolve_cache(data_config(roots, cache="auto", cache_dir=locked / "cache"), training=True) is None
        with pytest.raises(InputError, match="not writable"):
            resolve_cache(data_config(roots, cache="on", cache_dir=locked / "cache"), training=True)
        with pytest.raises(InputError, match="not writable"):
            build_cache(discover_clips(roots), data_config(roots), cache_dir=locked)
    finally:
        locked.chmod(stat.S_IRWXU)

    train = SequenceDataset(discover_clips(roots), auto, train=True)
    train[0]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # built lazily, on first touch of the clip
    train = SequenceDataset(discover_clips(roots), jpeg, train=True)
    train[0]
    assert len(list((tmp_path / "cache").glob("*.jpgs"))) == 1  # a JPEG file beside the raw one


def _jpeg_cache_checks(path: Path, raw_bytes: int) -> None:
    """The file is the JPEG layout: magic, then frames that each start and end like a JPEG, much smaller than raw."""
    data = path.read_bytes()
    assert data.startswith(MAGIC) and path.suffix == ".jpgs"
    count = int(np.frombuffer(data[8:16], "<i8")[0])
    offsets = np.frombuffer(data[32 : 32 + 8 * (count + 1)], "<i8")
    assert offsets[-1] == len(data) and len(data) * 4 < raw_bytes
    assert all(data[a : a + 2] == b"\xff\xd8" and data[b - 2 : b] == b"\xff\xd9" for a, b in zip(offsets, offsets[1:]))


def test_jpeg_cache_is_jpeg_much_smaller_and_close_to_decoding(roots: Path, tmp_path: Path) -> None:
    clips = discover_clips(roots)
    data = data_config(roots)
    cache = FrameCache(tmp_path / "cache", (160, 96), "jpeg")
    cached = all_frames(SequenceDataset(clips, data, cache=cache))
    plain = all_frames(SequenceDataset(clips, data, cache=None))
    diff = np.abs(cached.astype(np.int16) - plain)
    assert cache.built == 2 and diff.mean() < 1.5 and np.percentile(diff, 99) <= 12
    for clip in clips:
        _jpeg_cache_checks(cache.path_for(clip), len(clip) * 96 * 160 * 3)
    again = SequenceDataset(clips, data, cache=FrameCache(tmp_path / "cache", (160, 96), "jpeg"))
    assert np.array_equal(all_frames(again), cached) and again.decodes == 0  # read back, not rebuilt


def test_real_video_jpeg_cache_is_about_9x_smaller_than_raw(realdata: Path, tmp_path: Path) -> None:
    root = realdata / "badminton-train"
    clip = discover_clips(root)[0].head(60)
    data = data_config(root, input_width=512, input_height=288, heatmap_width=256, heatmap_height=144)
    jpeg, raw = (FrameCache(tmp_path / "cache", (512, 288), fmt) for fmt in ("jpeg", "npy"))
    ds = {fmt: SequenceDataset([clip], data, cache=c, sequence_length=1) for fmt, c in (("jpeg", jpeg), ("npy", raw))}
    diff = np.abs(all_frames(ds["jpeg"]).astype(np.int16) - all_frames(ds["npy"]))
    sizes = {c.format: c.path_for(clip).stat().st_size for c in (jpeg, raw)}
    assert sizes["jpeg"] * 5 < sizes["npy"] and diff.mean() < 3
    _jpeg_cache_checks(jpeg.path_for(clip), sizes["npy"])


def test_stale_format_or_damaged_files_are_not_reused(roots: Path, tmp_path: Path, monkeypatch) -> None:
    from tracknet_cli.data import cache as cache_module

    clip = [c for c in discover_clips(roots) if c.source == "images"][0]
    data = data_config(roots)
    jpeg, raw = (FrameCache(tmp_path / "cache", (160, 96), fmt) for fmt in ("jpeg", "npy"))
    monkeypatch.setattr(cache_module, "CACHE_FORMAT", 2)  # raw uint8 files, before JPEG
    old = raw.path_for(clip)
    SequenceDataset([clip], data, cache=raw)[0]
    monkeypatch.undo()
    assert old.exists() and jpeg.path_for(clip) != old and raw.path_for(clip) != old
    current_raw = SequenceDataset([clip], data, cache=FrameCache(tmp_path / "cache", (160, 96)))
    current_raw[0]
    assert current_raw.decodes == N and not old.exists()  # a stale format is rebuilt and pruned
    ds = SequenceDataset([clip], data, cache=jpeg)
    ds[0]
    assert ds.decodes == N and raw.path_for(clip).exists()  # the current file of the other format stays
    path = jpeg.path_for(clip)
    for damage in (lambda b: b[:-10], lambda b: b"NOTJPEG!" + b[8:], lambda b: raw.path_for(clip).read_bytes()):
        path.write_bytes(damage(path.read_bytes()))
        assert jpeg.load(clip, N) is None  # truncated, foreign or raw bytes are never decoded as JPEG
        rebuilt = SequenceDataset([clip], data, cache=jpeg)
        rebuilt[0]
        assert rebuilt.decodes == N and jpeg.load(clip, N) is not None
    data = bytearray(path.read_bytes())
    first = int(np.frombuffer(bytes(data[32:40]), "<i8")[0])
    data[first : first + 4] = b"XXXX"  # a frame's bytes damaged behind a valid index: one clear error
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="cannot be decoded"):
        jpeg.load(clip, N).get([0, 1])
