"""The one backbone contract decoders rely on: `forward(x) -> list[Tensor]` NCHW plus `channels`/`strides`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tracknet_cli.errors import ConfigError
from tracknet_cli.models.weights import Normalization


class Backbone(nn.Module):
    """Feature extractor over a padded, normalised image batch.

    Subclasses set `channels` and `strides` (one per returned map, finest first), `pad_multiple`
    (inputs must be a multiple of it: the model pads), `normalization` and `source_config`
    (the transformers config dict, embedded in checkpoints so a rebuild needs no folder or hub).
    """

    channels: list[int]
    strides: list[int]
    pad_multiple: int
    normalization: Normalization
    source_config: dict[str, Any]
    frozen: bool = False

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_conv(self) -> nn.Conv2d:
        """The first convolution (patch embedding or stem): the layer early fusion inflates."""
        raise NotImplementedError

    def replace_input_conv(self, conv: nn.Conv2d) -> None:
        raise NotImplementedError

    def freeze(self) -> None:
        """Stop training every backbone parameter; `HeatmapModel.train()` keeps a frozen backbone in eval mode."""
        self.frozen = True
        self.requires_grad_(False)
        self.eval()


def resolve_out_indices(indices: Sequence[int] | None, num_stages: int, default: Sequence[int], what: str) -> list[int]:
    """Stage numbers 1..N (negative counts from the end, -1 = last) → sorted unique 1-based indices."""
    chosen = list(default if indices is None else indices)
    if not chosen:
        raise ConfigError(f"model.backbone.out_indices: give at least one {what} (1..{num_stages} or -1 for the last)")
    out: set[int] = set()
    for i in chosen:
        j = i + num_stages + 1 if i < 0 else i
        if not 1 <= j <= num_stages:
            raise ConfigError(
                f"model.backbone.out_indices: {i} is not a {what} of this backbone "
                f"(use 1..{num_stages}, or -1 for the last)"
            )
        out.add(j)
    return sorted(out)
