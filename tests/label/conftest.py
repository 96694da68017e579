"""Small inputs for the labelling tests: a synthetic frame folder and an mp4 made from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic 12-frame clip at 128x72 (read-only: copy it before labelling it)."""
    from tracknet_cli.data.synth import synthesize

    root = tmp_path_factory.mktemp("labelsynth") / "tracknet"
    synthesize(root, games=1, clips=1, frames=12, size=(128, 72), seed=5)
    return root / "game1" / "Clip1"


@pytest.fixture()
def frames_dir(synth_clip: Path, tmp_path: Path) -> Path:
    """A writable copy of the clip's frames, without its Label.csv."""
    out = tmp_path / "clip"
    out.mkdir()
    for jpg in sorted(synth_clip.glob("*.jpg")):
        shutil.copy(jpg, out / jpg.name)
    return out


@pytest.fixture(scope="session")
def synth_video(synth_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip as a 12-frame H.264 mp4 (read-only: copy it)."""
    from tests.reliability.conftest import write_mp4

    return write_mp4(tmp_path_factory.mktemp("labelvideo") / "rally.mp4", synth_clip)


@pytest.fixture()
def video(synth_video: Path, tmp_path: Path) -> Path:
    """A writable folder holding only rally.mp4."""
    path = tmp_path / "rally.mp4"
    shutil.copy(synth_video, path)
    return path
