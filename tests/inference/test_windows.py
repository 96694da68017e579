"""Streaming windows and heatmap averaging against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracknet_cli.inference.windows import HeatmapAverager, WindowBatch, WindowScheduler


def fake_heatmaps(batch: WindowBatch) -> np.ndarray:
    """A different map for every (window, slot): depends on the window's first frame and the slot."""
    b, t = batch.frame_ids.shape
    out = np.empty((b, t, 4, 5), np.float64)
    for i in range(b):
        for j in range(t):
            rng = np.random.default_rng(int(batch.frame_ids[i, 0]) * 1000 + j)
            out[i, j] = rng.random((4, 5))
    return out


def stream(n: int, length: int, batch: int, stride: int, first: int = 0, torch_maps: bool = False):
    sched = WindowScheduler(length, batch, stride)
    avg = HeatmapAverager()
    batches: list[WindowBatch] = []
    released: list[tuple[int, np.ndarray]] = []
    held_max = 0
    for fid in range(first, first + n):
        frame = np.full((2, 3, 3), fid % 256, np.uint8)
        for b in sched.push(fid, frame):
            batches.append(b)
            maps = fake_heatmaps(b)
            released += avg.add(b, torch.from_numpy(maps) if torch_maps else maps)
        held_max = max(held_max, len(sched._frames), avg.pending)
    for b in sched.flush():
        batches.append(b)
        maps = fake_heatmaps(b)
        released += avg.add(b, torch.from_numpy(maps) if torch_maps else maps)
    released += avg.flush()
    return batches, released, held_max


def brute_force(n: int, length: int, stride: int, first: int = 0) -> dict[int, np.ndarray]:
    """Every window the scheme defines, enumerated up front; the mean over windows per frame."""
    last = first + n - 1
    starts = list(range(first, first + max(n - length, 0) + 1, stride))
    if starts[-1] + length - 1 < last:  # the padded tail window
        starts.append(starts[-1] + stride)
    sums: dict[int, list[np.ndarray]] = {}
    for s in starts:
        for j in range(length):
            if s + j <= last:
                rng = np.random.default_rng(s * 1000 + j)
                sums.setdefault(s + j, []).append(rng.random((4, 5)))
    return {f: np.mean(v, axis=0) for f, v in sums.items()}


@pytest.mark.parametrize(
    "n,length,batch,stride,first",
    [
        (10, 3, 2, 1, 0),
        (10, 3, 4, 3, 0),
        (11, 4, 3, 2, 100),
        (2, 5, 4, 1, 0),
        (1, 3, 1, 3, 7),
        (17, 3, 16, 1, 0),
    ],
)
def test_averages_equal_brute_force(n: int, length: int, batch: int, stride: int, first: int) -> None:
    batches, released, held_max = stream(n, length, batch, stride, first)
    expected = brute_force(n, length, stride, first)
    assert [f for f, _ in released] == list(range(first, first + n))  # each frame once, in order
    for fid, hm in released:
        np.testing.assert_allclose(hm, expected[fid], rtol=1e-12)
    assert held_max <= batch * stride + length
    for b in batches:
        assert b.frames.shape[:2] == b.frame_ids.shape and b.frames.shape[2:] == (2, 3, 3)
        # The stacked frames are the frames the ids name (padding repeats the last frame).
        assert np.array_equal(b.frames[:, :, 0, 0, 0], b.frame_ids % 256)
        assert len(b) <= batch


def test_stride_one_covers_each_frame_up_to_length_times() -> None:
    batches, _, _ = stream(10, 3, 2, 1)
    counts = np.bincount(np.concatenate([b.frame_ids[b.valid] for b in batches]))
    assert counts.tolist() == [1, 2, 3, 3, 3, 3, 3, 3, 2, 1]
    assert sum(len(b) for b in batches) == 8 and not any((~b.valid).any() for b in batches)


def test_tail_padding_is_marked_invalid() -> None:
    batches, released, _ = stream(10, 4, 8, 4)
    assert [b.frame_ids.tolist() for b in batches] == [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]]
    assert batches[0].valid.tolist()[-1] == [True, True, False, False]
    assert len(released) == 10


def test_frames_are_released_while_streaming() -> None:
    sched = WindowScheduler(3, 2, 1)
    avg = HeatmapAverager()
    released: list[int] = []
    for fid in range(6):
        for b in sched.push(fid, np.zeros((1,), np.float32)):
            released += [f for f, _ in avg.add(b, fake_heatmaps(b))]
    # Windows 0-2 and 1-3 form the first batch after frame 3: frames 0 and 1 are final.
    # Windows 2-4 and 3-5 form the second after frame 5: frames 2 and 3 are final.
    assert released == [0, 1, 2, 3]


def test_torch_heatmaps_are_averaged_as_tensors() -> None:
    _, released, _ = stream(9, 3, 2, 1, torch_maps=True)
    expected = brute_force(9, 3, 1)
    for fid, hm in released:
        assert isinstance(hm, torch.Tensor)
        np.testing.assert_allclose(hm.numpy(), expected[fid], rtol=1e-12)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        WindowScheduler(3, 2, 4)
    with pytest.raises(ValueError):
        WindowScheduler(0, 2)
    sched = WindowScheduler(3, 2)
    sched.push(0, np.zeros(1))
    with pytest.raises(ValueError):
        sched.push(2, np.zeros(1))
    avg = HeatmapAverager()
    batch = WindowBatch(np.zeros((1, 3, 1)), np.zeros((1, 3), np.int64), np.ones((1, 3), bool), 1)
    with pytest.raises(ValueError):
        avg.add(batch, np.zeros((2, 3, 4, 5)))
