"""Frame decoding: JPEG draft, PyAV decode order and resize, canvas padding, decode sharing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from tracknet_cli.data.frames import (
    FrameMemory,
    ImageFrames,
    VideoFrames,
    decode_image,
    fill,
    iter_video,
)
from tracknet_cli.data.geometry import Codec
from tracknet_cli.errors import InputError


def level(i: int) -> int:
    """A grey level per frame index, far enough apart to survive JPEG / H.264."""
    return 20 + 10 * i


def write_video(path: Path, n: int, size: tuple[int, int] = (160, 90), levels=level) -> Path:
    import av

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), levels(i), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), level(i), np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(img).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.fixture
def draft_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Records (requested size, decoded size) of every JPEG draft; Pillow itself does the work."""
    calls: list = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size, *args, **kwargs):
        result = original(self, mode, size, *args, **kwargs)
        calls.append((tuple(size), self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return calls


def test_jpeg_draft_decodes_at_reduced_scale_when_input_is_at_most_half(tmp_path: Path, draft_calls) -> None:
    # Left half red, right half blue, 640x360; 160x90 is a quarter, so the decoder works at 1/4.
    img = np.zeros((360, 640, 3), np.uint8)
    img[:, :320, 0] = 220
    img[:, 320:, 2] = 220
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=95)
    out = decode_image(tmp_path / "a.jpg", (160, 90))
    assert out.shape == (90, 160, 3) and out.dtype == np.uint8
    assert draft_calls == [((160, 90), (160, 90))]
    assert out[:, :75, 0].mean() > 200 and out[:, :75, 2].mean() < 20
    assert out[:, 85:, 2].mean() > 200 and out[:, 85:, 0].mean() < 20
    # Same picture as a full decode + resize, within JPEG noise.
    full = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB").resize((160, 90), Image.BILINEAR), np.int16)
    assert np.abs(full - out).mean() < 3.0


def test_jpeg_more_than_half_is_decoded_at_full_scale(tmp_path: Path, draft_calls) -> None:
    Image.fromarray(np.full((360, 640, 3), 100, np.uint8)).save(tmp_path / "a.jpg")
    out = decode_image(tmp_path / "a.jpg", (400, 225))
    assert out.shape == (225, 400, 3)
    assert draft_calls == []


def test_video_frames_come_in_decode_order_resized(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", 20)
    frames = list(iter_video(path, (80, 45)))
    assert len(frames) == 20
    assert frames[0].shape == (45, 80, 3) and frames[0].dtype == np.uint8
    means = np.array([f.mean() for f in frames])
    assert np.abs(means - np.array([level(i) for i in range(20)])).max() < 3.0
    assert len(list(iter_video(path, None, limit=5))) == 5


def test_video_source_decodes_once_and_pads_like_the_codec(tmp_path: Path) -> None:
    # 160x90 into a 4:3 canvas of 128x96: content 128x72, bottom 24 rows of black padding.
    path = write_video(tmp_path / "v.mp4", 20)
    codec = Codec((160, 90), (128, 96), (64, 48))
    source = VideoFrames("v", path, 20, codec, FrameMemory())
    a = source.get([5, 6, 7])
    b = source.get([19, 0, 6])
    assert source.decodes == 20
    assert a.shape == (3, 96, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a[1], b[2])  # frame 6 both times
    assert abs(b[0, :72].mean() - level(19)) < 3 and abs(b[1, :72].mean() - level(0)) < 3
    assert b[:, 72:].max() == 0  # padding is black, on the bottom, exactly where the codec puts it
    # The canvas equals the codec's own resize of a full-size frame, within resampler differences.
    full = next(iter_video(path))
    assert np.abs(codec.resize_frame(full).astype(int) - b[1].astype(int)).mean() < 2.0


def test_video_shorter_than_its_labels_is_an_input_error(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", 8)
    codec = Codec((160, 90), (160, 90), (80, 45))
    source = VideoFrames("v", path, 12, codec, FrameMemory())
    with pytest.raises(InputError, match="decodes 8 frames but its labels need 12"):
        source.get([0])
    with pytest.raises(InputError):
        fill(iter([]), (4, 4), 1, "nothing")


def test_image_frames_share_decodes_between_overlapping_windows(tmp_path: Path) -> None:
    paths = write_jpegs(tmp_path / "clip", 6, (64, 36))
    codec = Codec((64, 36), (64, 36), (32, 18))
    source = ImageFrames("c", paths, codec, FrameMemory())
    for start in range(4):  # windows [0,1,2] .. [3,4,5]
        window = source.get([start, start + 1, start + 2])
        assert abs(window[0].mean() - level(start)) < 3
    assert source.decodes == 6


def test_frame_memory_evicts_oldest_above_budget_but_keeps_newest() -> None:
    memory = FrameMemory(max_bytes=250)
    for i in range(4):
        memory.put(("c", i), np.zeros(100, np.uint8))
    assert len(memory) == 2 and memory.bytes == 200
    assert memory.get(("c", 0)) is None and memory.get(("c", 3)) is not None
    memory.put(("big",), np.zeros(1000, np.uint8))
    assert len(memory) == 1 and memory.get(("big",)) is not None


def test_unreadable_image_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot decode image"):
        decode_image(tmp_path / "x.jpg", (8, 8))
