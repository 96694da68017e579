"""Issue 32's "smaller (fix while there)" list, the items the first pass left open: a long label CSV's
memory, training's full-disk line naming its file, stdout at /dev/full, `label` checking it can write
before serving, and a label x equal to the frame width (docs/reliability.md). The real command in a
subprocess on real files."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, tracknet
from tests.reliability.conftest import (
    TINY,
    one_error_line,
    one_error_line_after_info,
    refused_before_serving,
    write_mp4,
)
from tests.reliability.test_files import _tiny_tmpfs_available


def _long_video(path: Path, frames: int) -> Path:
    """An H.264 mp4 of `frames` 64x36 frames made in a second or two: one keyframe, then copies of one
    tiny "nothing changed" P packet (clip discovery counts packets and decodes only the first)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264", rate=25, options={"preset": "ultrafast", "bf": "0", "x264-params": "keyint=infinite:scenecut=0"}
        )
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        img = np.full((36, 64, 3), 90, np.uint8)
        packets = [p for _ in range(3) for p in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24"))]
        packets += list(stream.encode(None))
        step, time_base = packets[1].pts - packets[0].pts, packets[0].time_base
        first, repeat = bytes(packets[0]), bytes(packets[-1])
        for i in range(frames):
            packet = av.Packet(first if i == 0 else repeat)
            packet.pts = packet.dts = i * step
            packet.time_base, packet.stream = time_base, stream
            packet.is_keyframe = i == 0
            container.mux(packet)
    return path


def _tennis_labels(path: Path, rows: int) -> Path:
    """The tennis layout, a ball in four frames of five: ~27 bytes a row."""
    with path.open("w") as fh:
        fh.write("file name,visibility,x-coordinate,y-coordinate,status\n")
        for i in range(rows):
            fh.write(f"{i:07d}.jpg,0,,,0\n" if i % 5 == 0 else f"{i:07d}.jpg,1,{i % 64}.125,{i % 36}.5,{i % 3}\n")
    return path


def _peak_rss_mb(args: list[str], out: Path) -> tuple[int, float]:
    """(exit code, peak resident MB) of `tracknet ARGS` in a subprocess: wait4's rusage is that child's
    alone (RUSAGE_CHILDREN would be the largest of every child this test process waited for)."""
    with (out / "stdout").open("w") as stdout, (out / "stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracknet_cli", *args],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- a long label CSV in memory
def test_a_long_label_csv_takes_a_few_times_its_size_in_memory(tmp_path: Path) -> None:
    """400,000 rows (9.8 MiB): `data inspect` peaked 203 MiB above a 1,000-row clip, ~20x the file (an
    object per row, ~500 bytes each); the columns the parser keeps now take 30 MiB (~3x)."""
    peaks, sizes = {}, {}
    for name, rows in (("small", 1_000), ("long", 400_000)):
        clip = tmp_path / name
        clip.mkdir()
        _long_video(clip / "rally.mp4", rows)
        sizes[name] = _tennis_labels(clip / "rally.csv", rows).stat().st_size / 2**20
        code, peaks[name] = _peak_rss_mb(["data", "inspect", str(clip), "--json"], clip)
        assert code == 0, (clip / "stderr").read_text()
        report = json.loads((clip / "stdout").read_text())
        assert report["totals"]["frames"] == rows and report["totals"]["labelled"] == rows, report["totals"]
        assert report["totals"]["visible"] == rows - rows // 5 and report["problems"] == [], report["totals"]
    grown = peaks["long"] - peaks["small"]
    assert grown < 10 * sizes["long"], f"{grown:.0f} MB more for a {sizes['long']:.1f} MB label file ({peaks})"


def test_label_rows_with_an_infinite_or_no_visibility_are_problems(tmp_path: Path) -> None:
    """`inf` in an integer column was `unexpected OverflowError` (exit 1); an empty visibility cell
    masked its frame without a word."""
    _long_video(tmp_path / "rally.mp4", 4)
    (tmp_path / "rally.csv").write_text(
        "file name,visibility,x-coordinate,y-coordinate,status\n"
        "0000.jpg,inf,1,1,0\n0001.jpg,1,1,1,1e400\n0002.jpg,,1,1,0\n0003.jpg,1,2,3,0\n"
    )
    proc = tracknet("data", "inspect", str(tmp_path), "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    problems = [(p["row"], p["kind"]) for p in json.loads(proc.stdout)["problems"]]
    assert problems == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")], problems


# ---------------------------------------------------------------- training out of space names its file
def _train(
    rel_data: Path, out: Path, *, wrap: list[str] | None = None, env: dict[str, str] | None = None, preexec=None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(wrap or []),
            sys.executable,
            "-m",
            "tracknet_cli",
            "train",
            *TINY,
            "--set",
            f"data.root={rel_data}",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec,
    )


def test_training_out_of_space_names_the_file_it_was_writing(rel_data: Path, tmp_path: Path) -> None:
    """Under a file size limit config.yaml (the first write) said `File too large; ...` naming nothing, and
    state/last.pt `unexpected RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos ...`
    (torch.save hides the errno); on a full tmpfs curves.png, written on the way out, failed too and its
    nameless line replaced the state's."""
    for limit, name in ((1_000, "config.yaml"), (10_000_000, "state/last.pt")):

        def limited(limit: int = limit) -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        out = tmp_path / f"run{limit}"
        one_error_line_after_info(
            _train(rel_data, out, preexec=limited), 1, f"File too large while writing {out / name}; free some space"
        )
        assert [p.name for p in out.rglob(".*")] == []  # no temp file, no lock
    if not _tiny_tmpfs_available():
        pytest.skip("cannot mount a tmpfs here (unshare -rm refused): the file size limit cases ran")
    # Room for everything the run above kept (weights, logs, curves) but not the state (3x the weights).
    room = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) + (2 << 20)
    full, listing = tmp_path / "full", tmp_path / "full.listing"
    full.mkdir()
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$FOLDER" || exit 99; shift; "$@"; rc=$?; '
        'find "$FOLDER" -name ".*" > "$LISTING"; exit $rc'
    )
    proc = _train(
        rel_data,
        full / "run",
        wrap=["unshare", "-rm", "sh", "-c", script, "sh", str(room)],
        env={"FOLDER": str(full), "LISTING": str(listing)},
    )
    one_error_line_after_info(proc, 1, f"No space left on device while writing {full / 'run' / 'state' / 'last.pt'}")
    assert listing.read_text() == ""


# ---------------------------------------------------------------- stdout at /dev/full
def test_stdout_at_dev_full_says_the_files_were_kept(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    """It said `No space left on device; free some space or write elsewhere (unfinished files were removed)`
    while every file had been written and kept."""

    def full_stdout(*args: str) -> subprocess.CompletedProcess[str]:
        with open("/dev/full", "w") as full:
            return subprocess.run(
                [sys.executable, "-m", "tracknet_cli", *args],
                cwd=ROOT,
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=600,
                stdin=subprocess.DEVNULL,
            )

    synth = full_stdout(
        "data", "synth", str(tmp_path / "ds"), "--games", "1", "--clips", "1", "--frames", "5", "--size", "64x36"
    )
    one_error_line(synth, 1, "cannot write to stdout (No space left on device)", "the files it wrote are kept")
    assert tracknet("data", "inspect", str(tmp_path / "ds")).returncode == 0  # the dataset is whole
    predict = full_stdout(
        "predict",
        str(rel_data / "game1" / "Clip1"),
        "-c",
        str(rel_checkpoint),
        "--csv",
        str(tmp_path / "o.csv"),
        "--no-video",
    )
    one_error_line_after_info(predict, 1, "cannot write to stdout", "kept")
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 31  # a header and a row per frame
    one_error_line(full_stdout("data", "inspect", str(rel_data), "--json"), 1, "cannot write to stdout")


# ---------------------------------------------------------------- label checks it can write before serving
def _unprivileged() -> list[str] | None:
    """A command prefix that runs without root's power over permissions: none for a normal user; for root a
    user namespace where it is uid 1000 (files keep their owners, so chmod binds again); None if refused."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    probe = subprocess.run([*prefix, "sh", "-c", "test $(id -u) = 1000"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


def test_label_refuses_a_folder_it_cannot_write_even_with_a_lock_file_left_there(
    rel_data: Path, tmp_path: Path
) -> None:
    """The lock file was the only check: one left by a killed session opens for writing, so `label` served
    a page whose labels could never be saved. (tests/reliability/test_round2_files.py's check of a plain
    read-only folder skips as root; this one runs as root too.)"""
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root and no user namespace (unshare --user refused): chmod cannot bind here")
    folder = tmp_path / "clip"
    video = write_mp4(folder / "rally.mp4", rel_data / "game1" / "Clip1")
    for stale_lock in (False, True):
        if stale_lock:
            (folder / ".rally.csv.lock").write_text("999999\n")  # what a SIGKILL leaves (the OS lock is gone)
        folder.chmod(0o555)
        try:
            proc = refused_before_serving(
                [*prefix, sys.executable, "-m", "tracknet_cli", "label", str(video), "--no-model", "--port", "0"],
                f"label served a folder it cannot write (stale lock {stale_lock})",
                60,
            )
        finally:
            folder.chmod(0o755)
        one_error_line(proc, 2, f"cannot save labels in {folder}: Permission denied")
        assert proc.stdout == "" and sorted(p.name for p in folder.iterdir()) == sorted(
            ["rally.mp4"] + [".rally.csv.lock"] * stale_lock
        )


# ---------------------------------------------------------------- x equal to the frame width
def test_a_label_on_the_far_edge_is_a_ball_and_one_just_past_it_is_masked(tmp_path: Path) -> None:
    """Deliberate: coordinates are continuous from the top-left corner of the first pixel (data.geometry),
    so x == width is the right border of the last pixel, a point on the picture that labelling tools write
    for a ball at the edge (`tracknet label`'s page accepts 0..width too). Past it the frame is masked,
    and the warning shows the coordinate as written (`36.01` printed as `36.0` looked inside)."""
    _long_video(tmp_path / "rally.mp4", 4)  # 64x36
    (tmp_path / "rally.csv").write_text("Frame,Visibility,X,Y\n0,1,64,36\n1,1,0,0\n2,1,64.5,10\n3,1,10,36.01\n")
    proc = tracknet("data", "inspect", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    problems = {p["frame"]: p["message"] for p in report["problems"]}
    assert report["totals"]["visible"] == 4 and sorted(problems) == [2, 3], problems  # frames 0 and 1: balls
    assert problems[2] == "2: (64.5, 10) outside the 64x36 frame; frame masked", problems
    assert problems[3] == "3: (10, 36.01) outside the 64x36 frame; frame masked", problems
