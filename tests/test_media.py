"""One answer to "which files are frames, in which order" for training data and prediction."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tracknet_cli.data.clips import list_images
from tracknet_cli.media.files import image_files, natural_key
from tracknet_cli.predict.sources import open_source


def test_data_and_predict_read_the_same_frames_in_the_same_order(tmp_path: Path) -> None:
    names = ["cam2_0001.jpg", "cam1_0010.png", "cam1_0002.webp", "cam1_0001.tif", ".hidden.jpg", "notes.txt"]
    for name in names:
        if name.endswith(".txt"):
            (tmp_path / name).write_text("x")
        else:
            Image.new("RGB", (8, 6)).save(tmp_path / name)
    expected = ["cam1_0001.tif", "cam1_0002.webp", "cam1_0010.png", "cam2_0001.jpg"]
    assert [p.name for p in image_files(tmp_path)] == expected
    assert [p.name for p in list_images(tmp_path)] == expected
    source = open_source(tmp_path)[0]
    assert [f.name for f in source.frames()] == expected


def test_natural_key_orders_numbers_by_value() -> None:
    assert sorted(["f10.jpg", "F2.jpg", "f1.jpg"], key=natural_key) == ["f1.jpg", "F2.jpg", "f10.jpg"]


def _rotated_video(path: Path, n: int = 3, size: tuple[int, int] = (64, 48), rotation: int = 90) -> Path:
    """A real H.264 file stored landscape with a display matrix, as a phone writes a portrait video;
    a white block sits in the stored top-left corner."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.set_display_rotation(rotation)
        for i in range(n):
            img = np.full((h, w, 3), 40 + 30 * i, np.uint8)
            img[:16, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_a_rotated_video_trains_upright_as_it_predicts(tmp_path: Path) -> None:
    import numpy as np

    from tracknet_cli.data.cache import FrameCache
    from tracknet_cli.data.clips import discover_clips, iter_video_frames
    from tracknet_cli.data.frames import FrameMemory, source_frames
    from tracknet_cli.data.geometry import Codec

    _rotated_video(tmp_path / "phone.mp4")
    (tmp_path / "phone.csv").write_text("Frame,Ball,x,y\n" + "".join(f"{i},1,0.25,0.75\n" for i in range(3)))
    (clip,) = discover_clips(tmp_path)
    assert (clip.width, clip.height) == (48, 64)  # upright, like predict's SourceInfo.size
    assert clip.labels.x[0] == 12.0 and clip.labels.y[0] == 48.0  # normalised labels scale by the upright size
    codec = Codec((48, 64), (48, 64), (24, 32))
    trained = source_frames(clip, codec, FrameMemory()).get([0, 1, 2])
    predicted = np.stack([f.images[0] for f in open_source(tmp_path / "phone.mp4")[0].frames([(48, 64)])])
    assert trained.shape == predicted.shape == (3, 64, 48, 3)
    assert np.array_equal(trained, predicted)
    # 90 degrees counter-clockwise: the stored top-left block is at the bottom-left, upright.
    assert trained[0, -8:, :8].min() > 200 and trained[0, :8, :8].max() < 120
    cache = FrameCache(tmp_path / "cache", (48, 64))
    assert np.array_equal(np.asarray(cache.build(clip, source_frames(clip, codec, FrameMemory()))), trained)
    assert next(iter_video_frames(clip.video)).shape == (64, 48, 3)  # data import and inspect too


def test_frames_cached_before_videos_were_upright_are_rebuilt(tmp_path: Path, monkeypatch) -> None:
    from tracknet_cli.data import cache
    from tracknet_cli.data.clips import discover_clips

    _rotated_video(tmp_path / "phone.mp4")
    (tmp_path / "phone.csv").write_text("Frame,Ball,x,y\n0,1,0.5,0.5\n")
    (clip,) = discover_clips(tmp_path)
    now = cache.clip_key(clip, (48, 64))
    monkeypatch.setattr(cache, "CACHE_FORMAT", 1)  # the format that stored phone videos sideways
    assert cache.clip_key(clip, (48, 64)) != now
