"""`tracknet predict` end to end with a model `tracknet train` wrote in this session, on mp4 files
written here with PyAV from `data synth` frames, frame folders and single images.

The tiny model trains for two steps (a checkpoint as `tracknet train` writes it; 50 steps, more
than a test may take on this CPU, still learn nothing: F1 0, 53 px median error), so these check what the
command guarantees whatever the weights: one row per decoded frame with absolute numbers, overlays
with matching frame counts and sizes, interpolation flags consistent with the raw detections, exit
codes and kept files. Placement against an offline reference is tested in tests/predict/test_pipeline.py."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.cli.helpers import ROOT, invoke, tracknet

HEADER = ["Frame", "Visibility", "X", "Y", "Score", "Interpolated"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracknet_cli.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth") / "tracknet"
    synthesize(root, games=1, clips=3, frames=40, size=(256, 144), seed=0)
    return root


@pytest.fixture(scope="module")
def checkpoint(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    proc = tracknet(
        "train",
        "--profile",
        "quickstart",
        "--set",
        f"data.root={synth_root}",
        "--set",
        "data.input_width=128",
        "--set",
        "data.input_height=72",
        "--set",
        "data.heatmap_width=64",
        "--set",
        "data.heatmap_height=36",
        "--set",
        "training.batch_size=4",
        "--set",
        "training.max_steps=2",
        "--set",
        "training.val_every=2",
        "--set",
        "training.overlay_frames=0",
        "--set",
        "data.cache=off",
        "--out",
        str(run_dir),
    )
    assert proc.returncode == 0, proc.stderr
    return run_dir / "weights" / "best.safetensors"


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 25, size: tuple[int, int] | None = None) -> Path:
    """H.264 from RGB frames (yuv444p for odd sizes, which 4:2:0 cannot hold)."""
    h, w = frames[0].shape[:2]
    w, h = size or (w, h)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": "10"})
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if (frame.width, frame.height) != (w, h):
                frame = frame.reformat(width=w, height=h)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def synth_frames(synth_root: Path, clip: str = "Clip1") -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted((synth_root / "game1" / clip).glob("*.jpg"))]


@pytest.fixture(scope="module")
def video(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("vid") / "rally.mp4", synth_frames(synth_root))


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows


def video_info(path: Path) -> tuple[int, int, int, Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, s.width, s.height, Fraction(s.average_rate)


def test_video_to_default_run_dir(
    checkpoint: Path, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", str(video), "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "runs" / "predict" / "exp1"
    rows = read_rows(out / "rally.csv")
    assert rows[0] == HEADER and [int(r[0]) for r in rows[1:]] == list(range(40))
    for _frame, vis, x, y, score, interp in rows[1:]:
        assert vis in ("0", "1") and interp in ("0", "1")
        if vis == "0":
            assert (x, y, score, interp) == ("0", "0", "0", "0")
        else:
            assert 0 <= float(x) <= 256 and 0 <= float(y) <= 144
            assert (float(score) == 0) == (interp == "1")
    assert video_info(out / "rally.mp4") == (40, 256, 144, Fraction(25))
    summary = result.stdout.strip().splitlines()[-1]
    detections = sum(1 for r in rows[1:] if r[1] == "1" and r[5] == "0")
    interpolated = sum(1 for r in rows[1:] if r[5] == "1")
    assert summary.startswith(f"rally: 40 frames, {detections} detections, {interpolated} interpolated, ")
    assert "frames/s" in summary and "rally.csv" in summary
    # The next run takes the next folder, never the same files.
    assert invoke("predict", str(video), "-c", str(checkpoint), "--no-video").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "predict" / "exp2").iterdir()) == ["rally.csv"]


def test_start_end_keep_absolute_frame_numbers(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    result = invoke(
        "predict",
        str(video),
        "-c",
        str(checkpoint),
        "--start",
        "10",
        "--end",
        "31",
        "--out",
        str(tmp_path / "o.mp4"),
        "--csv",
        str(tmp_path / "o.csv"),
        "--overlay-scale",
        "0.5",
    )
    assert result.exit_code == 0, result.stderr
    assert [int(r[0]) for r in read_rows(tmp_path / "o.csv")[1:]] == list(range(10, 31))
    assert video_info(tmp_path / "o.mp4")[:3] == (21, 128, 72)


def test_frame_folder_tracknet_csv_and_image(checkpoint: Path, synth_root: Path, tmp_path: Path) -> None:
    folder = synth_root / "game1" / "Clip2"
    result = invoke(
        "predict",
        str(folder),
        "-c",
        str(checkpoint),
        "--csv",
        str(tmp_path / "f.csv"),
        "--no-video",
        "--csv-format",
        "tracknet",
    )
    assert result.exit_code == 0, result.stderr
    rows = read_rows(tmp_path / "f.csv")
    assert rows[0] == ["file name", "visibility", "x-coordinate", "y-coordinate", "status"]
    assert [r[0] for r in rows[1:]] == [f"{i:04d}.jpg" for i in range(40)]
    assert not (tmp_path / "f.mp4").exists()
    # The tracknet dialect reads back as labels (what `tracknet eval --pred-csv` does).
    from tracknet_cli.data.labels import read_labels

    table = read_labels(tmp_path / "f.csv", width=256, height=144)
    assert len(table.visibility) == 40

    image = folder / "0007.jpg"
    result = invoke("predict", str(image), "-c", str(checkpoint), "--out", str(tmp_path / "one.mp4"))
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in read_rows(tmp_path / "one.csv")] == ["Frame", "0"]
    assert video_info(tmp_path / "one.mp4")[:3] == (1, 256, 144)


def test_odd_size_video_gives_even_overlay(checkpoint: Path, synth_root: Path, tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "odd.mp4", synth_frames(synth_root)[:12], size=(201, 113))
    result = invoke("predict", str(path), "-c", str(checkpoint), "--out", str(tmp_path / "o.mp4"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(tmp_path / "o.csv")[1:]
    assert len(rows) == 12
    assert all(0 <= float(r[2]) <= 201 and 0 <= float(r[3]) <= 113 for r in rows)
    assert video_info(tmp_path / "o.mp4")[:3] == (12, 200, 112)


def test_truncated_video_warns_and_exits_0(checkpoint: Path, synth_root: Path, tmp_path: Path) -> None:
    """A +faststart file cut short: the header claims more frames than decode."""
    frames = synth_frames(synth_root, "Clip1") + synth_frames(synth_root, "Clip2")
    full = write_mp4(tmp_path / "full.mp4", frames)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 80
    result = invoke("predict", str(cut), "-c", str(checkpoint), "--out", str(tmp_path / "o.mp4"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(tmp_path / "o.csv")[1:]
    assert 10 < len(rows) < 80 and [int(r[0]) for r in rows] == list(range(len(rows)))
    assert video_info(tmp_path / "o.mp4")[0] == len(rows)
    assert f"{len(rows)} of the 80 frames the header claims decoded" in " ".join(result.stderr.split())


def test_1080p_file_from_real_data(checkpoint: Path, realdata: Path, tmp_path: Path) -> None:
    path = realdata / "badminton-1080p-example" / "videos" / "1_10_12.mp4"
    result = invoke(
        "predict", str(path), "-c", str(checkpoint), "--out", str(tmp_path / "o.mp4"), "--csv", str(tmp_path / "o.csv")
    )
    assert result.exit_code == 0, result.stderr
    assert [int(r[0]) for r in read_rows(tmp_path / "o.csv")[1:]] == list(range(6))
    assert video_info(tmp_path / "o.mp4") == (6, 1920, 1080, Fraction(25))


def test_folder_of_videos_one_output_each(
    checkpoint: Path, synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    write_mp4(folder / "b.mp4", synth_frames(synth_root)[:9])
    write_mp4(folder / "a.mp4", synth_frames(synth_root)[:5])
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", str(folder), "-c", str(checkpoint), "--no-video")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "runs" / "predict" / "exp1"
    assert len(read_rows(out / "a.csv")) == 6 and len(read_rows(out / "b.csv")) == 10
    assert "total: 2 inputs, 14 frames" in result.stdout
    result = invoke("predict", str(folder), "-c", str(checkpoint), "--csv", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "one input" in result.stderr


def test_interpolated_rows_fill_gaps_between_raw_detections(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    assert (
        invoke(
            "predict",
            str(video),
            "-c",
            str(checkpoint),
            "--csv",
            str(raw),
            "--no-video",
            "--no-track",
            "--threshold",
            "0",
        ).exit_code
        == 0
    )
    scores = np.array([float(r[4]) for r in read_rows(raw)[1:]])
    # A threshold between the scores leaves gaps; a huge gate keeps every detection on one track.
    threshold = float(np.sort(scores)[len(scores) // 2])
    common = ["-c", str(checkpoint), "--no-video", "--threshold", str(threshold), "--max-jump", "10000"]
    assert invoke("predict", str(video), *common, "--no-track", "--csv", str(tmp_path / "nt.csv")).exit_code == 0
    assert invoke("predict", str(video), *common, "--max-gap", "3", "--csv", str(tmp_path / "t.csv")).exit_code == 0
    untracked, tracked = read_rows(tmp_path / "nt.csv")[1:], read_rows(tmp_path / "t.csv")[1:]
    assert len(untracked) == len(tracked) == 40
    assert not any(r[5] == "1" for r in untracked)
    detected = [r[1] == "1" for r in untracked]
    filled = [i for i, r in enumerate(tracked) if r[5] == "1"]
    assert filled, "expected some gaps of at most 3 frames between detections"
    for i in filled:
        assert not detected[i] and tracked[i][1] == "1" and tracked[i][4] == "0"
        before = max(j for j in range(i) if detected[j])
        after = min(j for j in range(i + 1, 40) if detected[j])
        assert after - before - 1 <= 3
        t = (i - before) / (after - before)
        for col in (2, 3):  # linear between the two detections
            expect = float(untracked[before][col]) + t * (float(untracked[after][col]) - float(untracked[before][col]))
            assert abs(float(tracked[i][col]) - expect) < 0.02
    for i, r in enumerate(tracked):  # every detection is a raw detection with its position
        if r[1] == "1" and r[5] == "0":
            assert untracked[i][1:5] == r[1:5]


def test_no_overwrite_without_flag(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    args = ["predict", str(video), "-c", str(checkpoint), "--csv", str(tmp_path / "o.csv"), "--end", "5"]
    assert invoke(*args).exit_code == 0
    before = (tmp_path / "o.csv").read_bytes(), (tmp_path / "o.mp4").read_bytes()
    result = invoke(*args[:-1], "8")
    assert result.exit_code == 2 and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert ((tmp_path / "o.csv").read_bytes(), (tmp_path / "o.mp4").read_bytes()) == before
    assert invoke(*args[:-1], "8", "--overwrite").exit_code == 0
    assert len(read_rows(tmp_path / "o.csv")) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "o.mp4"]


def test_bad_inputs_exit_2_with_one_line(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(checkpoint.read_bytes()[:5000])
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    cases = [
        ([str(tmp_path / "missing.mp4"), "-c", str(checkpoint)], "input not found"),
        ([str(not_video), "-c", str(checkpoint)], "notes.mp4"),
        ([str(empty), "-c", str(checkpoint)], "holds no frame images"),
        ([str(video), "-c", str(tmp_path / "nope.safetensors")], "checkpoint not found"),
        ([str(video), "-c", str(corrupt)], "corrupt.safetensors"),
        ([str(video), "-c", str(foreign)], "not a TrackNet checkpoint"),
        ([str(video), "-c", str(checkpoint), "--start", "9", "--end", "9"], "--end"),
        ([str(video), "-c", str(checkpoint), "--device", "tpu"], "--device"),
        ([str(video), "-c", str(checkpoint), "--threshold", "2"], "threshold 2 must be between 0 and 1 (--threshold)"),
        ([str(video), "-c", str(checkpoint), "--max-jump", "0"], "(--max-jump)"),
        ([str(video), "-c", str(checkpoint), "--precision", "fp16"], "--precision"),
        ([str(video), "-c", str(checkpoint), "--no-video", "--out", "x.mp4"], "--no-video"),
    ]
    for args, needle in cases:
        result = invoke("predict", *args, "--csv", str(tmp_path / "never.csv"))
        assert result.exit_code == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, result.stderr)
    assert not (tmp_path / "never.csv").exists()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_keeps_valid_csv_and_video(
    stop: signal.Signals, checkpoint: Path, synth_root: Path, tmp_path: Path
) -> None:
    """Ctrl-C, or SIGTERM (`kill PID`, `timeout 600 tracknet predict ...`): both files kept, whole."""
    frames = synth_frames(synth_root)
    path = write_mp4(tmp_path / "long.mp4", [frames[i % 40] for i in range(600)], size=(128, 72))
    csv_path, video_path = tmp_path / "o.csv", tmp_path / "o.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracknet_cli",
            "predict",
            str(path),
            "-c",
            str(checkpoint),
            "--batch",
            "1",
            "--csv",
            str(csv_path),
            "--out",
            str(video_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    # Wait for the overlay's temp file (the model has loaded and writing has begun) however long a
    # loaded machine takes to import torch and load the model; Ctrl-C before that is another test's.
    deadline = time.monotonic() + 540
    while not list(tmp_path.glob(".o.mp4.*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".o.mp4.*")), "predict never started writing"
    time.sleep(1.0)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    rows = read_rows(csv_path)
    assert rows[0] == HEADER
    n = len(rows) - 1
    assert n < 600 and [int(r[0]) for r in rows[1:]] == list(range(n))
    if n:
        assert video_info(video_path)[0] == n
    assert not list(tmp_path.glob(".o.*")), "temp files left behind"
