"""Synthetic clips: layout, labels, determinism, visual content and safe writing."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracknet_cli.data.synth import MARKER, synthesize
from tracknet_cli.errors import InputError, UsageError


def _rows(clip: Path) -> list[list[str]]:
    with open(clip / "Label.csv", newline="") as f:
        return list(csv.reader(f))


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def default_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "clips"
    return out, synthesize(out)  # the defaults: 4 games x 5 clips x 100 frames at 512x288


def test_layout_and_label_files(default_out) -> None:
    out, report = default_out
    clips = sorted(p.relative_to(out).as_posix() for p in out.glob("game*/Clip*"))
    assert clips == sorted(f"game{g}/Clip{c}" for g in (1, 2, 3, 4) for c in (1, 2, 3, 4, 5))
    for clip in out.glob("game*/Clip*"):
        rows = _rows(clip)
        assert ",".join(rows[0]) == "file name,visibility,x-coordinate,y-coordinate,status"
        assert [r[0] for r in rows[1:]] == [f"{i:04d}.jpg" for i in range(100)]
        assert sorted(p.name for p in clip.glob("*.jpg")) == [f"{i:04d}.jpg" for i in range(100)]
        for _name, vis, x, y, status in rows[1:]:
            assert vis in {"0", "1", "2", "3"} and status in {"0", "1", "2"}
            if vis == "0":
                assert x == "" and y == ""
            else:
                assert 0 <= float(x) < 512 and 0 <= float(y) < 288
    with Image.open(out / "game1" / "Clip1" / "0000.jpg") as im:
        assert im.size == (512, 288) and im.mode == "RGB"
    assert report.clips == 20 and report.frames == 2000 and report.size == (512, 288)
    assert sum(report.visibility.values()) == 2000 and sum(report.status.values()) == 2000


def test_every_visibility_class_and_event_occurs(default_out) -> None:
    out, report = default_out
    assert all(report.visibility[k] > 0 for k in range(4)), report.visibility
    assert report.status[1] >= 6 and report.status[2] >= 6  # hits and bounces
    assert report.visibility[1] > 0.6 * 2000  # mostly a clearly visible ball
    # The report counts what the files say.
    counted = {k: 0 for k in range(4)}
    left_picture = 0
    for clip in out.glob("game*/Clip*"):
        vis = [int(r[1]) for r in _rows(clip)[1:]]
        for v in vis:
            counted[v] += 1
        left_picture += sum(1 for a, b in zip(vis, vis[1:]) if a > 0 and b == 0)
    assert counted == report.visibility
    assert left_picture >= 1  # not only the empty lead-in: the ball also leaves the picture


def test_the_ball_is_at_its_label(default_out) -> None:
    """Where a clearly visible ball is labelled, the pixel is ball-coloured, unlike the clip's background."""
    out, _ = default_out
    for clip in [out / "game1" / "Clip1", out / "game2" / "Clip2"]:
        rows = _rows(clip)[1:]
        frames = np.stack([np.asarray(Image.open(clip / r[0])) for r in rows]).astype(np.int16)
        checked = differs = 0
        for t, r in enumerate(rows):
            if r[1] != "1":
                continue
            i, j = int(float(r[2])), int(float(r[3]))
            checked += 1
            pixel = frames[t, j, i]
            background = np.median(frames[:, j, i], axis=0)  # the ball moves on: the median is the scene
            yellowish = pixel[0] > 120 and pixel[1] > 120 and pixel[2] < min(pixel[0], pixel[1]) - 40
            differs += bool(np.abs(pixel - background).sum() > 60 and yellowish)
        assert checked > 50 and differs / checked > 0.9, (clip, differs, checked)


def test_same_seed_same_bytes_other_seed_other_clips(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", games=1, clips=1, frames=30, size=(256, 144), seed=3)
    b = synthesize(tmp_path / "b", games=1, clips=1, frames=30, size=(256, 144), seed=3)
    synthesize(tmp_path / "c", games=1, clips=1, frames=30, size=(256, 144), seed=4)
    assert a.visibility == b.visibility
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_size_scales_the_scene(tmp_path: Path) -> None:
    synthesize(tmp_path / "big", games=1, clips=1, frames=12, size=(1280, 720), seed=0)
    with Image.open(tmp_path / "big" / "game1" / "Clip1" / "0011.jpg") as im:
        assert im.size == (1280, 720)
    for _name, vis, x, y, _ in _rows(tmp_path / "big" / "game1" / "Clip1")[1:]:
        if vis != "0":
            assert 0 <= float(x) < 1280 and 0 <= float(y) < 720


def test_refuses_a_foreign_non_empty_folder_and_replaces_its_own(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    with pytest.raises(InputError, match="mine"):
        synthesize(foreign, games=1, clips=1, frames=5)
    assert (foreign / "thesis.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1

    out = tmp_path / "out"
    synthesize(out, games=2, clips=1, frames=5)
    assert (out / MARKER).is_file() and (out / "game2").is_dir()
    synthesize(out, games=1, clips=1, frames=5)  # an earlier synth output is replaced whole
    assert not (out / "game2").exists() and (out / "game1" / "Clip1" / "0004.jpg").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    synthesize(empty, games=1, clips=1, frames=3)
    assert (empty / "game1" / "Clip1" / "Label.csv").is_file()
    # Nothing is left behind beside OUT: the temporary build folders are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine", "out"]


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        synthesize(tmp_path / "x", frames=0)
    with pytest.raises(UsageError, match="size"):
        synthesize(tmp_path / "x", size=(10, 10))
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        synthesize(tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_synth_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, tracknet_cli.data.synth; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
