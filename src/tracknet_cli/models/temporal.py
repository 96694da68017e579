"""How the T frames of a window meet: inflated first convolution (early) or fused features (late)."""

from __future__ import annotations

import torch
from torch import nn


def inflate_input_conv(conv: nn.Conv2d, frames: int) -> nn.Conv2d:
    """A copy of `conv` taking `frames`×C channels: each frame's slice holds the weights / frames, bias kept.

    So T identical frames give exactly the single-frame output: Σ_t (W/T)·x = W·x.
    """
    if frames == 1:
        return conv
    inflated = nn.Conv2d(
        conv.in_channels * frames,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        inflated.weight.copy_(conv.weight.repeat(1, frames, 1, 1) / frames)
        if conv.bias is not None:
            inflated.bias.copy_(conv.bias)
    return inflated


class LateFusion(nn.Module):
    """Per level, the T frames' maps concatenated → 1×1 conv back to C channels.

    Initialised to the mean over frames, so identical frames start from the single-frame features;
    training breaks the symmetry.
    """

    def __init__(self, channels: list[int], frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.fuse = nn.ModuleList(nn.Conv2d(c * frames, c, 1) for c in channels)
        with torch.no_grad():
            for conv, c in zip(self.fuse, channels):
                eye = torch.eye(c).reshape(c, c, 1, 1) / frames
                conv.weight.copy_(eye.repeat(1, frames, 1, 1))
                conv.bias.zero_()

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for conv, f in zip(self.fuse, features):
            bt, c, h, w = f.shape
            out.append(conv(f.reshape(bt // self.frames, self.frames * c, h, w)))
        return out
