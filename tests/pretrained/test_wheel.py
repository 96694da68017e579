"""A built wheel carries the ready models: the project is copied, a tiny model and a catalogue naming it
are put where the real ones go, and the wheel built from that copy is installed and asked for the model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import ROOT
from tests.pretrained.conftest import CATALOGUE


@pytest.mark.slow
def test_a_wheel_ships_the_models_its_catalogue_names(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src = tmp_path / "project"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.safetensors")
    for folder in ("src", "profiles"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    pretrained = src / "src" / "tracknet_cli" / "pretrained"
    shutil.copy(tiny_checkpoint, pretrained / "tiny-quickstart.safetensors")
    (pretrained / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))

    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "tracknet_cli/pretrained/catalogue.yaml",
        "tracknet_cli/pretrained/tiny-quickstart.safetensors",
        "tracknet_cli/pretrained/resolve.py",
    } <= set(names)
    assert wheel.stat().st_size < 25 * 2**20
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from tracknet_cli.pretrained.resolve import default_checkpoint, resolve_checkpoint;"
        "from tracknet_cli.inference.checkpoint import load_model;"
        "r = resolve_checkpoint('tiny-shuttle', environ={}); _, meta = load_model(r.path);"
        "print(json.dumps([str(r.path), r.entry.origin, default_checkpoint(environ={}).entry.name, meta.threshold]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    ).stdout
    path, origin, default, threshold = json.loads(out.splitlines()[-1])
    assert path == str(target / "tracknet_cli" / "pretrained" / "tiny-quickstart.safetensors")
    assert (origin, default, threshold) == ("bundled", "tiny-court", 0.375)
