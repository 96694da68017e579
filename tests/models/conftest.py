"""Tiny Hugging Face backbones written with `save_pretrained` into temp folders, loaded back as users would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

VIT_TINY: dict[str, Any] = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
CONVNEXT_TINY: dict[str, Any] = dict(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 24, 32])


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _save(model: Any, folder: Path) -> Path:
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DINOv3 ViT with 4 register tokens (like the released ViT-B/16) and its own normalisation."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(1)
    folder = _save(DINOv3ViTModel(DINOv3ViTConfig(num_register_tokens=4, **VIT_TINY)), tmp_path_factory.mktemp("vit4"))
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3]})
    )
    return folder


@pytest.fixture(scope="session")
def vit0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same without register tokens (the transformers default)."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(2)
    return _save(DINOv3ViTModel(DINOv3ViTConfig(num_register_tokens=0, **VIT_TINY)), tmp_path_factory.mktemp("vit0"))


@pytest.fixture(scope="session")
def convnext_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved as an image classifier, like facebook/convnext-tiny-224 (keys under `convnext.`, plus a classifier)."""
    from transformers import ConvNextConfig, ConvNextForImageClassification

    torch.manual_seed(3)
    return _save(ConvNextForImageClassification(ConvNextConfig(**CONVNEXT_TINY)), tmp_path_factory.mktemp("convnext"))


@pytest.fixture(scope="session")
def dinov3_convnext_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import DINOv3ConvNextConfig, DINOv3ConvNextModel

    torch.manual_seed(4)
    return _save(DINOv3ConvNextModel(DINOv3ConvNextConfig(**CONVNEXT_TINY)), tmp_path_factory.mktemp("dinov3_convnext"))


def make_config(
    kind: str,
    name: str | Path,
    *,
    frames: int = 1,
    fusion: str = "early",
    size: tuple[int, int] = (64, 96),
    heatmap: tuple[int, int] = (16, 24),
    pretrained: bool = True,
    freeze: bool = False,
    decoder: str | None = None,
    **model: Any,
):
    """A TrackNetConfig for a tiny model: `size`/`heatmap` as (H, W)."""
    from tracknet_cli.config.schema import TrackNetConfig

    backbone = {"type": kind, "pretrained_model_name": str(name), "pretrained": pretrained, "freeze": freeze}
    backbone.update(model.pop("backbone", {}))
    return TrackNetConfig(
        data={
            "input_height": size[0],
            "input_width": size[1],
            "heatmap_height": heatmap[0],
            "heatmap_width": heatmap[1],
            "sequence_length": frames,
        },
        model={
            "backbone": backbone,
            "decoder": decoder or ("upsampling" if kind == "dinov3_vit" else "fpn"),
            "upsampling": {"channels": [16, 8]},
            "fpn": {"lateral_dim": 8},
            "temporal_fusion": fusion,
            **model,
        },
    )
