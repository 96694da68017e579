"""Sequence and frame datasets: batches, masks, targets under augmentation, decode sharing, loaders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tracknet_cli.config.schema import DataConfig, TrackNetConfig
from tracknet_cli.data.clips import discover_clips
from tracknet_cli.data.datasets import (
    Batch,
    SequenceDataset,
    build_datasets,
    eval_dataset,
    make_loader,
    window_starts,
)
from tracknet_cli.data.geometry import Codec

torch.set_num_threads(1)

SOURCE = (320, 180)
N = 10
NO_BALL, UNKNOWN = 3, 6  # frame 3: visibility 0; frame 6: visibility 1 without coordinates


def ball_xy(i: int) -> tuple[float, float]:
    """Centre (continuous pixels) of the 6x6 white square drawn in frame i."""
    return 40 + 25 * i + 3.0, 60 + 5 * i + 3.0


def write_tennis_clip(folder: Path, n: int = N) -> None:
    """JPEG frames with a white square ball and a tennis-dialect Label.csv, counted by hand above."""
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        img = np.full((SOURCE[1], SOURCE[0], 3), 40, np.uint8)
        x, y = ball_xy(i)
        if i != NO_BALL:
            img[int(y) - 3 : int(y) + 3, int(x) - 3 : int(x) + 3] = 255
        Image.fromarray(img).save(folder / f"{i:04d}.jpg", quality=95)
        if i == NO_BALL:
            rows.append([f"{i:04d}.jpg", 0, "", "", ""])
        elif i == UNKNOWN:
            rows.append([f"{i:04d}.jpg", 1, "", "", 0])
        else:
            rows.append([f"{i:04d}.jpg", 1, x, y, 0])
    with open(folder / "Label.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file name", "visibility", "x-coordinate", "y-coordinate", "status"])
        writer.writerows(rows)


def write_flat_video_clip(folder: Path, name: str = "rally", n: int = 20, size: tuple[int, int] = (160, 90)) -> None:
    """A 20-frame mp4 whose frame i has grey level 20 + 10 i, and a `Frame,Ball,x,y` CSV (frame 4: no ball)."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(folder / f"{name}.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), 20 + 10 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open(folder / f"{name}.csv", "w", newline="") as fh:
        fh.write("Frame,Ball,x,y\n")
        for i in range(n):
            fh.write(f"{i},0,-1.000,-1.000\n" if i == 4 else f"{i},1,{0.1 + 0.04 * i:.3f},0.500\n")


def data_config(root: Path, **kwargs) -> DataConfig:
    base = dict(
        root=root,
        input_width=160,
        input_height=96,
        heatmap_width=80,
        heatmap_height=48,
        sigma=1.5,
        sequence_length=3,
        cache="off",
        augment={"hflip": 0.0},
    )
    base.update(kwargs)
    return DataConfig(**base)


@pytest.fixture
def tennis_root(tmp_path: Path) -> Path:
    write_tennis_clip(tmp_path / "data" / "game1" / "Clip1")
    return tmp_path / "data"


def test_sequence_batches_have_the_contract_shapes_and_dtypes(tennis_root: Path) -> None:
    clips = discover_clips(tennis_root)
    ds = SequenceDataset(clips, data_config(tennis_root))
    assert len(ds) == N - 2  # stride 1, T = 3
    batch = next(iter(make_loader(ds, 4, shuffle=False)))
    assert isinstance(batch, Batch) and len(batch) == 4
    assert batch.frames.shape == (4, 3, 3, 96, 160) and batch.frames.dtype == torch.uint8
    assert batch.heatmaps.shape == (4, 3, 48, 80) and batch.heatmaps.dtype == torch.float32
    assert batch.mask.shape == (4, 3) and batch.mask.dtype == torch.bool
    assert batch.xy.shape == (4, 3, 2) and batch.xy.dtype == torch.float32
    assert batch.visibility.shape == (4, 3) and batch.visibility.dtype == torch.int8
    assert batch.frame_ids.dtype == torch.int64 and batch.frame_ids[1].tolist() == [1, 2, 3]
    assert batch.source_size.tolist() == [[320, 180]] * 4 and batch.clip_ids == ["game1/Clip1"] * 4
    # 320x180 into 160x96: content 160x90, the bottom 6 rows are padding.
    assert batch.frames[:, :, :, 90:].max() == 0 and batch.frames[:, :, :, :90].float().mean() > 30
    moved = batch.to("cpu")
    assert moved.frames.dtype == torch.uint8 and moved.clip_ids == batch.clip_ids


def test_frame_dataset_is_one_frame_per_item(tennis_root: Path) -> None:
    ds = SequenceDataset(discover_clips(tennis_root), data_config(tennis_root), sequence_length=1)
    assert len(ds) == N
    batches = list(make_loader(ds, 4, shuffle=True))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0].frames.shape == (4, 1, 3, 96, 160) and batches[0].heatmaps.shape == (4, 1, 48, 80)
    assert sorted(torch.cat([b.frame_ids[:, 0] for b in batches]).tolist()) == list(range(N))


@pytest.mark.parametrize("policy", ["negative", "mask"])
def test_masking_policies(tennis_root: Path, policy: str) -> None:
    ds = SequenceDataset(
        discover_clips(tennis_root), data_config(tennis_root, no_ball_frames=policy), sequence_length=1
    )
    by_frame = {int(ds[i].frame_ids[0]): ds[i] for i in range(len(ds))}
    no_ball, unknown, ball = by_frame[NO_BALL], by_frame[UNKNOWN], by_frame[0]
    assert no_ball.mask[0] == (policy == "negative")
    assert no_ball.heatmaps.max() == 0 and np.isnan(no_ball.xy).all() and no_ball.visibility[0] == 0
    assert not unknown.mask[0] and unknown.heatmaps.max() == 0 and unknown.visibility[0] == 1
    assert ball.mask[0] and ball.heatmaps.max() > 0.8


def test_targets_decode_back_to_the_labels(tennis_root: Path) -> None:
    ds = SequenceDataset(discover_clips(tennis_root), data_config(tennis_root), sequence_length=1)
    codec = Codec(SOURCE, (160, 96), (80, 48), 1.5)
    for i in range(len(ds)):
        sample = ds[i]
        frame = int(sample.frame_ids[0])
        if frame in (NO_BALL, UNKNOWN):
            continue
        xy, score = codec.decode(sample.heatmaps)
        # One heatmap cell is 4 source pixels; the codec promises under half a cell.
        assert np.abs(xy[0] - np.array(ball_xy(frame))).max() < 2.0
        assert np.allclose(sample.xy[0], ball_xy(frame))


def bright_centroid(frame_hwc: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(frame_hwc.mean(axis=-1) > 150)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


@pytest.mark.parametrize(
    "augment", [{"hflip": 1.0}, {"hflip": 0.5, "scale": 0.3, "translate": 0.1, "color_jitter": 0.2}]
)
def test_augmented_ball_stays_under_its_target(tennis_root: Path, augment: dict) -> None:
    data = data_config(tennis_root, augment=augment)
    ds = SequenceDataset(discover_clips(tennis_root), data, train=True, seed=3)
    codec = Codec(SOURCE, (160, 96), (80, 48), 1.5)
    checked = 0
    for epoch in range(3):
        for i in range(len(ds)):
            sample = ds[(epoch, i)]
            for t in range(3):
                if not sample.mask[t] or sample.heatmaps[t].max() == 0:
                    continue
                ball_in_input = bright_centroid(sample.frames[t])
                target_in_input = codec.source_to_input(codec.decode(sample.heatmaps[t])[0])
                assert np.abs(ball_in_input - target_in_input).max() < 1.5, (epoch, i, t)
                assert np.abs(codec.source_to_input(sample.xy[t]) - ball_in_input).max() < 1.5
                checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    "augment", [{"hflip": 0.5}, {"hflip": 0.5, "scale": 0.3, "zoom_out": 0.5, "color_jitter": 0.2}]
)
def test_training_crops_hold_the_ball_under_its_target(tennis_root: Path, augment: dict) -> None:
    data = data_config(tennis_root, augment={**augment, "crop_width": 48, "crop_height": 32, "crop_ball": 0.75})
    ds = SequenceDataset(discover_clips(tennis_root), data, train=True, seed=3)
    crop = Codec((48, 32), (48, 32), (24, 16), 1.5)  # input 160x96 -> heatmap 80x48: 2 px per cell
    with_ball = without = 0
    for epoch in range(3):
        for i in range(len(ds)):
            sample = ds[(epoch, i)]
            assert sample.frames.shape == (3, 32, 48, 3) and sample.heatmaps.shape == (3, 16, 24)
            for t in range(3):
                if not sample.mask[t]:
                    continue
                if sample.heatmaps[t].max() == 0:
                    without += 1
                    continue
                ball = bright_centroid(sample.frames[t])
                assert np.abs(crop.decode(sample.heatmaps[t])[0] - ball).max() < 1.5, (epoch, i, t)
                with_ball += 1
    assert with_ball > 20 and without > 0  # crops around the ball, and crops the ball is not in


def test_augmentation_is_identical_across_a_window_and_reproducible(tennis_root: Path) -> None:
    data = data_config(tennis_root, augment={"hflip": 0.5, "scale": 0.2, "color_jitter": 0.3})
    ds = SequenceDataset(discover_clips(tennis_root), data, train=True, seed=1)
    plain = SequenceDataset(discover_clips(tennis_root), data, train=False)
    a, b = ds[(2, 4)], ds[(2, 4)]
    assert np.array_equal(a.frames, b.frames)
    assert not all(np.array_equal(ds[(e, 4)].frames, a.frames) for e in range(3, 8))
    # Identical across frames: the window frames differ from the un-augmented ones by the same
    # mapping, so the per-frame background level (flat grey 40 before jitter) is the same for all T.
    background = [np.median(f[30:60, 60:100]) for f in a.frames]
    assert len(set(background)) == 1 and plain[4].frames.shape == a.frames.shape


def test_ball_pushed_off_the_canvas_by_augmentation_is_masked(tennis_root: Path) -> None:
    data = data_config(tennis_root, augment={"hflip": 0.0, "scale": 0.5, "translate": 0.5})
    ds = SequenceDataset(discover_clips(tennis_root), data, train=True, seed=0)
    pushed = 0
    for epoch in range(6):
        for i in range(len(ds)):
            s = ds[(epoch, i)]
            labelled = ~np.isin(s.frame_ids, [NO_BALL, UNKNOWN])
            off = labelled & np.isnan(s.xy).any(axis=1)
            assert not s.mask[off].any() and (s.heatmaps[off] == 0).all()
            pushed += int(off.sum())
    assert pushed > 0


def test_overlapping_windows_decode_each_frame_once(tennis_root: Path) -> None:
    ds = SequenceDataset(discover_clips(tennis_root), data_config(tennis_root))
    for _ in make_loader(ds, 3, shuffle=True):
        pass
    assert ds.decodes == N  # 8 windows x 3 frames = 24 frame reads, 10 decodes


def test_video_clips_in_flat_layout_load_in_decode_order_once(tmp_path: Path) -> None:
    write_flat_video_clip(tmp_path / "flat")
    clips = discover_clips(tmp_path / "flat")
    ds = SequenceDataset(
        clips,
        data_config(
            tmp_path / "flat", input_width=96, input_height=64, heatmap_width=48, heatmap_height=32, window_stride=2
        ),
    )
    assert len(ds) == 9  # starts 0, 2, ..., 16
    batches = list(make_loader(ds, 4, shuffle=True))
    assert ds.decodes == 20
    frames = torch.cat([b.frames for b in batches]).float()
    ids = torch.cat([b.frame_ids for b in batches])
    content = frames[:, :, :, :54].mean(dim=(2, 3, 4))  # 160x90 -> 96x54 content
    assert (content - (20 + 10 * ids)).abs().max() < 3
    masks = torch.cat([b.mask for b in batches])
    xy = torch.cat([b.xy for b in batches])
    assert masks.all()  # frame 4 is "no ball": kept as a negative by default
    four = ids == 4
    assert torch.isnan(xy[four]).all() and not torch.isnan(xy[~four]).any()
    assert torch.allclose(xy[ids == 10][0], torch.tensor([(0.1 + 0.4) * 160, 45.0]), atol=0.01)


def test_eval_windows_cover_every_frame(tennis_root: Path) -> None:
    assert window_starts(10, 3, 3, cover=True) == [0, 3, 6, 7]
    assert window_starts(10, 3, 3) == [0, 3, 6]
    assert window_starts(2, 3, 1, cover=True) == [0] and window_starts(2, 3, 1) == []
    clips = discover_clips(tennis_root)
    short = clips[0].head(2)
    short.id = "short"
    data = data_config(tennis_root)
    ds = eval_dataset([clips[0], short], data, stride=1)
    assert len(ds) == 8 + 1
    covered = {cid: set() for cid in ("game1/Clip1", "short")}
    for batch in make_loader(ds, 4, shuffle=False):
        for cid, ids in zip(batch.clip_ids, batch.frame_ids.tolist()):
            covered[cid].update(ids)
    assert covered == {"game1/Clip1": set(range(N)), "short": {0, 1}}


def test_loader_with_workers_matches_the_main_process(tennis_root: Path) -> None:
    data = data_config(tennis_root, augment={"hflip": 0.5, "color_jitter": 0.3})
    clips = discover_clips(tennis_root)

    def epochs(workers: int) -> list[torch.Tensor]:
        loader = make_loader(
            SequenceDataset(clips, data, train=True, seed=5), 4, shuffle=True, num_workers=workers, seed=5
        )
        return [torch.cat([b.frames.flatten(1).float().sum(1) for b in loader]) for _ in range(2)]

    main, workers = epochs(0), epochs(2)
    assert all(torch.equal(a, b) for a, b in zip(main, workers))
    assert not torch.equal(main[0], main[1])  # a new epoch reshuffles and redraws augmentation


def test_build_datasets_splits_clips_and_applies_the_subset(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for game, clip in [("game1", "Clip1"), ("game1", "Clip2"), ("game2", "Clip1")]:
        write_tennis_clip(root / game / clip)
    config = TrackNetConfig(
        data=data_config(
            root,
            split={"val_ratio": 0.34, "test": ["game2"]},
            subset={"max_frames_per_clip": 7},
            cache="auto",
            cache_format="jpeg",
            cache_dir=tmp_path / "cache",
        )
    )
    train, val, test = build_datasets(config)
    assert [c.id for c in test.clips] == ["game2/Clip1"]
    assert len(train.clips) == 1 and len(val.clips) == 1
    assert {c.id for c in train.clips} | {c.id for c in val.clips} == {"game1/Clip1", "game1/Clip2"}
    assert train.train and not val.train and not test.train
    assert all(len(c) == 7 for c in train.clips + val.clips + test.clips)
    assert len(train) == 5 and len(val) == 3  # val/test: stride T with a last window on the last frame
    assert train.cache is not None and val.cache is not None and test.cache is None
    assert train.cache.format == "jpeg" and val.cache.format == "npy"  # validation reads exact frames


def test_real_badminton_video_clip(realdata: Path) -> None:
    clip = discover_clips(realdata / "badminton-train")[0].head(30)
    data = data_config(
        realdata / "badminton-train", input_width=256, input_height=144, heatmap_width=128, heatmap_height=72
    )
    ds = SequenceDataset([clip], data)
    batches = list(make_loader(ds, 8, shuffle=True))
    assert ds.decodes == 30 and sum(len(b) for b in batches) == 28
    assert batches[0].frames.shape[1:] == (3, 3, 144, 256) and batches[0].source_size[0].tolist() == [640, 360]
    codec = Codec((640, 360), (256, 144), (128, 72), 1.5)
    for batch in batches:
        has = ~torch.isnan(batch.xy[..., 0])
        xy, _ = codec.decode(batch.heatmaps[has].numpy())
        assert np.abs(xy - batch.xy[has].numpy()).max() < 2.5  # half a cell = 2.5 source px


def test_real_handball_frames_mask_visible_without_coordinates(realdata: Path) -> None:
    clip = discover_clips(realdata / "handball-tracknet-layout")[0]
    # 320x180 into 128x72: at most half, so the JPEG draft path decodes at 1/2 scale.
    data = data_config(
        realdata / "handball-tracknet-layout", input_width=128, input_height=72, heatmap_width=64, heatmap_height=36
    )
    ds = SequenceDataset([clip], data, sequence_length=1)
    assert len(ds) == 276
    batch = make_loader(ds, 6, shuffle=False).collate_fn([ds[i] for i in range(180, 186)])
    assert batch.frame_ids[:, 0].tolist() == [180, 181, 182, 183, 184, 185]
    assert batch.mask[:, 0].tolist() == [True, True, False, False, True, True]
    assert batch.visibility[2:4, 0].tolist() == [2, 2]
    assert batch.frames.shape == (6, 1, 3, 72, 128) and batch.frames.float().std() > 10
    assert ds.decodes == 6


def test_videos_too_big_for_memory_spill_to_a_private_folder_and_pickle(tmp_path: Path) -> None:
    import pickle

    write_flat_video_clip(tmp_path / "flat")
    clips = discover_clips(tmp_path / "flat")
    ds = SequenceDataset(clips, data_config(tmp_path / "flat"), memory_bytes=100_000)
    spill = ds._spill.directory
    frames = [ds[i].frames for i in (17, 0, 9, 17)]
    assert ds.decodes == 20 and len(list(spill.glob("*.npy"))) == 1 and len(ds.memory) == 0
    assert np.array_equal(frames[0], frames[3])
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    assert np.array_equal(clone[9].frames, frames[2]) and clone.decodes == 0
    del ds, clone
    import gc

    gc.collect()
    assert not spill.exists()


def test_still_windows_repeat_one_frame_and_its_label(tennis_root: Path) -> None:
    moving = data_config(tennis_root, augment={"hflip": 0.0})
    still = data_config(tennis_root, augment={"hflip": 0.0, "still": 0.5})
    ds = SequenceDataset(discover_clips(tennis_root), still, train=True, seed=2)
    plain = SequenceDataset(discover_clips(tennis_root), moving, train=True, seed=2)
    repeated = 0
    for epoch in range(2):
        for i in range(len(ds)):
            s, p = ds[(epoch, i)], plain[(epoch, i)]
            if len(set(s.frame_ids.tolist())) == 1:
                repeated += 1
                k = int(s.frame_ids[0])
                assert k in p.frame_ids.tolist()  # one frame of the window it replaces
                t = p.frame_ids.tolist().index(k)
                for j in range(3):  # every frame, target and label is that frame's
                    assert np.array_equal(s.frames[j], p.frames[t])
                    assert np.array_equal(s.heatmaps[j], p.heatmaps[t])
                    assert np.array_equal(s.xy[j], p.xy[t], equal_nan=True)
            else:
                assert np.array_equal(s.frames, p.frames) and np.array_equal(s.frame_ids, p.frame_ids)
    windows = 2 * len(ds)
    assert 0.25 * windows < repeated < 0.75 * windows
