"""`data inspect` core: counts, every problem kind with file/row, --check-images, the preview sheet."""

from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image

from tracknet_cli.data.clips import discover_clips
from tracknet_cli.data.inspect import inspect_dataset, write_preview

TENNIS = "file name,visibility,x-coordinate,y-coordinate,status\n"


def _problem_set(report) -> set[tuple[str, str, str, int | None]]:
    return {(p.clip, p.kind, p.file, p.row) for p in report.problems}


def _faulty_dataset(root: Path) -> Path:
    clip = root / "game1" / "Clip1"
    clip.mkdir(parents=True)
    for i in range(5):  # 0000..0004; 0004 has no label row
        Image.new("RGB", (40, 20), (i * 40, 0, 0)).save(clip / f"{i:04d}.jpg")
    (clip / "Label.csv").write_text(
        TENNIS
        + "0000.jpg,1,10,10,0\n"  # line 2 fine
        + "0001.jpg,2,,,1\n"  # line 3 visible without coordinates
        + "0002.jpg,1,99,5,0\n"  # line 4 outside the 40x20 image
        + "0002.jpg,1,9,5,0\n"  # line 5 duplicate
        + "0003.jpg,0,,,2\n"  # line 6 fine
        + "0009.jpg,1,1,1,0\n"  # line 7 label without image
    )
    ok = root / "game2" / "Clip1"
    ok.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (40, 20)).save(ok / f"{i:04d}.jpg")
    (ok / "Label.csv").write_text(TENNIS + "0000.jpg,3,5,5,0\n0001.jpg,0,,,0\n")
    return root


def test_counts_and_every_problem_kind(tmp_path: Path) -> None:
    report = inspect_dataset(_faulty_dataset(tmp_path))
    data = report.to_json()
    json.dumps(data)  # serialisable
    assert data["totals"]["frames"] == 7 and data["totals"]["clips"] == 2 and data["totals"]["games"] == 2
    assert data["totals"]["labelled"] == 6
    assert data["totals"]["visible"] == 4  # frames 0,1,2 of game1 and frame 0 of game2
    assert data["totals"]["visibility"] == {"0": 2, "1": 2, "2": 1, "3": 1}
    assert data["totals"]["status"] == {"0": 4, "1": 1, "2": 1}
    f = "game1/Clip1/Label.csv"
    assert _problem_set(report) == {
        ("game1/Clip1", "visible_without_coordinates", f, 3),
        ("game1/Clip1", "outside_image", f, 4),
        ("game1/Clip1", "duplicate_row", f, 5),
        ("game1/Clip1", "label_without_frame", f, 7),
        ("game1/Clip1", "frame_without_label", f, None),
    }
    c1, c2 = data["clips"]
    assert (c1["id"], c1["frames"], c1["labelled"], c1["problems"], c1["resolution"]) == (
        "game1/Clip1",
        5,
        4,
        5,
        "40x20",
    )
    assert c1["visibility"] == {"0": 1, "1": 2, "2": 1, "3": 0} and c1["dialect"] == "tennis"
    assert (c2["game"], c2["clip"], c2["problems"], c2["source"]) == ("game2", "Clip1", 0, "images")
    assert {"clip", "file", "row", "kind"} <= set(data["problems"][0])
    assert data["problem_kinds"]["outside_image"] == 1


def test_check_images_finds_unreadable_frames(tmp_path: Path) -> None:
    root = _faulty_dataset(tmp_path)
    (root / "game2" / "Clip1" / "0001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert not any(p.kind == "unreadable_image" for p in inspect_dataset(root).problems)
    report = inspect_dataset(root, check_images=True)
    bad = [p for p in report.problems if p.kind == "unreadable_image"]
    assert [(p.clip, p.file, p.frame) for p in bad] == [("game2/Clip1", "game2/Clip1/0001.jpg", 1)]


def test_check_images_decodes_videos(tmp_path: Path) -> None:
    from tests.data.test_clips import write_video

    write_video(tmp_path / "a.mp4", 5)
    (tmp_path / "a.csv").write_text("Frame,Ball,x,y\n" + "".join(f"{i},1,0.5,0.5\n" for i in range(5)))
    report = inspect_dataset(tmp_path, check_images=True)
    assert report.problems == [] and report.totals.frames == 5
    (tmp_path / "b.mp4").write_bytes((tmp_path / "a.mp4").read_bytes()[:-400])  # truncated: index lost
    (tmp_path / "b.csv").write_text((tmp_path / "a.csv").read_text())
    report = inspect_dataset(tmp_path)  # one broken file is reported, not fatal
    assert [c.id for c in report.clips] == ["a"]
    assert [(p.kind, p.file) for p in report.problems] == [("unreadable_frames", "b.mp4")]


def test_preview_draws_labels(tmp_path: Path) -> None:
    clip_dir = tmp_path / "g" / "c"
    clip_dir.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (320, 180), (0, 0, 0)).save(clip_dir / f"{i:04d}.jpg")
    (clip_dir / "Label.csv").write_text(TENNIS + "".join(f"{i:04d}.jpg,1,160,90,0\n" for i in range(3)))
    out = tmp_path / "sheets" / "preview.png"
    write_preview(discover_clips(tmp_path), out, samples=1, columns=1, tile_width=320)
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.png"]  # written atomically, no temp left
    with Image.open(out) as img:
        sheet = img.convert("RGB")
    assert sheet.size == (320, 180 + 18)
    # the ring of radius 6 around the label (160, 90 + 18 header) is drawn red; the frame itself is black
    ring = [sheet.getpixel((160 + dx, 108 + dy)) for dx, dy in ((6, 0), (-6, 0), (0, 6), (0, -6))]
    assert any(r > 200 and g < 80 for r, g, _ in ring)
    assert sheet.getpixel((40, 150)) == (0, 0, 0)


# ---------------------------------------------------------------- real folders
def test_real_handball(realdata: Path) -> None:
    data = inspect_dataset(realdata / "handball-tracknet-layout").to_json()
    assert data["totals"]["frames"] == 276
    assert data["totals"]["visibility"] == {"0": 32, "1": 163, "2": 60, "3": 21}
    assert data["totals"]["visible"] == 244
    assert data["totals"]["status"] == {"0": 164, "1": 86, "2": 26}
    assert [(p["kind"], p["frame"], p["row"]) for p in data["problems"]] == [
        ("visible_without_coordinates", 182, 184),
        ("visible_without_coordinates", 183, 185),
    ]
    assert all("0182.jpg" in p["message"] or "0183.jpg" in p["message"] for p in data["problems"])


def test_real_badminton_is_fast(realdata: Path) -> None:
    start = time.perf_counter()
    report = inspect_dataset(realdata / "badminton-train")
    seconds = time.perf_counter() - start
    assert (len(report.clips), report.totals.frames, report.totals.visible) == (33, 8018, 6852)
    assert report.totals.visibility == {"0": 1166, "1": 6852, "2": 0, "3": 0}
    assert report.problems == []
    assert seconds < 10, f"inspect took {seconds:.1f} s (packets are counted, no frame decode)"
