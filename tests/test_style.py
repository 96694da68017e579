"""The house style ([tool.ruff] in pyproject.toml) is checked here so that CI checks it: .ci/run runs
only the README's test command (tests/test_readme.py holds it to that one line), so ruff runs as a test."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed: pip install -e '.[dev]' installs it")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_passes() -> None:
    result = _ruff("check", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_the_tree_as_it_is() -> None:
    result = _ruff("format", "--check", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
