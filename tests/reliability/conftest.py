"""Shared pieces of the bad-input table (docs/reliability.md): a tiny dataset and a checkpoint that
`tracknet train` wrote, made once per session, and the assertions every case shares."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, tracknet

# Small enough that every case runs in seconds on two cores: 64x36 input, one training step.
TINY = [
    "--profile",
    "quickstart",
    "--set",
    "data.input_width=64",
    "--set",
    "data.input_height=36",
    "--set",
    "data.heatmap_width=32",
    "--set",
    "data.heatmap_height=18",
    "--set",
    "training.batch_size=2",
    "--set",
    "training.max_steps=1",
    "--set",
    "training.val_every=1",
    "--set",
    "training.overlay_frames=0",
    "--set",
    "data.cache=off",
    "--set",
    "training.precision=fp32",
    "--set",
    "training.time_limit=null",
]


def synth(root: Path, clips: int = 2, frames: int = 30) -> Path:
    proc = tracknet(
        "data", "synth", str(root), "--games", "1", "--clips", str(clips), "--frames", str(frames), "--size", "128x72"
    )
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="session")
def rel_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One game of two 30-frame clips at 128x72 (read-only: copy it before changing it)."""
    return synth(tmp_path_factory.mktemp("rel") / "gt")


@pytest.fixture(scope="session")
def rel_checkpoint(rel_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("relrun") / "run"
    proc = tracknet("train", *TINY, "--set", f"data.root={rel_data}", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out / "weights" / "best.safetensors"


def one_error_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The contract for a failure: exit `code`, exactly one stderr line `error: ...` holding every
    needle, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def one_error_line_after_info(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Like `one_error_line` for a command that failed after it started working: its info lines
    (the model line) come first, then exactly one `error:` line, last."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and lines, proc.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], proc.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def temp_files(folder: Path) -> list[Path]:
    """Hidden temp files our writers use (`.NAME.*.part`, `.NAME.*.tmp`, `.OUT.importing-*`)."""
    return sorted(p for p in folder.rglob(".*") if p.name.endswith((".part", ".tmp")) or ".importing-" in p.name)


def write_mp4(path: Path, frames_dir: Path, *, repeat: int = 1, fps: int = 25) -> Path:
    """H.264 mp4 (moov at the front) of the synthetic frames in `frames_dir`, `repeat` times over."""
    import av
    import numpy as np
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(frames_dir.glob("*.jpg"))]
    h, w = images[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": "10"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for img in images * repeat:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def refused_before_serving(args: list[str], bug: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `tracknet label` command line that must refuse; one that serves instead (``bug``) is stopped
    with Ctrl-C and fails the test."""
    proc = subprocess.Popen(
        args, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"{bug}: {out!r} {err!r}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)
