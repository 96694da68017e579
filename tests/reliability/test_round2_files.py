"""Issue 32, cases 1-4 and the file-related small ones: special files as outputs, one label server
per label file, a label file edited under a running server, two `train --out SAME` at once
(docs/reliability.md). Real CLI in subprocesses, real files, the label server over HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, tracknet
from tests.label.server import label_server, wait_for
from tests.reliability.conftest import TINY, one_error_line, refused_before_serving, write_mp4


@pytest.fixture()
def clip_video(rel_data: Path, tmp_path: Path) -> Path:
    """A 30-frame mp4 alone in a writable folder."""
    return write_mp4(tmp_path / "clip" / "rally.mp4", rel_data / "game1" / "Clip1")


# ---------------------------------------------------------------- case 1: special files as outputs
def test_overwrite_never_replaces_a_fifo_a_socket_or_a_link(
    clip_video: Path, rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.csv"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    kept = tmp_path / "kept.csv"
    kept.write_text("mine\n")
    link = tmp_path / "link.csv"
    link.symlink_to(kept)
    predict = ["predict", str(clip_video), "-c", str(rel_checkpoint), "--no-video", "--overwrite", "--csv"]
    try:
        one_error_line(tracknet(*predict, str(fifo)), 2, str(fifo), "named pipe (FIFO)", "not a regular file")
        one_error_line(tracknet(*predict, str(sock_path)), 2, "a socket")
        one_error_line(tracknet(*predict, str(link)), 2, "symbolic link", str(kept))
        # the same check guards eval --save-csv (a FIFO where a clip's CSV goes), with or without --overwrite
        preds = tmp_path / "preds" / "game1" / "Clip1"
        preds.mkdir(parents=True)
        os.mkfifo(preds / "Label.csv")
        for extra in ([], ["--overwrite"]):
            proc = tracknet(
                "eval",
                "--checkpoint",
                str(rel_checkpoint),
                "--data-root",
                str(rel_data),
                "--split",
                "all",
                "--save-csv",
                str(tmp_path / "preds"),
                *extra,
            )
            one_error_line(proc, 2, "named pipe (FIFO)")
    finally:
        server.close()
    assert fifo.is_fifo() and sock_path.is_socket() and (preds / "Label.csv").is_fifo()
    assert link.is_symlink() and kept.read_text() == "mine\n"


def test_csv_dash_is_refused_not_written_as_a_file(clip_video: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    proc = tracknet("predict", str(clip_video), "-c", str(rel_checkpoint), "--no-video", "--csv", "-", cwd=tmp_path)
    one_error_line(proc, 2, "- would be a file named '-'", "not to stdout")
    assert not (tmp_path / "-").exists()


def test_label_refuses_a_fifo_as_its_label_file(clip_video: Path, tmp_path: Path) -> None:
    """`--labels FIFO` used to hang silently (reading a FIFO waits for a writer)."""
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    proc = tracknet("label", str(clip_video), "--no-model", "--labels", str(fifo), timeout=120)
    one_error_line(proc, 2, str(fifo), "named pipe (FIFO)", "not a regular file")


# ---------------------------------------------------------------- case 2: two label servers, one file
def test_a_second_label_server_on_the_same_file_is_refused(clip_video: Path) -> None:
    labels = clip_video.with_suffix(".csv")
    with label_server(str(clip_video), "--no-model") as first:
        change = {"changes": [{"frame": 10, "visibility": 1, "x": 40, "y": 20}]}
        assert first.json("PUT", "/api/labels", change)[0] == 200
        second = refused_before_serving(
            [sys.executable, "-m", "tracknet_cli", "label", str(clip_video), "--no-model"], "the second server started"
        )
        one_error_line(second, 2, str(labels), "another tracknet label", f"pid {first.proc.pid}")
        assert second.stdout == ""
        code, _, _ = first.stop()
    assert code == 0
    assert "10,1,40,20" in labels.read_text().splitlines()  # the first's label was kept


def test_a_killed_servers_lock_does_not_block(clip_video: Path) -> None:
    labels = clip_video.with_suffix(".csv")
    with label_server(str(clip_video), "--no-model") as first:
        first.json("PUT", "/api/labels", {"changes": [{"frame": 3, "visibility": 1, "x": 40, "y": 20}]})
        assert wait_for(lambda: first.json("GET", "/api/status")[1]["saved_revision"] >= 1)
        first.proc.kill()
        first.proc.communicate()
    assert (labels.parent / ".rally.csv.lock").exists()  # left by SIGKILL, released by the OS
    with label_server(str(clip_video), "--no-model") as second:
        assert second.json("GET", "/api/labels")[1]["labels"][3] == {"visibility": 1, "x": 40.0, "y": 20.0}
        code, _, err = second.stop()
    assert code == 0, err
    assert not (labels.parent / ".rally.csv.lock").exists()  # a normal stop removes it


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_label_checks_it_can_write_before_serving(clip_video: Path) -> None:
    folder = clip_video.parent
    folder.chmod(0o555)
    try:
        proc = tracknet("label", str(clip_video), "--no-model", timeout=300)
    finally:
        folder.chmod(0o755)
    one_error_line(proc, 2, "cannot save labels in", str(folder))


# ---------------------------------------------------------------- case 3: label file edited under the server
def test_a_label_file_changed_by_another_program_is_kept(clip_video: Path) -> None:
    labels = clip_video.with_suffix(".csv")
    with label_server(str(clip_video), "--no-model") as srv:
        srv.json("PUT", "/api/labels", {"changes": [{"frame": 3, "visibility": 1, "x": 40, "y": 20}]})
        assert wait_for(lambda: srv.json("GET", "/api/status")[1]["saved_revision"] >= 1)
        with labels.open("a") as fh:  # a script appends a row
            fh.write("29,1,99.5,11.5\n")
        theirs = labels.read_text()
        srv.json("PUT", "/api/labels", {"changes": [{"frame": 5, "visibility": 1, "x": 41, "y": 21}]})
        assert wait_for(lambda: srv.json("GET", "/api/status")[1]["save_error"] is not None)
        message = srv.json("GET", "/api/status")[1]["save_error"]
        assert "changed by another program" in message and ".conflict-" in message
        status, body = srv.json("PUT", "/api/labels", {"changes": [{"frame": 6, "visibility": 0}]})
        assert status == 409 and body["error"] == message
        time.sleep(2.5)  # the saver goes on waking: the warning must not repeat
        code, _, err = srv.stop()
    assert code == 0, err
    assert labels.read_text() == theirs  # their version, untouched
    copies = list(labels.parent.glob("rally.conflict-*.csv"))
    assert len(copies) == 1
    assert copies[0].read_text().splitlines() == ["Frame,Visibility,X,Y", "3,1,40,20", "5,1,41,21"]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "changed by another program" in warnings[0] and str(copies[0]) in warnings[0], err


def test_a_save_failure_is_reported_once(clip_video: Path) -> None:
    """A save that keeps failing (here a folder where the sidecar goes) warns once, not every second."""
    sidecar = clip_video.parent / "rally.csv.label.json"
    with label_server(str(clip_video), "--no-model") as srv:
        sidecar.mkdir()
        srv.json("PUT", "/api/labels", {"changes": [{"frame": 3, "visibility": 1, "x": 40, "y": 20}]})
        assert wait_for(lambda: srv.json("GET", "/api/status")[1]["save_error"] is not None)
        time.sleep(3.5)
        sidecar.rmdir()
        assert wait_for(lambda: srv.json("GET", "/api/status")[1]["save_error"] is None)
        code, _, err = srv.stop()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot save" in warnings[0], err
    assert "3,1,40,20" in clip_video.with_suffix(".csv").read_text().splitlines()


# ---------------------------------------------------------------- case 4: two train --out SAME at once
def test_two_trains_into_one_out_directory(rel_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [sys.executable, "-m", "tracknet_cli", "train", *TINY, "--set", f"data.root={rel_data}", "--out", str(out)]
    procs = [
        subprocess.Popen(
            args, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    results = [subprocess.CompletedProcess(args, p.wait(600), *p.communicate()) for p in procs]
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [(r.returncode, r.stderr[-500:]) for r in results]
    loser = next(r for r in results if r.returncode == 2)
    line = one_error_line(loser, 2, f"--out {out}")
    assert "in use by another tracknet train (pid" in line or "already exists and is not empty" in line
    assert not (out / ".tracknet.lock").exists()  # released when the run ended
    resumed = tracknet("train", "--resume", str(out), "--set", "training.max_steps=2")
    assert resumed.returncode == 0, resumed.stderr


def test_resume_is_refused_while_the_run_trains(rel_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = tracknet("train", *TINY, "--set", f"data.root={rel_data}", "--out", str(out))
    assert first.returncode == 0, first.stderr
    # A process holding the run's lock as a running `train` does (an OS lock and its pid).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'%d\\n' % os.getpid())\n"
            "print('held', flush=True); time.sleep(120)",
            str(out / ".tracknet.lock"),
        ],
        text=True,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = tracknet("train", "--resume", str(out), "--set", "training.max_steps=2")
        one_error_line(proc, 2, f"--resume {out}", f"in use by another tracknet train (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    shutil.rmtree(out)
