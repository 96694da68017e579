"""The catalogue and weights shipped in src/tracknet_cli/pretrained/, whatever they are today: every entry's
file exists, loads through the real loader with a usable threshold, fits the size limits, and documents
where its data came from and what it scored on held-out footage."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT
from tracknet_cli.pretrained import CATALOGUE_FILE, PACKAGE_DIR
from tracknet_cli.pretrained.catalogue import BUNDLED, load_catalogue, weights_info

MAX_MODEL_BYTES = 10 * 2**20
MAX_WHEEL_DATA_BYTES = 25 * 2**20

SHIPPED = load_catalogue({})
NO_MODELS = (
    "no bundled models yet: src/tracknet_cli/pretrained/catalogue.yaml has no entries "
    "(the trained tennis and badminton models are added there with their files)"
)


def _entries() -> list:
    if not SHIPPED.entries:
        return [pytest.param(None, id="no-models", marks=pytest.mark.skip(reason=NO_MODELS))]
    return [pytest.param(entry, id=name) for name, entry in SHIPPED.entries.items()]


def test_the_shipped_catalogue_reads_and_has_only_bundled_entries() -> None:
    assert all(entry.origin == BUNDLED for entry in SHIPPED.entries.values())
    assert SHIPPED.default is None or SHIPPED.default in SHIPPED.entries
    if SHIPPED.entries:
        assert SHIPPED.default is not None, "name a default: `tracknet predict INPUT` without --checkpoint uses it"


@pytest.mark.parametrize("entry", _entries())
def test_every_entry_loads_through_the_real_loader(entry) -> None:
    from tracknet_cli.inference.checkpoint import load_model

    assert entry.path.is_file(), f"{entry.name}: {entry.path} is missing"
    assert entry.path.stat().st_size <= MAX_MODEL_BYTES, f"{entry.name}: {entry.path.name} is over 10 MB"
    model, meta = load_model(entry.path)
    assert math.isfinite(meta.threshold) and 0.0 < meta.threshold < 1.0, "a threshold calibrated in training"
    info = weights_info(entry.path)
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert (info.input_width, info.input_height) == (meta.config.data.input_width, meta.config.data.input_height)


@pytest.mark.parametrize("entry", _entries())
def test_every_entry_documents_its_data_and_held_out_figures(entry) -> None:
    spec = entry.spec
    assert spec.sport and spec.description, f"{entry.name}: sport and description"
    assert spec.data, f"{entry.name}: where the training footage came from"
    for source in spec.data:
        assert source.repository and source.commit, f"{entry.name}: data source repository and commit"
    assert spec.held_out is not None, f"{entry.name}: held-out F1, precision, recall, protocol, split"
    assert spec.held_out.precision is not None and spec.held_out.recall is not None
    assert spec.training is not None, f"{entry.name}: training machine and time"


def test_only_catalogued_files_ship_and_they_fit_the_wheel() -> None:
    files = {p.name for p in PACKAGE_DIR.glob("*.safetensors")}
    used = {entry.path.name for entry in SHIPPED.entries.values()}
    assert files == used, f"uncatalogued: {sorted(files - used)}, missing: {sorted(used - files)}"
    assert sum((PACKAGE_DIR / name).stat().st_size for name in files) <= MAX_WHEEL_DATA_BYTES


def test_package_data_covers_the_catalogue_and_weights() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "tracknet_cli.pretrained"
    ]
    for name in [CATALOGUE_FILE, "any-model.safetensors"] + [p.name for p in PACKAGE_DIR.glob("*.safetensors")]:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_docs_show_every_bundled_name() -> None:
    text = (ROOT / "docs" / "models" / "pretrained.md").read_text()
    for name in SHIPPED.entries:
        assert f"`{name}`" in text, f"docs/models/pretrained.md: no card or mention of `{name}`"


@pytest.mark.skipif(not SHIPPED.entries, reason=NO_MODELS)
def test_fine_tuning_a_bundled_model_by_name_takes_the_finetune_profile(synth_root: Path, tmp_path: Path) -> None:
    """`train --init-from NAME` alone fine-tunes with the bundled models' own recipe (profile finetune)."""
    from tests.cli.helpers import tracknet

    name = next(iter(SHIPPED.entries))
    proc = tracknet(
        "train",
        "--init-from",
        name,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.max_steps=1",
        "--set",
        "training.batch_size=2",
        "--set",
        "data.subset.max_frames_per_clip=4",
        "--set",
        "training.overlay_frames=0",
        "--set",
        "data.cache=off",
        "--set",
        "training.precision=fp32",
        "--out",
        str(tmp_path / "ft"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "--init-from without --profile: using the finetune profile" in " ".join(proc.stderr.split())
    assert (tmp_path / "ft" / "weights" / "last.safetensors").is_file()
