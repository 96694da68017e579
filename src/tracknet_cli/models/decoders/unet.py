"""U-Net decoder: from the coarsest map up, upsample ×2, concatenate the next finer map, conv block.

Each step ends at the width of the map it joined, so the output has the finest map's width and
resolution; the last step resamples exactly to the canvas at the heatmap size. With the `unet`
encoder (strides 1, 2, 4, 8) this is TrackNetV2's shape; it also accepts any backbone's pyramid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tracknet_cli.models.backbones.unet import conv_stage
from tracknet_cli.models.decoders import Canvas, resize_to_canvas


class UNetDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], convs: int = 2) -> None:
        super().__init__()
        widths = [int(c) for c in in_channels]  # finest first
        self.blocks = nn.ModuleList(
            conv_stage(widths[i] + widths[i + 1], widths[i], convs) for i in range(len(widths) - 1)
        )
        self.out_channels = widths[0]

    def forward(self, features: list[torch.Tensor], canvas: Canvas) -> torch.Tensor:
        x = features[-1]
        for i in range(len(features) - 2, -1, -1):  # coarse to fine
            skip = features[i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[i](torch.cat([skip, x], dim=1))
        return resize_to_canvas(x, canvas)
