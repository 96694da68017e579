"""The five label dialects, per-frame state, problems with file and row, the tennis writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracknet_cli.data.labels import (
    BAD_VALUE,
    DUPLICATE_ROW,
    FRAME_WITHOUT_LABEL,
    LABEL_WITHOUT_FRAME,
    OUTSIDE_IMAGE,
    VISIBLE_WITHOUT_COORDINATES,
    LabelTable,
    detect_dialect,
    parse_label_file,
    read_labels,
    write_tennis_labels,
)
from tracknet_cli.errors import InputError


def _csv(tmp_path: Path, text: str, name: str = "Label.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _kinds(table: LabelTable) -> list[tuple[str, int | None, int | None]]:
    return [(p.kind, p.row, p.frame) for p in table.problems]


def test_tennis_dialect(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "file name,visibility,x-coordinate,y-coordinate,status\n"
        "0000.jpg,1,10,20,0\n0001.jpg,0,,,0\n0002.jpg,2,30.5,40.25,2\n0003.jpg,3,5,6,1\n",
    )
    t = read_labels(
        path, width=100, height=50, num_frames=4, frame_names=["0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg"]
    )
    assert t.dialect == "tennis"
    assert t.visibility.tolist() == [1, 0, 2, 3]
    assert t.visibility.dtype == np.int8 and t.status.dtype == np.int8 and t.state.dtype == np.int8
    assert t.x.dtype == np.float32
    np.testing.assert_allclose(t.x, [10, np.nan, 30.5, 5])
    np.testing.assert_allclose(t.y, [20, np.nan, 40.25, 6])
    assert t.status.tolist() == [0, 0, 2, 1]
    assert t.state.tolist() == [1, 0, 1, 1]
    assert t.problems == []


def test_labelling_tool_dialect_visible_without_coordinates(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "File Name,Visibility Class,X,Y,Trajectory Pattern\n"
        "0000.jpg,2,157.00,54.75,2\n0001.jpg,2,,,0\n0002.jpg,0,,,0\n",
    )
    t = read_labels(path, width=320, height=180, num_frames=3, frame_names=["0000.jpg", "0001.jpg", "0002.jpg"])
    assert t.dialect == "labelling-tool"
    assert t.visibility.tolist() == [2, 2, 0]
    assert t.status.tolist() == [2, 0, 0]  # trajectory pattern is read as status
    assert t.state.tolist() == [1, -1, 0]
    assert np.isnan(t.x[1]) and np.isnan(t.y[1])
    assert _kinds(t) == [(VISIBLE_WITHOUT_COORDINATES, 3, 1)]  # line 3 of the file, frame 1


def test_tracknetv2_dialect_pixels(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Frame,Visibility,X,Y\n0,1,640,360\n1,0,0,0\n2,1,1280,720\n")
    t = read_labels(path, width=1280, height=720, num_frames=3)
    assert t.dialect == "tracknetv2"
    np.testing.assert_allclose(t.x, [640, np.nan, 1280])  # coordinates of a no-ball row are dropped
    assert t.state.tolist() == [1, 0, 1]  # the far edge counts as inside
    assert t.status.tolist() == [-1, -1, -1]


def test_frame_ball_dialect_normalised_with_minus_one(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Frame,Ball,x,y\n0,1,0.500,0.250\n1,0,-1.000,-1.000\n2,1,-1,-1\n")
    t = read_labels(path, width=640, height=360, num_frames=3)
    assert t.dialect == "frame-ball"
    np.testing.assert_allclose(t.x[:1], [320.0])
    np.testing.assert_allclose(t.y[:1], [90.0])
    assert np.isnan(t.x[1]) and np.isnan(t.x[2])
    assert t.state.tolist() == [1, 0, -1]
    assert _kinds(t) == [(VISIBLE_WITHOUT_COORDINATES, 4, 2)]


def test_frame_num_dialect_normalised(tmp_path: Path) -> None:
    path = _csv(tmp_path, "frame_num,visible,x,y\n0,1,0.25,0.5\n1,0,0,0\n")
    t = read_labels(path, width=1920, height=1080, num_frames=2)
    assert t.dialect == "frame-num"
    np.testing.assert_allclose(t.xy[0], [480.0, 540.0])
    assert t.state.tolist() == [1, 0]


def test_header_detection_ignores_case_spaces_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffFile Name , VISIBILITY,X-Coordinate,Y-Coordinate, Status\n0000.jpg,1,1,1,0\n".encode())
    assert parse_label_file(path).dialect.name == "tennis"
    assert detect_dialect(["frame", "BALL", "X", "Y"]).name == "frame-ball"


def test_unknown_header_is_one_actionable_input_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "image,cx,cy\n0.jpg,1,2\n", name="weird.csv")
    with pytest.raises(InputError) as info:
        parse_label_file(path)
    message = info.value.line()
    assert "weird.csv" in message and "unknown label header" in message and "Frame,Ball,x,y".lower() in message.lower()
    assert "\n" not in message


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty label file"):
        parse_label_file(_csv(tmp_path, ""))


def test_problems_duplicate_outside_bad_value_missing(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "Frame,Visibility,X,Y\n"
        "0,1,10,10\n"  # line 2: fine
        "0,1,11,11\n"  # line 3: duplicate of frame 0, ignored
        "1,1,500,10\n"  # line 4: outside a 100x50 frame
        "2,x,1,1\n"  # line 5: unreadable
        "3,7,1,1\n"  # line 6: visibility out of range
        "9,1,1,1\n",
    )  # line 7: no frame 9 in a 5-frame clip
    t = read_labels(path, width=100, height=50, num_frames=5)
    kinds = _kinds(t)
    assert (DUPLICATE_ROW, 3, 0) in kinds
    assert (OUTSIDE_IMAGE, 4, 1) in kinds
    assert (BAD_VALUE, 5, None) in kinds
    assert (BAD_VALUE, 6, 3) in kinds
    assert (LABEL_WITHOUT_FRAME, 7, None) in kinds
    assert (FRAME_WITHOUT_LABEL, None, 4) in kinds  # frame 4 has no row at all
    assert t.x[0] == 10  # the first row wins
    assert t.state.tolist() == [1, -1, -1, -1, -1]
    assert t.visibility.tolist() == [1, 1, -1, -1, -1]
    assert all(p.file.endswith("Label.csv") for p in t.problems)


def test_file_rows_match_images_by_name_not_by_order(tmp_path: Path) -> None:
    path = _csv(tmp_path, "file name,visibility,x-coordinate,y-coordinate,status\n10.jpg,1,5,5,0\n2.jpg,0,,,0\n")
    t = read_labels(path, width=20, height=20, num_frames=2, frame_names=["2.jpg", "10.jpg"])
    assert t.visibility.tolist() == [0, 1]


def test_frame_numbers_match_numbered_images(tmp_path: Path) -> None:
    path = _csv(tmp_path, "frame_num,visible,x,y\n1,1,0.5,0.5\n0,0,0,0\n")
    t = read_labels(path, width=10, height=10, num_frames=2, frame_names=["0.jpg", "1.jpg"])
    assert t.visibility.tolist() == [0, 1]


def test_label_file_alone_sizes_table_from_rows(tmp_path: Path) -> None:
    t = read_labels(_csv(tmp_path, "Frame,Visibility,X,Y\n0,1,1,1\n2,1,2,2\n"), width=10, height=10)
    assert len(t) == 3 and t.visibility.tolist() == [1, -1, 1]


def test_tennis_writer_round_trip_and_atomic(tmp_path: Path) -> None:
    table = LabelTable.from_arrays(
        [1, 0, 2, -1, 3],
        [10.5, np.nan, np.nan, np.nan, 1.125],
        [20, np.nan, np.nan, np.nan, 2],
        status=[0, 0, 1, -1, -1],
        width=100,
        height=50,
    )
    names = [f"{i:04d}.jpg" for i in range(5)]
    out = tmp_path / "Label.csv"
    write_tennis_labels(out, table, names)
    text = out.read_text().splitlines()
    assert text[0] == "file name,visibility,x-coordinate,y-coordinate,status"
    assert text[1:] == ["0000.jpg,1,10.5,20,0", "0001.jpg,0,,,0", "0002.jpg,2,,,1", "0004.jpg,3,1.125,2,"]
    back = read_labels(out, width=100, height=50, num_frames=5, frame_names=names)
    np.testing.assert_array_equal(back.visibility, table.visibility)
    np.testing.assert_array_equal(back.status, table.status)
    np.testing.assert_allclose(back.x, table.x)
    np.testing.assert_array_equal(back.state, table.state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Label.csv"]  # no temp file left behind
    with pytest.raises(ValueError):
        write_tennis_labels(out, table, names[:2])


def test_head_cuts_arrays_and_problems(tmp_path: Path) -> None:
    t = read_labels(_csv(tmp_path, "Frame,Visibility,X,Y\n0,1,1,1\n1,1,,\n2,1,,\n"), width=10, height=10, num_frames=3)
    assert len(t.problems) == 2
    short = t.head(2)
    assert len(short) == 2 and [p.frame for p in short.problems] == [1]


# ---------------------------------------------------------------- real files
def test_real_handball_labelling_tool_file(realdata: Path) -> None:
    clip = realdata / "handball-tracknet-layout" / "game1" / "Clip1"
    names = sorted(p.name for p in clip.glob("*.jpg"))
    t = read_labels(clip / "Label.csv", width=320, height=180, num_frames=len(names), frame_names=names)
    assert t.dialect == "labelling-tool" and len(t) == 276
    assert [int((t.visibility == v).sum()) for v in range(4)] == [32, 163, 60, 21]
    assert [int((t.status == s).sum()) for s in range(3)] == [164, 86, 26]
    assert _kinds(t) == [(VISIBLE_WITHOUT_COORDINATES, 184, 182), (VISIBLE_WITHOUT_COORDINATES, 185, 183)]
    assert t.x[0] == pytest.approx(157.0) and t.y[0] == pytest.approx(54.75)


def test_real_badminton_frame_ball_file(realdata: Path) -> None:
    t = read_labels(realdata / "badminton-train" / "00001.csv", width=640, height=360)
    assert t.dialect == "frame-ball"
    assert t.x[0] == pytest.approx(0.496 * 640) and t.y[0] == pytest.approx(0.549 * 360)
    assert set(np.unique(t.state).tolist()) <= {0, 1}


def test_real_tracknetv2_frame_num_file(realdata: Path) -> None:
    t = read_labels(realdata / "badminton-1080p-example" / "labels" / "1_10_12.csv", width=1920, height=1080)
    assert t.dialect == "frame-num" and len(t) == 6 and t.state.tolist() == [1] * 6
    assert t.x[0] == pytest.approx(0.6442708333333333 * 1920, abs=1e-3)
