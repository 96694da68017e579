"""Upsampling decoder: staged interpolate + 3×3 conv blocks from the patch grid to the heatmap size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tracknet_cli.models.decoders import Canvas, conv_norm_act, resize_to_canvas


class UpsamplingDecoder(nn.Module):
    """Maps (all resized to the finest one and concatenated) → `len(channels)` conv blocks.

    Block 0 runs at the feature grid, the last at the heatmap size (cropped exactly to the
    canvas), the ones between at sizes spaced geometrically, so any grid-to-heatmap ratio works
    (stride-16 ViT at 512×288 → 72×128 goes 18×32 → 36×64 → 72×128 with three blocks).
    """

    def __init__(self, in_channels: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        if not channels:
            raise ValueError("the upsampling decoder needs at least one block")
        widths = [sum(in_channels), *channels]
        self.blocks = nn.ModuleList(conv_norm_act(a, b, 3) for a, b in zip(widths[:-1], widths[1:]))
        self.out_channels = int(channels[-1])

    def forward(self, features: list[torch.Tensor], canvas: Canvas) -> torch.Tensor:
        finest = max(features, key=lambda f: f.shape[-2] * f.shape[-1])
        grid = tuple(finest.shape[-2:])
        x = torch.cat(
            [
                f if tuple(f.shape[-2:]) == grid else F.interpolate(f, size=grid, mode="bilinear", align_corners=False)
                for f in features
            ],
            dim=1,
        )
        full_h, full_w = canvas.full_size()
        last = len(self.blocks) - 1
        for k, block in enumerate(self.blocks):
            if k == last:
                x = resize_to_canvas(x, canvas)
            elif k > 0:
                t = k / last
                # float(): plain numbers also while tracing for ONNX export (shapes are then 0-d tensors)
                size = (
                    max(1, round(float(grid[0] * (full_h / grid[0]) ** t))),
                    max(1, round(float(grid[1] * (full_w / grid[1]) ** t))),
                )
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = block(x)
        return x
