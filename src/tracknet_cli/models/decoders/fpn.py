"""Feature pyramid decoder: lateral 1×1 → top-down upsample + add → 3×3 → every level at the heatmap size → fuse."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tracknet_cli.models.decoders import Canvas, conv_norm_act, resize_to_canvas


class FPNDecoder(nn.Module):
    """Levels are taken finest first (C2/C3 … C5); `fuse` = `sum` or `concat` followed by a 1×1 conv."""

    def __init__(self, in_channels: Sequence[int], lateral_dim: int, fuse: Literal["sum", "concat"] = "sum") -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, lateral_dim, 1) for c in in_channels)
        self.refine = nn.ModuleList(conv_norm_act(lateral_dim, lateral_dim, 3) for _ in in_channels)
        self.fuse = fuse
        self.merge = conv_norm_act(lateral_dim * len(in_channels), lateral_dim, 1) if fuse == "concat" else None
        self.out_channels = int(lateral_dim)

    def forward(self, features: list[torch.Tensor], canvas: Canvas) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.laterals, features)]
        for i in range(len(laterals) - 2, -1, -1):  # coarse to fine
            coarser = laterals[i + 1]
            if coarser.shape[-2:] != laterals[i].shape[-2:]:
                coarser = F.interpolate(coarser, size=laterals[i].shape[-2:], mode="nearest")
            laterals[i] = laterals[i] + coarser
        levels = [resize_to_canvas(conv(p), canvas) for conv, p in zip(self.refine, laterals)]
        if self.merge is not None:
            return self.merge(torch.cat(levels, dim=1))
        return torch.stack(levels, dim=0).sum(dim=0)
