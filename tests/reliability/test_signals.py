"""Ctrl-C (SIGINT) against the real command: exit 130, one line saying what stopped and what was
kept, no temp files (docs/reliability.md, cases 3 and 11)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.helpers import ROOT
from tests.reliability.conftest import synth, temp_files


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- case 11: commands without their own handler
def test_ctrl_c_in_data_import_says_what_was_interrupted_and_kept(tmp_path: Path) -> None:
    src = synth(tmp_path / "src", clips=100, frames=40)  # long enough to be stopped part way
    out = tmp_path / "out"
    proc = _start("data", "import", str(src), str(out))
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "[1/100] game1/Clip1": the import is under way
    assert first.startswith("[1/"), first
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    lines = [line for line in rest.splitlines() if not line.startswith("[")]  # progress lines still in the pipe
    assert proc.returncode == 130, (first, rest)
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), rest
    assert "was not created" in lines[0] and str(out) in lines[0]
    assert not out.exists() and not temp_files(tmp_path) and not list(tmp_path.glob(".out.*"))


# ---------------------------------------------------------------- case 3: a second Ctrl-C during predict
def test_second_ctrl_c_in_predict_still_exits_130_with_consistent_files(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    """Two SIGINTs 0.01-0.3 s apart, several times: the second one used to raise while the decode and
    inference threads were still in native code (PyAV, torch), and the process aborted (exit 134,
    `terminate called without an active exception`)."""
    import av

    from tests.reliability.conftest import write_mp4

    video = write_mp4(tmp_path / "long.mp4", rel_data / "game1" / "Clip1", repeat=20)
    for k, gap in enumerate((0.01, 0.05, 0.15, 0.3)):
        out = tmp_path / f"o{k}"
        proc = _start(
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
        )
        deadline = time.monotonic() + 120
        while len(temp_files(tmp_path)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2 + 0.1 * k)  # at different points of the run
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (gap, proc.returncode, err)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: interrupted after") and "Traceback" not in err, err
        rows = (out / "o.csv").read_text().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == list(range(len(rows)))
        if rows:
            with av.open(str(out / "o.mp4")) as container:
                assert sum(1 for _ in container.decode(video=0)) == len(rows)
        assert not temp_files(out)
