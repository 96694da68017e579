"""CSV and overlay writers: columns, dialects, atomic close, interruption, decodable H.264 output."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tracknet_cli.data.labels import read_labels
from tracknet_cli.errors import InputError
from tracknet_cli.predict.tracking import BallPoint
from tracknet_cli.predict.writers import CsvWriter, OverlayWriter, even_size

ROWS = [
    BallPoint(10, 12.345, 20.5, 0.87654, visible=True),
    BallPoint(11, 14.0, 21.0, 0.0, visible=True, interpolated=True),
    BallPoint(12, 0.0, 0.0, 0.0, visible=False),
    BallPoint(13, 16.0, 22.0, 0.6, visible=True),
]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_default_csv_columns_and_values(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "pred.csv"
    with CsvWriter(out) as writer:
        for row in ROWS:
            writer.write(row)
        assert not out.exists()  # rows go to a temp file until close
    assert read_csv(out) == [
        ["Frame", "Visibility", "X", "Y", "Score", "Interpolated"],
        ["10", "1", "12.35", "20.5", "0.8765", "0"],
        ["11", "1", "14", "21", "0", "1"],
        ["12", "0", "0", "0", "0", "0"],
        ["13", "1", "16", "22", "0.6", "0"],
    ]
    assert os.listdir(out.parent) == ["pred.csv"]


def test_tracknet_dialect_reads_back_as_labels(tmp_path: Path) -> None:
    out = tmp_path / "Label.csv"
    rows = [BallPoint(i, r.x, r.y, r.score, visible=r.visible, interpolated=r.interpolated) for i, r in enumerate(ROWS)]
    with CsvWriter(out, fmt="tracknet") as writer:
        for row in rows:
            writer.write(row)
    lines = read_csv(out)
    assert lines[0] == ["file name", "visibility", "x-coordinate", "y-coordinate", "status"]
    assert lines[1] == [
        "0000.jpg",
        "1",
        "12.345",
        "20.5",
        "",
    ]  # 3 decimals, as eval --save-csv and lines[3] == ["0002.jpg", "0", "", "", ""]
    table = read_labels(out, width=64, height=48)
    assert table.dialect == "tennis"
    assert table.visibility.tolist() == [1, 1, 0, 1]
    np.testing.assert_allclose(table.x[[0, 1, 3]], [12.345, 14.0, 16.0])
    named = tmp_path / "named.csv"
    with CsvWriter(named, fmt="tracknet") as writer:
        writer.write(ROWS[0], name="frame_0010.png")
    assert read_csv(named)[1][0] == "frame_0010.png"


def test_no_overwrite_without_permission(tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    out.write_text("keep me")
    with pytest.raises(InputError, match="pass overwrite to replace it"):
        CsvWriter(out)
    with pytest.raises(InputError, match="pass overwrite to replace it"):
        OverlayWriter(tmp_path / "pred.csv", fps=30, source_size=(64, 48))
    assert out.read_text() == "keep me"
    with CsvWriter(out, overwrite=True) as writer:
        writer.write(ROWS[0])
    assert len(read_csv(out)) == 2
    with pytest.raises(InputError):
        CsvWriter(out, fmt="excel", overwrite=True)  # type: ignore[arg-type]


def test_exception_mid_stream_keeps_the_rows_written(tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    with pytest.raises(KeyboardInterrupt):
        with CsvWriter(out) as writer:
            writer.write(ROWS[0])
            writer.write(ROWS[1])
            raise KeyboardInterrupt
    assert [r[0] for r in read_csv(out)] == ["Frame", "10", "11"]
    assert os.listdir(tmp_path) == ["pred.csv"]
    discarded = CsvWriter(tmp_path / "gone.csv")
    discarded.write(ROWS[0])
    discarded.discard()
    assert os.listdir(tmp_path) == ["pred.csv"]


def decode(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    container = av.open(str(path))
    stream = container.streams.video[0]
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    container.close()
    return frames, stream


def test_overlay_odd_size_frame_count_rate_and_faststart(tmp_path: Path) -> None:
    out = tmp_path / "overlay.mp4"
    writer = OverlayWriter(out, fps=25, source_size=(65, 47), trail=4)
    assert writer.frame_size == (64, 46)
    for i in range(17):
        writer.write(
            np.full((47, 65, 3), 90, np.uint8),
            BallPoint(i, 5.0 + 3 * i, 20.0, 0.9, visible=i % 5 != 4, interpolated=i % 5 == 3),
        )
    assert not out.exists()
    assert writer.close() == out
    frames, stream = decode(out)
    assert len(frames) == 17 and frames[0].shape == (46, 64, 3)
    assert stream.average_rate == 25 and stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: the index comes first
    assert os.listdir(tmp_path) == ["overlay.mp4"]


def gray_input(kind: str, w: int, h: int, value: int = 128):
    """A flat frame as the caller passes it: an RGB array, or a yuv420p frame (the video fast path)."""
    rgb = np.full((h, w, 3), value, np.uint8)
    return rgb if kind == "rgb" else av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


@pytest.mark.parametrize("kind", ["rgb", "yuv"])
def test_markers_detection_filled_interpolation_hollow(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "marks.mp4"
    rows = [
        BallPoint(0, 40.0, 30.0, 0.9, visible=True),
        BallPoint(1, 40.0, 30.0, 0.0, visible=True, interpolated=True),
        BallPoint(2, 0, 0, 0, visible=False),
    ]
    with OverlayWriter(out, fps=30, source_size=(128, 96), trail=0, preset="ultrafast", crf=10) as writer:
        for row in rows:
            writer.write(gray_input(kind, 128, 96), row)
    frames, _ = decode(out)
    r = writer.radius
    detection, interpolated, empty = frames
    red = detection[30, 40].astype(int)
    assert red[0] > 200 and red[1] < 100 and red[2] < 100  # filled red centre
    assert abs(int(interpolated[30, 40, 1]) - 128) < 20  # hollow: the centre keeps the background
    ring = interpolated[30, 40 + r].astype(int)
    assert ring[0] > 200 and ring[1] > 170 and ring[2] < 100  # yellow ring
    assert np.abs(empty.astype(int) - 128).max() < 20  # nothing drawn without a ball


def test_video_source_to_overlay_fast_path(tmp_path: Path) -> None:
    """Decoded yuv420p frames go to the writer; marks drawn on them must not leak into the
    decoder's reference frames (the next frames would show old marks)."""
    from tracknet_cli.predict.sources import open_source

    video = tmp_path / "in.mp4"
    c = av.open(str(video), "w", format="mp4")
    st = c.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": "50", "crf": "5"})
    st.width, st.height, st.pix_fmt = 96, 64, "yuv420p"
    for _ in range(12):
        for packet in st.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), 100, np.uint8), format="rgb24")):
            c.mux(packet)
    for packet in st.encode(None):
        c.mux(packet)
    c.close()
    src = open_source(video)[0]
    out = tmp_path / "out.mp4"
    with OverlayWriter(out, fps=src.info.rate, source_size=src.info.size, trail=0, crf=10) as writer:
        for f in src.frames([(48, 32)], overlay_size=writer.frame_size):
            assert isinstance(f.overlay, av.VideoFrame) and f.overlay.format.name == "yuv420p"
            writer.write(f.overlay, BallPoint(f.index, 8.0 + 7 * f.index, 32.0, 0.9, visible=True))
    frames, _ = decode(out)
    assert len(frames) == 12
    for i, img in enumerate(frames):
        assert img[32, 8 + 7 * i, 0] > 200  # this frame's mark
        for j in range(i):
            assert abs(int(img[32, 8 + 7 * j, 0]) - 100) < 25  # earlier marks are gone


def test_trail_fades_behind_the_ball(tmp_path: Path) -> None:
    out = tmp_path / "trail.mp4"
    with OverlayWriter(out, fps=30, source_size=(160, 90), trail=3, preset="ultrafast", crf=10) as writer:
        for i in range(6):
            writer.write(np.zeros((90, 160, 3), np.uint8), BallPoint(i, 20.0 + 20 * i, 45.0, 0.9, visible=True))
    last = decode(out)[0][-1].astype(int)
    reds = [last[45, 20 + 20 * i, 0] for i in range(6)]
    # Frames 2, 3, 4 are the trail (older is fainter), 5 the ball, 0 and 1 have left the trail.
    assert reds[0] < 40 and reds[1] < 40
    assert 40 < reds[2] < reds[3] < reds[4] < reds[5]


def test_overlay_scale_and_point_mapping(tmp_path: Path) -> None:
    out = tmp_path / "half.mp4"
    writer = OverlayWriter(out, fps=30, source_size=(96, 54), scale=0.5, trail=0, crf=10)
    assert writer.frame_size == (48, 26) == even_size((96, 54), 0.5)
    for i in range(5):
        writer.write(np.zeros((26, 48, 3), np.uint8), BallPoint(i, 60.0, 30.0, 0.9, visible=True))
    writer.close()
    frames, _ = decode(out)
    assert len(frames) == 5 and frames[0].shape == (26, 48, 3)
    assert frames[-1][14, 30, 0] > 150  # (60, 30) source -> (30, 14.4) overlay
    # A full-size frame is resized to the overlay size by the writer when the caller passes one.
    other = OverlayWriter(tmp_path / "resized.mp4", fps=30, source_size=(96, 54), scale=0.5)
    other.write(np.zeros((54, 96, 3), np.uint8), BallPoint(0, 0, 0, 0, visible=False))
    other.close()
    assert decode(tmp_path / "resized.mp4")[0][0].shape == (26, 48, 3)


def test_overlay_without_frames_leaves_nothing(tmp_path: Path) -> None:
    writer = OverlayWriter(tmp_path / "none.mp4", fps=30, source_size=(64, 48))
    assert writer.close() is None
    assert os.listdir(tmp_path) == []


CHILD = textwrap.dedent("""
    import sys, numpy as np
    from tracknet_cli.predict.tracking import BallPoint
    from tracknet_cli.predict.writers import CsvWriter, OverlayWriter
    out = sys.argv[1]
    with CsvWriter(out + "/p.csv") as csv_w, OverlayWriter(out + "/p.mp4", fps=30, source_size=(64, 48)) as vid:
        i = 0
        while True:
            row = BallPoint(i, float(i % 60), 20.0, 0.9, visible=True)
            vid.write(np.full((48, 64, 3), 60, np.uint8), row)
            csv_w.write(row)
            i += 1
            if i == 40:
                print("ready", flush=True)
""")


def test_ctrl_c_leaves_a_valid_csv_and_video(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) != 0  # KeyboardInterrupt propagated after the writers closed
    rows = read_csv(tmp_path / "p.csv")
    frames, _ = decode(tmp_path / "p.mp4")
    assert len(rows) - 1 >= 40
    # The interrupted frame may have been encoded but not written to the CSV (or the reverse): at most one apart.
    assert abs(len(frames) - (len(rows) - 1)) <= 1
    assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    assert sorted(os.listdir(tmp_path)) == ["p.csv", "p.mp4"]
