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
    return subprocess.Popen([sys.executable, "-m", "tracknet_cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- case 11: commands without their own handler
def test_ctrl_c_in_data_import_says_what_was_interrupted_and_kept(tmp_path: Path) -> None:
    src = synth(tmp_path / "src", clips=40, frames=40)
    out = tmp_path / "out"
    proc = _start("data", "import", str(src), str(out))
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "[1/40] game1/Clip1": the import is under way
    assert first.startswith("[1/"), first
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    lines = [line for line in rest.splitlines() if not line.startswith("[")]  # progress lines still in the pipe
    assert proc.returncode == 130, (first, rest)
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), rest
    assert "was not created" in lines[0] and str(out) in lines[0]
    assert not out.exists() and not temp_files(tmp_path) and not list(tmp_path.glob(".out.*"))
