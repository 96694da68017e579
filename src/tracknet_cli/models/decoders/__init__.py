"""Decoders: backbone feature maps → one feature map at the heatmap size covering the input canvas.

A decoder sees only the backbone's maps (and their `channels`/`strides`) and a `Canvas` saying
which part of the padded input is real. Shared pieces live here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Canvas:
    """Output size `(Hh, Wh)` and the fraction `(Hi/Hp, Wi/Wp)` of the padded input that is the real canvas."""

    size: tuple[int, int]
    valid: tuple[float, float] = (1.0, 1.0)

    def full_size(self) -> tuple[float, float]:
        """The (fractional) output size the whole padded input would have at heatmap resolution."""
        return self.size[0] / self.valid[0], self.size[1] / self.valid[1]


def resize_to_canvas(x: torch.Tensor, canvas: Canvas) -> torch.Tensor:
    """Bilinear resample of a map covering the padded input to exactly the canvas at `canvas.size`.

    Output cell i samples the padded map at input position (i + 0.5)·(Hi/Hh) – the same
    half-pixel convention as `F.interpolate(align_corners=False)`, which is used when nothing was padded.
    """
    if canvas.valid == (1.0, 1.0):
        if tuple(x.shape[-2:]) == canvas.size:
            return x
        return F.interpolate(x, size=canvas.size, mode="bilinear", align_corners=False)
    out_h, out_w = canvas.size
    # normalised coordinates (-1..1 spans the padded map's outer edges, align_corners=False)
    ys = (torch.arange(out_h, device=x.device, dtype=torch.float32) + 0.5) / out_h * canvas.valid[0] * 2 - 1
    xs = (torch.arange(out_w, device=x.device, dtype=torch.float32) + 0.5) / out_w * canvas.valid[1] * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (out_h, out_w, 2) as (x, y)
    grid = grid.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def group_count(channels: int) -> int:
    """GroupNorm groups: works with batch 1 on CPU, unlike BatchNorm."""
    for groups in (32, 16, 8, 4, 2):
        if channels % groups == 0 and channels // groups >= 4:
            return groups
    return 1


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.GroupNorm(group_count(out_channels), out_channels),
        nn.GELU(),
    )
