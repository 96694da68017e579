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


def test_a_longer_cached_clip_serves_a_subset_run(roots: Path, tmp_path: Path) -> None:
    clip = [c for c in discover_clips(roots) if c.source == "video"][0]
    data = data_config(roots)
    full = build_cache([clip], data, cache_dir=tmp_path / "cache")
    assert full.built == ["flat/rally"] and full.bytes > 20 * 96 * 160 * 3
    short = SequenceDataset([clip.head(8)], data, cache=FrameCache(tmp_path / "cache", (160, 96)))
    assert len(ds_frames := all_frames(short)) == 6 and short.decodes == 0
    assert abs(ds_frames[5, 2, :90].mean() - (20 + 10 * 7)) < 3


def test_build_cache_builds_then_reuses_and_leaves_no_temp_files(roots: Path, tmp_path: Path) -> None:
    clips = discover_clips(roots)
    seen: list[tuple[str, bool]] = []
    first = build_cache(
        clips, data_config(roots), cache_dir=tmp_path / "c", progress=lambda c, b: seen.append((c.id, b))
    )
    second = build_cache(clips, data_config(roots), cache_dir=tmp_path / "c")
    assert sorted(first.built) == ["flat/rally", "game1/Clip1"] and first.reused == []
    assert second.built == [] and sorted(second.reused) == sorted(first.built) and second.bytes == first.bytes
    assert sorted(seen) == [("flat/rally", True), ("game1/Clip1", True)]
    assert sorted(p.suffix for p in (tmp_path / "c").iterdir()) == [".npy", ".npy"]  # no .tmp, no .lock


def test_auto_policy_caches_training_data_only_and_respects_read_only_folders(roots: Path, tmp_path: Path) -> None:
    auto = data_config(roots, cache="auto", cache_dir=tmp_path / "cache")
    assert resolve_cache(auto, training=False) is None
    assert resolve_cache(auto, training=True).directory == tmp_path / "cache"
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
