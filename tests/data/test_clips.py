"""Clip discovery over every layout: tennis, flat mp4+csv, TrackNetV2, and the real folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracknet_cli.data.clips import (
    LABELS_WITHOUT_FRAMES,
    VIDEO_WITHOUT_LABELS,
    count_decoded_frames,
    discover_clips,
    iter_video_frames,
    scan,
    video_info,
)
from tracknet_cli.errors import InputError

TENNIS = "file name,visibility,x-coordinate,y-coordinate,status\n"


def write_video(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> None:
    """A real H.264 file (B-frames reorder packets, as broadcast files do)."""
    import av

    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 37) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", size, (10, 20, 30)).save(folder / name)


def tennis_clip(folder: Path, n: int = 3, size: tuple[int, int] = (40, 30)) -> None:
    names = [f"{i:04d}.jpg" for i in range(n)]
    write_images(folder, names, size)
    rows = "".join(f"{name},1,{i + 1},{i + 2},0\n" for i, name in enumerate(names))
    (folder / "Label.csv").write_text(TENNIS + rows)


def test_tennis_layout_games_and_clips(tmp_path: Path) -> None:
    tennis_clip(tmp_path / "game1" / "Clip1", 3)
    tennis_clip(tmp_path / "game1" / "Clip2", 2)
    tennis_clip(tmp_path / "game2" / "Clip1", 4, size=(64, 36))
    (tmp_path / "game2" / "notes").mkdir()  # a folder without labels is ignored
    clips = discover_clips(tmp_path)
    assert [c.id for c in clips] == ["game1/Clip1", "game1/Clip2", "game2/Clip1"]
    assert [len(c) for c in clips] == [3, 2, 4]
    assert [c.game for c in clips] == ["game1", "game1", "game2"] and clips[0].name == "Clip1"
    last = clips[2]
    assert (last.width, last.height) == (64, 36) and last.source == "images" and last.video is None
    assert last.label_path == tmp_path / "game2" / "Clip1" / "Label.csv"
    assert last.labels.x.tolist() == [1, 2, 3, 4]


def test_root_may_be_a_game_or_a_clip_folder(tmp_path: Path) -> None:
    tennis_clip(tmp_path / "game1" / "Clip1", 3)
    assert [c.id for c in discover_clips(tmp_path / "game1")] == ["game1/Clip1"]
    assert [c.id for c in discover_clips(tmp_path / "game1" / "Clip1")] == ["game1/Clip1"]


def test_frames_sort_numerically_and_any_known_csv_name(tmp_path: Path) -> None:
    folder = tmp_path / "g" / "c"
    write_images(folder, ["10.png", "2.png", "1.png"])
    (folder / "ball.csv").write_text("Frame,Visibility,X,Y\n1,1,5,5\n2,0,0,0\n10,1,7,7\n")
    (clip,) = discover_clips(tmp_path)
    assert [p.name for p in clip.frame_paths] == ["1.png", "2.png", "10.png"]
    assert clip.labels.visibility.tolist() == [1, 0, 1] and clip.labels.x[2] == 7


def test_flat_video_layout_counts_decoded_frames(tmp_path: Path) -> None:
    write_video(tmp_path / "rally1.mp4", 7)
    (tmp_path / "rally1.csv").write_text("Frame,Ball,x,y\n" + "".join(f"{i},1,0.5,0.5\n" for i in range(7)))
    write_video(tmp_path / "rally2.mp4", 4, size=(32, 32))
    (tmp_path / "rally2.csv").write_text("Frame,Ball,x,y\n0,0,-1,-1\n1,1,0.25,0.75\n")  # frames 2,3 unlabelled
    write_video(tmp_path / "orphan.mp4", 2)
    (tmp_path / "lonely.csv").write_text("Frame,Ball,x,y\n0,1,0.5,0.5\n")
    found = scan(tmp_path)
    assert [c.id for c in found.clips] == ["rally1", "rally2"]
    r1, r2 = found.clips
    assert len(r1) == 7 and r1.frame_paths is None and r1.video == tmp_path / "rally1.mp4" and r1.game == ""
    assert (r1.width, r1.height) == (64, 48) and r1.labels.x[0] == 32.0
    assert len(r2) == 4 and r2.labels.state.tolist() == [0, 1, -1, -1] and r2.labels.y[1] == 24.0
    kinds = {(p.kind, p.file) for p in found.problems}
    assert kinds == {(VIDEO_WITHOUT_LABELS, "orphan.mp4"), (LABELS_WITHOUT_FRAMES, "lonely.csv")}
    assert [(p.kind, p.frame) for p in found.all_problems if p.clip == "rally2"] == [
        ("frame_without_label", 2),
        ("frame_without_label", 3),
    ]


def test_packet_count_equals_decoded_frames(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", 11)
    assert video_info(tmp_path / "v.mp4") == (64, 48, 11)
    assert count_decoded_frames(tmp_path / "v.mp4") == 11
    frames = list(iter_video_frames(tmp_path / "v.mp4"))
    assert len(frames) == 11 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    # decode order: frame i was painted (i*37)%256 (H.264 is lossy: compare roughly)
    assert [int(f.mean()) // 8 for f in frames[:4]] == [((i * 37) % 256) // 8 for i in range(4)]


def test_tracknetv2_layout(tmp_path: Path) -> None:
    write_images(tmp_path / "images" / "r1", [f"{i}.jpg" for i in range(3)], size=(48, 24))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "r1.csv").write_text("frame_num,visible,x,y\n0,1,0.5,0.5\n1,1,0.25,0.5\n2,0,0,0\n")
    (tmp_path / "labels" / "r2_ball.csv").write_text("Frame,Visibility,X,Y\n0,1,3,4\n1,1,5,6\n")  # TrackNetV3 naming
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "r1.mp4", 3)
    write_video(tmp_path / "videos" / "r2.mp4", 2)
    clips = discover_clips(tmp_path)
    assert [c.id for c in clips] == ["r1", "r2"]
    r1, r2 = clips
    assert r1.source == "images" and r1.video == tmp_path / "videos" / "r1.mp4" and (r1.width, r1.height) == (48, 24)
    assert r1.labels.x.tolist()[:2] == [24.0, 12.0]
    assert r2.source == "video" and len(r2) == 2 and r2.labels.x.tolist() == [3, 5]


def test_nested_flat_folders_get_folder_prefix(tmp_path: Path) -> None:
    for match in ("m1", "m2"):
        write_video(tmp_path / match / "1.mp4", 2)
        (tmp_path / match / "1.csv").write_text("Frame,Ball,x,y\n0,1,0.5,0.5\n1,1,0.5,0.5\n")
    clips = discover_clips(tmp_path)
    assert [c.id for c in clips] == ["m1/1", "m2/1"] and clips[0].game == "m1"


def test_clip_head(tmp_path: Path) -> None:
    tennis_clip(tmp_path / "g" / "c", 5)
    (clip,) = discover_clips(tmp_path)
    short = clip.head(2)
    assert len(short) == 2 and len(short.frame_paths) == 2 and len(clip) == 5
    assert clip.head(10) is clip


def test_unusable_roots_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        scan(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        scan(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no labelled clips found"):
        scan(tmp_path / "empty")


def test_label_file_without_frames_is_reported(tmp_path: Path) -> None:
    tennis_clip(tmp_path / "g" / "ok", 2)
    (tmp_path / "g" / "bare").mkdir()
    (tmp_path / "g" / "bare" / "Label.csv").write_text(TENNIS + "0000.jpg,1,1,1,0\n")
    found = scan(tmp_path)
    assert [c.id for c in found.clips] == ["g/ok"]
    assert [(p.kind, p.file) for p in found.problems] == [(LABELS_WITHOUT_FRAMES, "g/bare/Label.csv")]


# ---------------------------------------------------------------- real folders
def test_real_handball_tennis_layout(realdata: Path) -> None:
    (clip,) = discover_clips(realdata / "handball-tracknet-layout")
    assert clip.id == "game1/Clip1" and len(clip) == 276 and (clip.width, clip.height) == (320, 180)
    assert clip.frame_paths[0].name == "0000.jpg" and clip.frame_paths[-1].name == "0275.jpg"


def test_real_badminton_flat_layout(realdata: Path) -> None:
    clips = discover_clips(realdata / "badminton-train")
    assert len(clips) == 33
    assert sum(len(c) for c in clips) == 8018
    assert sum(int((c.labels.visibility > 0).sum()) for c in clips) == 6852
    assert all((c.width, c.height) == (640, 360) and c.source == "video" for c in clips)
    assert all(c.labels.problems == [] for c in clips)  # decoded frames = label rows in every clip


def test_real_badminton_packets_match_decode(realdata: Path) -> None:
    video = realdata / "badminton-train" / "00001.mp4"
    assert video_info(video)[2] == count_decoded_frames(video)


def test_real_tracknetv2_layout(realdata: Path) -> None:
    (clip,) = discover_clips(realdata / "badminton-1080p-example")
    assert clip.id == "1_10_12" and len(clip) == 6 and (clip.width, clip.height) == (1920, 1080)
    assert clip.source == "images" and clip.video is not None and clip.video.name == "1_10_12.mp4"
    assert clip.labels.state.tolist() == [1] * 6


def test_unknown_label_header_skips_that_clip_only(tmp_path: Path) -> None:
    tennis_clip(tmp_path / "g" / "ok", 2)
    write_images(tmp_path / "g" / "odd", ["0000.jpg"])
    (tmp_path / "g" / "odd" / "Label.csv").write_text("image,cx,cy\n0000.jpg,1,1\n")
    found = scan(tmp_path)
    assert [c.id for c in found.clips] == ["g/ok"]
    assert [(p.kind, p.file) for p in found.problems] == [("unreadable_labels", "g/odd/Label.csv")]
    with pytest.raises(InputError, match=r"no usable clips: Label.csv: clip skipped: .*unknown label header"):
        scan(tmp_path / "g" / "odd")
