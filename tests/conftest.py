"""Shared fixtures: real data location, offline hub, small thread counts for a 2-core machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never reach the Hugging Face hub: tiny models are saved to temp dirs and loaded back.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def realdata_dir() -> Path | None:
    env = os.environ.get("TRACKNET_REALDATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "realdata")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def realdata() -> Path:
    """`../shared/realdata` (or $TRACKNET_REALDATA); tests using it skip with the reason when absent."""
    path = realdata_dir()
    if path is None:
        pytest.skip("real data not found: expected ../shared/realdata beside the project or $TRACKNET_REALDATA")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's TRACKNET_<SECTION>__* variables must not leak into test results."""
    for name in list(os.environ):
        if name.startswith(
            ("TRACKNET_DATA__", "TRACKNET_MODEL__", "TRACKNET_TRAINING__", "TRACKNET_PREDICT__", "TRACKNET_MODELS_DIR")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRACKNET_DEBUG", "0")  # restored after each test, also when --debug set it in-process


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One game of three 24-frame synthetic clips at 256x144, shared read-only by the training tests."""
    from tracknet_cli.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth") / "tracknet"
    synthesize(root, games=1, clips=3, frames=24, size=(256, 144), seed=3)
    return root
