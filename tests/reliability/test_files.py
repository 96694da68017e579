"""Bad inputs and faults that could lose or corrupt files: nothing already written is lost, nothing is
written over an input, outputs get the user's permissions (docs/reliability.md, cases 1, 4, 9, 12)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, tracknet
from tests.reliability.conftest import TINY, one_error_line, one_error_line_after_info, temp_files, write_mp4


def digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


# ---------------------------------------------------------------- case 1: eval --save-csv
def test_eval_save_csv_never_writes_over_the_labels_it_scores(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    gt = shutil.copytree(rel_data, tmp_path / "gt")
    labels = sorted(gt.rglob("Label.csv"))
    before = digest(labels)
    for extra in ([], ["--overwrite"]):  # --overwrite never extends to the evaluation's own inputs
        proc = tracknet(
            "eval",
            "--checkpoint",
            str(rel_checkpoint),
            "--data-root",
            str(gt),
            "--split",
            "all",
            "--save-csv",
            str(gt),
            *extra,
        )
        one_error_line(proc, 2, "--save-csv", "Label.csv", "reads")
        assert digest(labels) == before
    assert not list(gt.rglob(".*.tmp"))


def test_eval_save_csv_refuses_existing_files_unless_overwrite(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    preds = tmp_path / "preds"
    args = [
        "eval",
        "--checkpoint",
        str(rel_checkpoint),
        "--data-root",
        str(rel_data),
        "--split",
        "all",
        "--save-csv",
        str(preds),
    ]
    assert tracknet(*args).returncode == 0
    written = sorted(preds.rglob("Label.csv"))
    assert len(written) == 2
    for p in written:
        p.write_text("kept\n")
    one_error_line(tracknet(*args), 2, "already exists", "--overwrite")
    assert all(p.read_text() == "kept\n" for p in written)
    proc = tracknet(*args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert all(p.read_text().startswith("file name,") for p in written)


# ---------------------------------------------------------------- case 12: permissions, output == input
def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_outputs_get_the_users_permissions(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    """Under umask 022 results are 0644 and folders 0755 (mkstemp/mkdtemp alone give 0600/0700)."""
    video = write_mp4(tmp_path / "in.mp4", rel_data / "game1" / "Clip1")
    wrap = ["sh", "-c", 'umask 022 && exec "$0" "$@"', sys.executable, "-m", "tracknet_cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*wrap, *args],
            cwd=ROOT,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )

    out = tmp_path / "out"
    proc = run(
        "predict", str(video), "-c", str(rel_checkpoint), "--csv", str(out / "p.csv"), "--out", str(out / "p.mp4")
    )
    assert proc.returncode == 0, proc.stderr
    assert _mode(out / "p.csv") == 0o644 and _mode(out / "p.mp4") == 0o644
    proc = run("data", "import", str(rel_data), str(tmp_path / "imported"))
    assert proc.returncode == 0, proc.stderr
    assert _mode(tmp_path / "imported") == 0o755
    assert {_mode(p) for p in (tmp_path / "imported").rglob("*") if p.is_file()} == {0o644}
    proc = run(
        "eval",
        "--checkpoint",
        str(rel_checkpoint),
        "--data-root",
        str(rel_data),
        "--split",
        "all",
        "--save-csv",
        str(tmp_path / "preds"),
    )
    assert proc.returncode == 0, proc.stderr
    assert {_mode(p) for p in (tmp_path / "preds").rglob("Label.csv")} == {0o644}
    runs = tmp_path / "run"
    proc = run("train", *TINY, "--set", f"data.root={rel_data}", "--out", str(runs))
    assert proc.returncode == 0, proc.stderr
    assert {_mode(p) for p in runs.rglob("*") if p.is_file()} == {0o644}
    assert {_mode(p) for p in [runs, *runs.rglob("*")] if p.is_dir()} == {0o755}


def test_predict_refuses_an_output_that_is_an_input(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    video = write_mp4(tmp_path / "X.mp4", rel_data / "game1" / "Clip1")
    frames = shutil.copytree(rel_data / "game1" / "Clip1", tmp_path / "frames")
    ckpt = shutil.copy(rel_checkpoint, tmp_path / "w.safetensors")
    before = digest([video, frames / "0000.jpg", Path(ckpt)])
    cases = [
        [str(video), "--out", str(video)],
        [str(video), "--csv", str(video), "--no-video"],
        [str(frames), "--csv", str(frames / "0000.jpg"), "--no-video"],
        [str(video), "--csv", str(ckpt), "--no-video"],
    ]
    for args in cases:
        proc = tracknet("predict", *args, "-c", str(ckpt), "--overwrite")
        one_error_line(proc, 2, "is one of the inputs")
    assert digest([video, frames / "0000.jpg", Path(ckpt)]) == before
    assert not temp_files(tmp_path)


# ---------------------------------------------------------------- case 9: train checks before it creates
def test_train_with_bad_data_leaves_no_run_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for root, needle in ((tmp_path / "missing", "no such folder"), (tmp_path / "empty", "no labelled clips")):
        out = tmp_path / "run"
        for _ in range(2):  # the same --out again: still the data error, not "--out already exists"
            proc = tracknet("train", *TINY, "--set", f"data.root={root}", "--out", str(out))
            one_error_line(proc, 2, str(root), needle)
            assert not out.exists()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = tracknet(
        "train", *TINY, "--set", f"data.root={tmp_path / 'missing'}", cwd=cwd
    )  # default runs/<profile>/expN
    one_error_line(proc, 2, "no such folder")
    assert not (cwd / "runs").exists()


# ---------------------------------------------------------------- case 4: a full disk, files a SIGKILL left
def _tiny_tmpfs_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


def _predict_on_full_disk(
    video: Path, checkpoint: Path, folder: Path, size: str, extra: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """predict writing into a `size` tmpfs mounted on `folder` in a private mount namespace
    (`unshare -rm`: no root needed where user namespaces are allowed); returns the run and what the
    tmpfs held when it ended."""
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$2" || exit 99; shift 2; '
        '"$@"; rc=$?; ls -A "$FOLDER" > "$LISTING"; exit $rc'
    )
    listing = folder.parent / f"{folder.name}.listing"
    cmd = [
        "unshare",
        "-rm",
        "sh",
        "-c",
        script,
        "sh",
        size,
        str(folder),
        sys.executable,
        "-m",
        "tracknet_cli",
        "predict",
        str(video),
        "-c",
        str(checkpoint),
        "--csv",
        str(folder / "o.csv"),
        *extra,
    ]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "FOLDER": str(folder), "LISTING": str(listing)},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    return proc, listing.read_text().split() if listing.exists() else ["(no listing)"]


def test_predict_on_a_full_disk_names_the_file_and_leaves_no_temp_files(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    """ENOSPC for real: a 32 KB and a 4 KB tmpfs (the overlay fails as the encoder drains; the CSV
    alone fails as it closes). Skipped where no tmpfs can be mounted (no user namespaces); the
    file-size-limit test below covers the same cleanup everywhere."""
    if not _tiny_tmpfs_available():
        pytest.skip("cannot mount a tmpfs here (unshare -rm refused): no disk-full filesystem to write to")
    video = write_mp4(tmp_path / "long.mp4", rel_data / "game1" / "Clip1", repeat=20)  # 600 frames: a CSV > 9 KB
    folder = tmp_path / "full"
    folder.mkdir()
    for size, extra, target in (("32k", ["--out", str(folder / "o.mp4")], "o.mp4"), ("4k", ["--no-video"], "o.csv")):
        proc, left = _predict_on_full_disk(video, rel_checkpoint, folder, size, extra)
        line = one_error_line_after_info(proc, 1, "no space left", str(folder / target), "free", "needed")
        assert left == [], (left, line)


def test_predict_past_a_file_size_limit_leaves_no_temp_files(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE (EFBIG, SIGXFSZ ignored) fails the overlay part way like a full disk would, without privileges."""
    import resource
    import signal

    video = write_mp4(tmp_path / "long.mp4", rel_data / "game1" / "Clip1", repeat=10)
    out = tmp_path / "out"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracknet_cli",
            "predict",
            str(video),
            "-c",
            str(rel_checkpoint),
            "--csv",
            str(out / "o.csv"),
            "--out",
            str(out / "o.mp4"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        preexec_fn=limit,
    )
    one_error_line_after_info(proc, 1, "file size limit", str(out / "o.mp4"))
    assert sorted(p.name for p in out.iterdir()) == []


def test_temp_files_a_sigkill_left_are_removed_by_the_next_run(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    import signal
    import time

    video = write_mp4(tmp_path / "long.mp4", rel_data / "game1" / "Clip1", repeat=20)
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "tracknet_cli",
        "predict",
        str(video),
        "-c",
        str(rel_checkpoint),
        "--batch",
        "1",
        "--csv",
        str(out / "o.csv"),
        "--out",
        str(out / "o.mp4"),
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while len(temp_files(tmp_path)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    left = temp_files(out)
    assert len(left) == 2, left  # the .o.csv.PID.*.csv.part and .o.mp4.PID.*.mp4.part a SIGKILL leaves
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["o.csv", "o.mp4"]

    src = tmp_path / "src"
    shutil.copytree(rel_data, src)
    for k in range(3, 120):  # enough clips that the import is still running when it is killed
        shutil.copytree(rel_data / "game1" / "Clip1", src / "game1" / f"Clip{k}")
    imported = tmp_path / "imported"
    importing = subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", "data", "import", str(src), str(imported)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert importing.stderr is not None and importing.stderr.readline().startswith("[1/")
    importing.send_signal(signal.SIGKILL)
    importing.wait(timeout=60)
    assert [
        p.name.startswith(".imported.importing-") for p in tmp_path.iterdir() if p.name.startswith(".imported")
    ] == [True]
    proc2 = tracknet("data", "import", str(src), str(imported))
    assert proc2.returncode == 0, proc2.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imported")]
