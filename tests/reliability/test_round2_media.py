"""Damaged videos and early signals, second round (issue 32, cases 5, 6 and 11): the real command in a
subprocess on real PyAV videos, damaged with random bytes at a fixed seed and offset
(docs/reliability.md)."""

from __future__ import annotations

import csv
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.cli.helpers import ROOT, tracknet
from tests.reliability.conftest import TINY, one_error_line_after_info, write_mp4

FRAMES, GOP = 300, 30


def level(i: int) -> int:
    """The brightness of frame i's top band: the frame number mod 32, readable after lossy coding."""
    return 20 + 7 * (i % 32)


def numbered_video(path: Path) -> Path:
    """300 frames at 128x72, 30 fps, a keyframe every 30 frames: a top band whose brightness gives the
    frame number (mod 32) above noise (so each frame takes a few KB and damage hits few frames)."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(
            "libx264",
            rate=30,
            options={"preset": "ultrafast", "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"},
        )
        stream.width, stream.height, stream.pix_fmt = 128, 72, "yuv420p"
        for i in range(FRAMES):
            img = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
            img[:24] = level(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def damaged(src: Path, dst: Path, offset: int, seed: int, count: int = 3000) -> Path:
    """A copy of `src` with `count` random bytes (seeded) written at `offset`."""
    data = bytearray(src.read_bytes())
    data[offset : offset + count] = random.Random(seed).randbytes(count)
    dst.write_bytes(bytes(data))
    return dst


def first_packet_offset(video: Path) -> int:
    import av

    with av.open(str(video)) as container:
        return int(next(container.demux(video=0)).pos)


def decoded_levels(video: Path) -> list[int]:
    """Frame number mod 32 of every frame that decodes, in the order the decoder gives them out."""
    import av

    out = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in frames:
                band = frame.to_ndarray(format="rgb24")[4:20]
                out.append(round((float(np.median(band)) - 20) / 7) % 32)
    return out


def predicted_frames(csv_path: Path) -> list[int]:
    with csv_path.open() as f:
        return [int(row[0]) for row in list(csv.reader(f))[1:]]


def one_warning(stderr: str) -> str:
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, stderr
    return warnings[0]


# ---------------------------------------------------------------- case 5: damage in the middle of a video
def test_damage_in_the_middle_keeps_the_true_frame_numbers_after_it(rel_checkpoint: Path, tmp_path: Path) -> None:
    """It exited 0 warning "truncated?", and every row after the damage carried a wrong frame number
    (the CSV ended at frame 310 of 317)."""
    clean = numbered_video(tmp_path / "clean.mp4")
    video = damaged(clean, tmp_path / "mid.mp4", clean.stat().st_size // 2, seed=5)
    proc = tracknet("predict", str(video), "-c", str(rel_checkpoint), "--no-video", "--csv", str(tmp_path / "o.csv"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    frames = predicted_frames(tmp_path / "o.csv")
    lost = sorted(set(range(FRAMES)) - set(frames))
    assert frames == sorted(set(frames)) and frames[-1] == FRAMES - 1 and lost, frames  # a gap, then the true end
    warning = one_warning(proc.stderr)
    assert f"{len(lost)} frame{'s' if len(lost) > 1 else ''} did not decode (frame" in warning, warning
    assert (f"frames {lost[0]}-{lost[-1]}" if len(lost) > 1 else f"frame {lost[0]}") in warning, warning
    assert "truncated?" not in warning and f"kept the {len(frames)} frames" in warning, warning
    # The rows are the decoded frames in order, each under its own number (the picture says which).
    levels = decoded_levels(video)
    assert len(levels) == len(frames)
    wrong = [(n, k) for n, k in zip(frames, levels) if n % 32 != k]
    assert len(wrong) <= 2, wrong  # a concealed frame at the damage may show another picture


def test_training_refuses_a_video_with_a_gap_instead_of_shifting_its_labels(
    rel_checkpoint: Path, tmp_path: Path
) -> None:
    """Training reads videos through the same reader and matches frames to labels by position: after a
    gap every later label would sit on the wrong frame, so it is refused, naming where the damage is
    (it said `decodes 150 frames but its labels need 300`: training's reader stopped at the first
    damaged packet as if the file ended there, while predict went on and renumbered)."""
    data = tmp_path / "data"
    data.mkdir()
    clean = numbered_video(tmp_path / "clean.mp4")
    damaged(clean, data / "00001.mp4", clean.stat().st_size // 2, seed=5)
    labels = "Frame,Ball,x,y\n" + "".join(f"{i},1,0.5,0.5\n" for i in range(FRAMES - 30))
    (data / "00001.csv").write_text(labels)
    tracknet(
        "predict", str(data / "00001.mp4"), "-c", str(rel_checkpoint), "--no-video", "--csv", str(tmp_path / "o.csv")
    )
    first_lost = min(set(range(FRAMES)) - set(predicted_frames(tmp_path / "o.csv")))
    proc = tracknet("train", *TINY, "--set", f"data.root={data}", "--out", str(tmp_path / "run"))
    line = one_error_line_after_info(
        proc, 2, str(data / "00001.mp4"), "did not decode", "cannot be matched to their labels"
    )
    assert re.search(rf"is damaged: frames? {first_lost}\b", line), line  # where the damage begins


# ---------------------------------------------------------------- case 6: a corrupt first GOP
def test_a_corrupt_first_gop_is_read_from_the_first_frame_that_decodes(rel_checkpoint: Path, tmp_path: Path) -> None:
    """It was refused (`cannot decode any frame of ...: the file is damaged`) although every later
    GOP decodes."""
    clean = numbered_video(tmp_path / "clean.mp4")
    video = damaged(clean, tmp_path / "head.mp4", first_packet_offset(clean) + 64, seed=6)
    proc = tracknet("predict", str(video), "-c", str(rel_checkpoint), "--no-video", "--csv", str(tmp_path / "o.csv"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    frames = predicted_frames(tmp_path / "o.csv")
    assert frames == list(range(GOP, FRAMES)), frames[:5]  # from the second keyframe on, under its own number
    warning = one_warning(proc.stderr)
    assert f"{GOP} frames did not decode (frames 0-{GOP - 1};" in warning, warning
    assert [n % 32 for n in frames] == decoded_levels(video)


# ---------------------------------------------------------------- case 11: a signal while the command starts
def _startup_s() -> float:
    """How long this Python takes to reach its first line of code: a signal before that (Python's own
    start-up, site imports) is beyond any program, so no delay below twice that is tried."""
    times = []
    for _ in range(3):
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.monotonic() - began)
    return 2 * sorted(times)[1]


def _signalled(args: list[str], sig: signal.Signals, delay: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_signal_at_any_moment_is_exit_130_and_one_line(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    """SIGINT 0.1-0.3 s after `predict` started printed a KeyboardInterrupt traceback; SIGTERM ended it
    (and `config show`) with 143 and no message."""
    video = write_mp4(tmp_path / "long.mp4", rel_data / "game1" / "Clip1", repeat=40)  # runs well past 1.5 s
    floor = _startup_s()
    predict = [
        "predict",
        str(video),
        "-c",
        str(rel_checkpoint),
        "--no-video",
        "--csv",
        str(tmp_path / "o.csv"),
        "--overwrite",
    ]
    cases = [(predict, d) for d in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5)]
    cases += [(["config", "show"], d) for d in (0.05, 0.1, 0.2, 0.3)]
    for args, delay in cases:
        for sig in (signal.SIGINT, signal.SIGTERM):
            proc = _signalled(args, sig, max(delay, floor))
            what = (args[0], sig.name, delay, proc.returncode, proc.stderr[-2000:])
            if args[0] == "config" and proc.returncode == 0:
                assert proc.stdout.strip() and not proc.stderr.strip(), what  # it had finished: the signal came late
                continue
            lines = proc.stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("error: ")]
            assert proc.returncode == 130 and "Traceback" not in proc.stderr, what
            assert errors == lines[-1:] and "interrupted" in errors[0], what  # info lines, then one error line
