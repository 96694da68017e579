"""Run the real `tracknet` entry point in-process, capturing stdout and stderr separately."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from tracknet_cli.cli.app import run

ROOT = Path(__file__).resolve().parents[2]

# A training run small enough for tests: the quickstart model at 128x72 on the `synth_root` fixture.
TINY = [
    "--profile",
    "quickstart",
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
    "training.max_steps=6",
    "--set",
    "training.val_every=3",
    "--set",
    "data.cache=off",
    "--set",
    "training.precision=fp32",
    "--set",
    "training.time_limit=null",
    "--set",
    "data.augment.crop_width=null",
    "--set",
    "data.augment.crop_height=null",
]


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Like `tracknet ARGS...`: the same error mapping and exit codes as the console script."""
    runner = CliRunner()
    with runner.isolation(env=env) as streams:
        code = run(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(code, out.decode(), err.decode())


def tracknet(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The console command in a real subprocess (`python -m tracknet_cli`)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tracknet_cli", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
