"""A TrackNet-style plain convolutional encoder: full-resolution 3×3 conv stages, max-pooled between.

No transformers model behind it and no pretrained weights: it exists for small objects on a CPU
budget. A ConvNeXt's stride-4 patchify stem leaves a 2–3 px shuttlecock less than one cell wide in
its first map; this encoder keeps stride-1 features (BatchNorm + ReLU, as TrackNetV2's U-Net does,
which trains in few steps from random weights), and the `unet` decoder brings them back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tracknet_cli.errors import ConfigError
from tracknet_cli.models.backbones.base import Backbone, resolve_out_indices
from tracknet_cli.models.weights import Normalization


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def conv_stage(in_channels: int, out_channels: int, convs: int, stride: int = 1) -> nn.Sequential:
    """``convs`` 3×3 conv + BatchNorm + ReLU layers; the first one strided by ``stride``."""
    return nn.Sequential(
        *(
            conv_bn_relu(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(convs)
        )
    )


def unet_source_config(widths: Sequence[int], convs: int, input_stride: int = 1) -> dict[str, Any]:
    """What a checkpoint embeds to rebuild the encoder (the counterpart of a transformers config)."""
    return {
        "model_type": "tracknet_unet",
        "widths": [int(w) for w in widths],
        "convs": int(convs),
        "input_stride": int(input_stride),
    }


class UNetBackbone(Backbone):
    """Stages at strides s, 2s, 4s, … (one per width, s the input stride), max-pooled between; random
    init, ImageNet normalisation.

    ``input_stride`` 2 strides the first convolution: every later map, and the heatmap the `unet`
    decoder brings back, has half the resolution, for a quarter of the FLOPs (the real-time family,
    docs/models/README.md). The parameters keep their shapes, so a stride-1 model's weights
    initialise a stride-2 one. Returns the chosen stages' maps, finest first (default: all of them).
    """

    def __init__(self, source_config: Mapping[str, Any], out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        widths = [int(w) for w in source_config["widths"]]
        convs = int(source_config["convs"])
        first = int(source_config.get("input_stride", 1))  # checkpoints before the real-time family: 1
        if not widths:
            raise ConfigError("model.unet.widths: give at least one stage width, e.g. [16, 32, 64, 128]")
        if first not in (1, 2):
            raise ConfigError(f"model.unet.input_stride: {first} is not supported (use 1 or 2)")
        self.source_config = unet_source_config(widths, convs, first)
        self.stages = nn.ModuleList(
            conv_stage(3 if i == 0 else widths[i - 1], w, convs, first if i == 0 else 1) for i, w in enumerate(widths)
        )
        self.pool = nn.MaxPool2d(2)
        n = len(widths)
        self.out_indices = resolve_out_indices(out_indices, n, list(range(1, n + 1)), "stage")
        self.channels = [widths[i - 1] for i in self.out_indices]
        self.strides = [first * 2 ** (i - 1) for i in self.out_indices]
        self.pad_multiple = first * 2 ** (n - 1)
        self.normalization = Normalization()

    def input_conv(self) -> nn.Conv2d:
        return self.stages[0][0][0]

    def replace_input_conv(self, conv: nn.Conv2d) -> None:
        self.stages[0][0][0] = conv

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            maps.append(x)
        return [maps[i - 1] for i in self.out_indices]
