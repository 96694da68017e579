"""Heatmap models: `build_model(config)` → `HeatmapModel` ((B,T,3,Hi,Wi) in [0,1] → logits (B,T,Hh,Wh)).

Names resolve lazily so that importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracknet_cli.models.heatmap_model import HeatmapModel
    from tracknet_cli.models.registry import BACKBONES, DECODERS, build_model

__all__ = ["BACKBONES", "DECODERS", "HeatmapModel", "build_model"]


def __getattr__(name: str) -> Any:
    if name in ("BACKBONES", "DECODERS", "build_model"):
        from tracknet_cli.models import registry

        return getattr(registry, name)
    if name == "HeatmapModel":
        from tracknet_cli.models.heatmap_model import HeatmapModel

        return HeatmapModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
