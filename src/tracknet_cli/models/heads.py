"""The heatmap head: decoder features → one logit map per frame of the window (activation belongs to the loss)."""

from __future__ import annotations

import math

import torch
from torch import nn

from tracknet_cli.models.decoders import conv_norm_act


class HeatmapHead(nn.Module):
    """3×3 conv block → 1×1 conv to `frames` logit maps, bias set to a ball prior of `prior` per cell.

    The prior bias (RetinaNet's trick) keeps a per-pixel sigmoid loss from being swamped by the
    ~10⁴ background cells at the first step; softmax losses are unaffected (a constant shift).
    """

    def __init__(self, in_channels: int, frames: int, prior: float = 0.01) -> None:
        super().__init__()
        self.block = conv_norm_act(in_channels, in_channels, 3)
        self.logits = nn.Conv2d(in_channels, frames, 1)
        nn.init.normal_(self.logits.weight, std=0.01)
        nn.init.constant_(self.logits.bias, -math.log((1 - prior) / prior))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.block(x))


class NoBallHead(nn.Module):
    """One learned "no ball" logit per frame from pooled decoder features, for a softmax over H·W + 1."""

    def __init__(self, in_channels: int, frames: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * in_channels, frames)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=(-2, -1)), x.amax(dim=(-2, -1))], dim=1)
        return self.linear(pooled)
