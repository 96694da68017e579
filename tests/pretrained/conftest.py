"""A tiny model saved as `tracknet train` saves one, a $TRACKNET_MODELS_DIR folder holding it under two
names, and a Hugging Face cache laid out as the hub lays it out (models--org--name/snapshots/<rev>/...)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import TINY

# The catalogue of the models folder: two names, one file (as `tennis` and `badminton` may share one).
CATALOGUE = {
    "format": 1,
    "default": "tiny-court",
    "models": {
        "tiny-court": {
            "file": "tiny-quickstart.safetensors",
            "sport": "tennis",
            "description": "the quickstart architecture at 128x72, untrained",
            "data": [{"repository": "example/synthetic-clips", "commit": "0" * 40, "paths": ["game1/"]}],
            "held_out": {"split": "game9", "protocol": "tracknet", "f1": 0.25, "precision": 0.5, "recall": 0.125},
            "training": {"machine": "the test suite", "time": "0 s"},
        },
        "tiny-shuttle": {"file": "tiny-quickstart.safetensors", "sport": "badminton"},
    },
}
HUB_REV = "1f" * 20  # a commit hash as the cache names snapshots
HUB_REV_V1 = "2e" * 20


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model `tests.cli.helpers.TINY` trains (so `train --init-from` accepts it), saved with threshold 0.375."""
    import torch

    from tracknet_cli.config.load import Selection, resolve
    from tracknet_cli.inference.checkpoint import save_checkpoint
    from tracknet_cli.models import build_model

    sets = tuple(TINY[i + 1] for i in range(len(TINY) - 1) if TINY[i] == "--set")
    config = resolve(Selection(profile="quickstart", sets=sets), environ={}).config
    torch.manual_seed(0)
    model = build_model(config)
    path = tmp_path_factory.mktemp("tiny") / "tiny-quickstart.safetensors"
    return save_checkpoint(path, model, config, threshold=0.375, loss=config.training.loss, metrics={"f1": 0.0})


@pytest.fixture(scope="session")
def models_dir(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("team-models")
    shutil.copy(tiny_checkpoint, folder / "tiny-quickstart.safetensors")
    (folder / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    return folder


def _snapshot(cache: Path, repo: str, rev: str, files: dict[str, Path], refs: dict[str, str]) -> None:
    base = cache / f"models--{repo.replace('/', '--')}"
    for name, source in files.items():
        target = base / "snapshots" / rev / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    for ref, commit in refs.items():
        (base / "refs" / ref).write_text(commit)


@pytest.fixture(scope="session")
def hf_cache(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tracknet-test/tiny: model.safetensors on main (and a v1 branch at another commit);
    tracknet-test/multi: two checkpoints, a.safetensors and sub/b.safetensors;
    tracknet-test/renamed: one checkpoint under another name."""
    cache = tmp_path_factory.mktemp("hf-hub")
    _snapshot(cache, "tracknet-test/tiny", HUB_REV, {"model.safetensors": tiny_checkpoint}, {"main": HUB_REV})
    _snapshot(cache, "tracknet-test/tiny", HUB_REV_V1, {"model.safetensors": tiny_checkpoint}, {"v1": HUB_REV_V1})
    _snapshot(
        cache,
        "tracknet-test/multi",
        HUB_REV,
        {"a.safetensors": tiny_checkpoint, "sub/b.safetensors": tiny_checkpoint},
        {"main": HUB_REV},
    )
    _snapshot(cache, "tracknet-test/renamed", HUB_REV, {"tracknet.safetensors": tiny_checkpoint}, {"main": HUB_REV})
    return cache
