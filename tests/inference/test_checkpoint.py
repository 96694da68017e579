"""Checkpoints: one safetensors file that rebuilds the same model with no hub and no source folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tracknet_cli import __version__
from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import InputError
from tracknet_cli.inference.checkpoint import FORMAT_VERSION, load_model, read_metadata, save_checkpoint
from tracknet_cli.models import build_model
from tracknet_cli.models.weights import Normalization


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _config(backbone: dict, *, decoder: str, fusion: str, frames: int = 3) -> TrackNetConfig:
    return TrackNetConfig(
        data={
            "input_height": 40,
            "input_width": 72,
            "heatmap_height": 20,
            "heatmap_width": 36,
            "sequence_length": frames,
        },
        model={
            "backbone": backbone,
            "decoder": decoder,
            "upsampling": {"channels": [12, 8]},
            "fpn": {"lateral_dim": 8, "fuse": "concat"},
            "temporal_fusion": fusion,
        },
    )


def _tiny_convnext_fpn(frames: int = 3) -> TrackNetConfig:
    """A ConvNeXt + FPN small enough to build in milliseconds (random weights, no download)."""
    return _config(
        {
            "type": "convnext",
            "pretrained_model_name": "facebook/convnext-tiny-224",
            "pretrained": False,
            "config_overrides": {"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 24, 32]},
        },
        decoder="fpn",
        fusion="early",
        frames=frames,
    )


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vit")
    DINOv3ViTModel(
        DINOv3ViTConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_register_tokens=4
        )
    ).save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.1, 0.2, 0.3], "image_std": [0.3, 0.2, 0.1]})
    )
    return folder


def _perturb(model: torch.nn.Module) -> None:
    """Weights unlike any fresh init, so a rebuild that ignored the file could not match."""
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)


def test_round_trip_from_a_deleted_pretrained_folder_gives_identical_outputs(vit_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backbone"
    shutil.copytree(vit_folder, folder)
    config = _config(
        {"type": "dinov3_vit", "pretrained_model_name": str(folder), "pretrained": True},
        decoder="upsampling",
        fusion="late",
    )
    model = build_model(config).eval()
    _perturb(model)
    path = save_checkpoint(
        tmp_path / "weights" / "best.safetensors",
        model,
        config,
        threshold=0.35,
        loss="softmax",
        metrics={"f1": 0.5, "precision": 0.75},
        extra={"epoch": "3"},
    )
    shutil.rmtree(folder)  # the rebuild must need neither this folder nor the hub
    loaded, meta = load_model(path)
    x = torch.rand(2, 3, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not loaded.training
    assert meta.normalization == Normalization(mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.1))
    assert loaded.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert meta.threshold == 0.35 and meta.loss == "softmax"
    assert meta.metrics == {"f1": 0.5, "precision": 0.75}
    assert meta.extra == {"epoch": "3"}
    assert meta.version == __version__ and meta.format_version == FORMAT_VERSION
    assert meta.config == config  # the config as trained (pretrained=true kept for the record)
    assert meta.backbone_config["num_register_tokens"] == 4 and meta.backbone_config["num_channels"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]  # no temp file left behind


def test_round_trip_convnext_fpn_early_fusion(tmp_path: Path) -> None:
    config = _tiny_convnext_fpn()
    model = build_model(config).eval()
    _perturb(model)
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, model, config, threshold=0.5, loss="focal", metrics={})
    save_checkpoint(path, model, config, threshold=0.6, loss="focal", metrics={})  # overwriting is fine
    loaded, meta = load_model(path)
    x = torch.rand(1, 3, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta.threshold == 0.6
    assert loaded.backbone.input_conv().in_channels == 9
    assert read_metadata(path).config.model.decoder == "fpn"


def test_missing_and_corrupt_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="checkpoint not found"):
        load_model(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 this is not a safetensors file" * 10)
    with pytest.raises(InputError, match="not a readable .safetensors checkpoint") as info:
        read_metadata(garbage)
    assert info.value.exit_code == 2 and "\n" not in info.value.line()
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(InputError, match="not a TrackNet checkpoint"):
        load_model(plain)


def _rewrite(src: Path, dst: Path, **changes: str) -> Path:
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata.update(changes)
    save_file(load_file(str(src)), str(dst), metadata=metadata)
    return dst


def test_truncated_newer_and_mismatched_checkpoints_are_input_errors(tmp_path: Path) -> None:
    config = _tiny_convnext_fpn(frames=1)
    good = save_checkpoint(
        tmp_path / "good.safetensors", build_model(config), config, threshold=0.5, loss="focal", metrics={}
    )
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated.safetensors"):
        load_model(truncated)
    newer = _rewrite(good, tmp_path / "newer.safetensors", **{"tracknet.format": str(FORMAT_VERSION + 1)})
    with pytest.raises(InputError, match="upgrade tracknet-cli"):
        read_metadata(newer)
    other = config.model_dump()
    other["model"]["fpn"]["lateral_dim"] = 16
    mismatched = _rewrite(
        good, tmp_path / "mismatched.safetensors", **{"tracknet.config": json.dumps(other, default=str)}
    )
    with pytest.raises(InputError, match="do not match the architecture"):
        load_model(mismatched)
    other["model"]["decoder"] = "transformer"
    invalid = _rewrite(good, tmp_path / "invalid.safetensors", **{"tracknet.config": json.dumps(other, default=str)})
    with pytest.raises(InputError, match="embedded config does not fit"):
        read_metadata(invalid)


def test_init_weights_load_through_the_one_loader_and_refuse_another_architecture(tmp_path: Path) -> None:
    from tracknet_cli.errors import ConfigError
    from tracknet_cli.inference.checkpoint import architecture_differences, load_init_weights

    config = _tiny_convnext_fpn()
    trained = build_model(config).eval()
    _perturb(trained)
    path = save_checkpoint(tmp_path / "best.safetensors", trained, config, threshold=0.5, loss="focal", metrics={})
    fresh = build_model(config).eval()
    load_init_weights(fresh, path)
    x = torch.rand(1, 3, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(trained(x), fresh(x))
    other = config.model_copy(update={"data": config.data.model_copy(update={"sequence_length": 1})})
    assert architecture_differences(other, config) == ["data.sequence_length: 3 -> 1"]
    with pytest.raises(ConfigError, match=r"init_from .*best.safetensors does not fit this model \(first mismatch: "):
        load_init_weights(build_model(other), path)
