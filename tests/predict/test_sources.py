"""Prediction inputs on real files: PyAV videos written here (even/odd sizes, truncated, rotated,
irregular timestamps), frame folders, single images, folders of videos, slicing and bad inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tracknet_cli.errors import InputError, UsageError
from tracknet_cli.media.files import natural_key
from tracknet_cli.predict.sources import ImageFolderSource, VideoSource, open_source, open_sources


def level(i: int) -> int:
    """Brightness that encodes frame i (survives lossy coding within a few levels)."""
    return 20 + 7 * (i % 32)


def write_video(
    path: Path,
    n: int = 30,
    size: tuple[int, int] = (64, 48),
    *,
    fps: int = 30,
    noise: bool = False,
    rotation: int | None = None,
    faststart: bool = True,
    pts_steps: list[int] | None = None,
) -> Path:
    w, h = size
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"  # x264 4:2:0 needs even sizes
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"} if faststart else {})
    stream = container.add_stream("libx264", rate=fps, options={"g": "5", "preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = w, h, pix
    if rotation is not None:
        stream.set_display_rotation(rotation)
    if pts_steps is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    rng = np.random.default_rng(0)
    pts = 0
    for i in range(n):
        if noise:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:
            img = np.full((h, w, 3), level(i), np.uint8)
            img[:8, :8] = 255  # a white block in the stored top-left corner
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts_steps is not None:
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += pts_steps[i % len(pts_steps)]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def mean_level(img: np.ndarray) -> float:
    return float(np.median(img))


def test_video_frames_in_order_at_two_sizes_from_one_decode(tmp_path: Path) -> None:
    src = open_source(write_video(tmp_path / "clip.mp4"))[0]
    assert isinstance(src, VideoSource)
    assert src.info.kind == "video" and src.info.size == (64, 48) and src.info.fps == 30.0
    assert src.info.frame_count == 30 and src.expected_frames == 30
    frames = list(src.frames([(32, 18), None]))
    assert [f.index for f in frames] == list(range(30))
    for f in frames:
        small, full = f.images
        assert small.shape == (18, 32, 3) and full.shape == (48, 64, 3)
        assert small.dtype == np.uint8 and small.flags["C_CONTIGUOUS"]
        assert abs(mean_level(full) - level(f.index)) <= 3
    assert src.report.yielded == 30 and src.report.warning() is None


def test_odd_size_video(tmp_path: Path) -> None:
    src = open_source(write_video(tmp_path / "odd.mp4", n=12, size=(65, 47)))[0]
    assert src.info.size == (65, 47)
    frames = list(src.frames([None, (33, 23)]))
    assert len(frames) == 12
    assert frames[0].images[0].shape == (47, 65, 3) and frames[0].images[1].shape == (23, 33, 3)
    assert frames[0].images[1].flags["C_CONTIGUOUS"]


def test_start_end_slice_keeps_absolute_numbers(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4")
    src = open_source(path, start=5, end=12)[0]
    assert src.expected_frames == 7
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(5, 12))
    assert [round((mean_level(f.images[0]) - 20) / 7) for f in frames] == list(range(5, 12))
    # Only up to --end is decoded: the decoder stops, the header's 30 frames are not all read.
    assert src.report.decoded <= 13 and src.report.warning() is None
    tail = open_source(path, start=25)[0]
    assert [f.index for f in tail.frames()] == [25, 26, 27, 28, 29]


def test_bad_slices(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", n=6)
    with pytest.raises(UsageError):
        open_source(path, start=4, end=4)
    with pytest.raises(UsageError):
        open_source(path, start=-1)
    src = open_source(path, start=50)[0]
    with pytest.raises(UsageError, match="past the end"):
        list(src.frames())


def test_frames_are_decoded_lazily(tmp_path: Path) -> None:
    src = open_source(write_video(tmp_path / "clip.mp4", n=60))[0]
    it = src.frames([(16, 12)])
    first = [next(it) for _ in range(3)]
    assert [f.index for f in first] == [0, 1, 2]
    assert src.report.decoded < 20  # decoding follows consumption; the video is never read whole
    it.close()


def test_truncated_video_yields_what_decodes_and_warns(tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.mp4", n=30, noise=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    src = open_source(cut)[0]
    assert src.info.frame_count == 30  # the header still claims every frame
    frames = list(src.frames([(32, 24)]))
    assert 0 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))
    warning = src.report.warning()
    assert warning is not None and f"{len(frames)} of the 30 frames" in warning


def test_cut_file_without_index_is_an_input_error(tmp_path: Path) -> None:
    full = write_video(tmp_path / "slow.mp4", n=30, noise=True, faststart=False)  # index at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.mp4"):
        open_source(cut)


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    with pytest.raises(InputError, match="junk.mp4"):
        open_source(junk)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frame images"):
        open_source(tmp_path / "empty")
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png"):
        open_source(bad_image)
    with pytest.raises(UsageError):
        open_sources([])


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    src = open_source(write_video(tmp_path / "rot.mp4", n=4, rotation=90))[0]
    assert src.info.rotation == 90 and src.info.size == (48, 64)
    f = next(iter(src.frames([None, (24, 32)])))
    full, small = f.images
    assert full.shape == (64, 48, 3) and small.shape == (32, 24, 3)
    # 90 degrees counter-clockwise: the stored top-left block lands bottom-left.
    assert full[-4:, :4].min() > 200 and full[:4, :4].max() < 100


def test_irregular_timestamps_are_ignored(tmp_path: Path) -> None:
    # Variable frame rate: gaps of 10, 50 and 23 ms between frames. Rows follow decode order.
    src = open_source(write_video(tmp_path / "vfr.mp4", n=20, pts_steps=[10, 50, 23]))[0]
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(20))
    assert [round((mean_level(f.images[0]) - 20) / 7) for f in frames] == list(range(20))
    assert 0 < src.info.fps < 1000


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        i = int("".join(c for c in name if c.isdigit()))
        path = folder / name
        Image.fromarray(np.full((size[1], size[0], 3), level(i), np.uint8)).save(path)
        paths.append(path)
    return paths


def test_frame_folder_natural_order_slice_and_names(tmp_path: Path) -> None:
    write_images(tmp_path / "rally", ["10.png", "2.png", "1.png", "0.png", "11.png"])
    (tmp_path / "rally" / "notes.txt").write_text("ignored")
    src = open_source(tmp_path / "rally")[0]
    assert isinstance(src, ImageFolderSource)
    assert src.info.kind == "frames" and src.info.fps == 30.0 and src.info.size == (40, 30)
    assert src.info.frame_count == 5 and src.info.stem == "rally"
    frames = list(src.frames([None, (20, 16)]))
    assert [f.name for f in frames] == ["0.png", "1.png", "2.png", "10.png", "11.png"]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [round((mean_level(f.images[0]) - 20) / 7) for f in frames] == [0, 1, 2, 10, 11]
    assert frames[0].images[1].shape == (16, 20, 3)
    sliced = open_source(tmp_path / "rally", start=1, end=3, fps=25)[0]
    assert sliced.info.fps == 25.0 and sliced.expected_frames == 2
    assert [(f.index, f.name) for f in sliced.frames()] == [(1, "1.png"), (2, "2.png")]
    with pytest.raises(UsageError, match="past the end"):
        open_source(tmp_path / "rally", start=5)


def test_frame_folder_with_a_broken_image_and_a_different_size(tmp_path: Path) -> None:
    write_images(tmp_path / "f", ["0.jpg", "1.jpg", "3.jpg"], size=(64, 48))
    write_images(tmp_path / "f", ["4.jpg"], size=(32, 24))
    (tmp_path / "f" / "2.jpg").write_bytes(b"broken")
    src = open_source(tmp_path / "f")[0]
    frames = list(src.frames([None, (16, 12)]))
    assert [f.index for f in frames] == [0, 1, 3, 4]  # frame 2 is missing, numbers stay absolute
    assert all(f.images[0].shape == (48, 64, 3) and f.images[1].shape == (12, 16, 3) for f in frames)
    warning = src.report.warning()
    assert warning is not None and "1 decode error" in warning and "1 image resized" in warning


def test_jpeg_draft_path_gives_the_requested_size(tmp_path: Path) -> None:
    write_images(tmp_path / "hd", ["0.jpg"], size=(640, 360))
    src = open_source(tmp_path / "hd")[0]
    (small,) = next(iter(src.frames([(160, 90)]))).images
    assert small.shape == (90, 160, 3) and abs(mean_level(small) - level(0)) <= 3


def test_single_image(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path, ["7.png"])
    src = open_source(path)[0]
    assert src.info.kind == "image" and src.info.stem == "7"
    frames = list(src.frames())
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].name == "7.png"


def test_folder_of_videos_gives_one_source_each(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, n in [("b10.mp4", 3), ("b2.mp4", 4)]:
        write_video(folder / name, n=n)
    sources = open_sources([folder, folder / "b10.mp4"])
    assert [s.info.path.name for s in sources] == ["b2.mp4", "b10.mp4", "b10.mp4"]
    assert [len(list(s.frames())) for s in sources] == [4, 3, 3]


def test_natural_key() -> None:
    assert sorted(["img10.jpg", "img2.jpg", "IMG1.jpg"], key=natural_key) == ["IMG1.jpg", "img2.jpg", "img10.jpg"]


def test_real_1080p_example(realdata: Path) -> None:
    video = realdata / "badminton-1080p-example" / "videos" / "1_10_12.mp4"
    src = open_source(video)[0]
    assert src.info.size == (1920, 1080) and src.info.fps == 25.0
    frames = list(src.frames([(512, 288), (960, 540)]))
    assert len(frames) == 6 and frames[0].images[0].shape == (288, 512, 3)
    assert frames[0].images[1].shape == (540, 960, 3)


def test_overlay_frames_from_one_decode(tmp_path: Path) -> None:
    src = open_source(write_video(tmp_path / "clip.mp4", n=3))[0]
    f = next(iter(src.frames([(32, 24)], overlay_size=(32, 24))))
    assert isinstance(f.overlay, av.VideoFrame) and f.overlay.format.name == "yuv420p"
    assert (f.overlay.width, f.overlay.height) == (32, 24) and f.images[0].shape == (24, 32, 3)
    rotated = open_source(write_video(tmp_path / "rot.mp4", n=2, rotation=-90))[0]
    g = next(iter(rotated.frames([], overlay_size=(48, 64))))
    assert isinstance(g.overlay, np.ndarray) and g.overlay.shape == (64, 48, 3)  # rotated: RGB
    assert g.overlay[:4, -4:].min() > 200  # -90 (clockwise): the stored top-left block lands top-right
    write_images(tmp_path / "imgs", ["0.png"])
    h = next(iter(open_source(tmp_path / "imgs")[0].frames([None], overlay_size=(20, 16))))
    assert h.images[0].shape == (30, 40, 3) and h.overlay.shape == (16, 20, 3)
