"""Bad inputs that already got the contract when issue 15 was filed, kept here so they keep holding:
nothing in a profile, a --set value or a checkpoint runs code; broken files get one line and exit 2
(docs/reliability.md)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

from tests.cli.helpers import tracknet
from tests.reliability.conftest import one_error_line, write_mp4


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a malicious pickle runs when loaded
        import os

        return (os.system, (f"touch {self.marker}",))


def test_yaml_tags_never_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    tag = f"!!python/object/apply:os.system ['touch {marker}']"
    profile = tmp_path / "tagged.yaml"
    profile.write_text(f"extends: quickstart\ndescription: {tag}\n")
    one_error_line(tracknet("config", "show", "--profile", str(profile)), 2, str(profile))
    one_error_line(tracknet("config", "show", "--set", f"training.lr={tag}"), 2, "training.lr")
    assert not marker.exists()


def test_a_broken_or_foreign_checkpoint_is_refused_in_one_line(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    video = write_mp4(tmp_path / "v.mp4", rel_data / "game1" / "Clip1")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(rel_checkpoint.read_bytes()[:1000])
    pickled = tmp_path / "pickled.safetensors"
    pickled.write_bytes(pickle.dumps({"w": _Evil(marker)}))
    text = tmp_path / "text.safetensors"
    text.write_text("not weights\n")
    for ckpt in (truncated, pickled, text):
        one_error_line(tracknet("predict", str(video), "-c", str(ckpt), "--csv", str(tmp_path / "o.csv")), 2, str(ckpt))
    one_error_line(
        tracknet("eval", "--checkpoint", str(pickled), "--data-root", str(rel_data), "--split", "all"), 2, str(pickled)
    )
    assert not marker.exists() and not (tmp_path / "o.csv").exists()


def test_outputs_are_never_overwritten_without_overwrite(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    video = write_mp4(tmp_path / "v.mp4", rel_data / "game1" / "Clip1")
    kept = tmp_path / "o.csv"
    kept.write_text("mine\n")
    one_error_line(
        tracknet("predict", str(video), "-c", str(rel_checkpoint), "--csv", str(kept), "--no-video"),
        2,
        "already exists",
        "--overwrite",
    )
    assert kept.read_text() == "mine\n"
    out = tmp_path / "imported"
    (out / "x").mkdir(parents=True)
    one_error_line(tracknet("data", "import", str(rel_data), str(out)), 2, "not empty")
    one_error_line(tracknet("data", "import", str(rel_data), str(rel_data / "inside")), 2, "inside SRC")
    run = shutil.copytree(rel_checkpoint.parents[1], tmp_path / "run")
    one_error_line(
        tracknet("train", "--profile", "quickstart", "--set", f"data.root={rel_data}", "--out", str(run)),
        2,
        "not empty",
    )
