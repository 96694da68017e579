"""The heatmap model: (B, T, 3, Hi, Wi) in [0, 1] → logits (B, T, Hh, Wh) covering exactly the input canvas."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tracknet_cli.models.backbones.base import Backbone
from tracknet_cli.models.decoders import Canvas
from tracknet_cli.models.heads import HeatmapHead, NoBallHead
from tracknet_cli.models.temporal import LateFusion, inflate_input_conv
from tracknet_cli.models.weights import Normalization


class HeatmapModel(nn.Module):
    """backbone → [temporal fusion] → decoder → head.

    Inside: normalise with the backbone's mean/std (non-persistent buffers; checkpoints carry them
    as metadata), pad right/bottom with the mean colour to the backbone's multiple, and let the
    decoder resample exactly the unpadded part, so heatmap cell (i, j) always covers input pixels
    [j·Wi/Wh, (j+1)·Wi/Wh) × [i·Hi/Hh, (i+1)·Hi/Hh) whatever padding was needed.
    The model never picks its own device.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        backbone: Backbone,
        decoder: nn.Module,
        *,
        frames: int,
        heatmap_size: tuple[int, int],
        input_size: tuple[int, int],
        fusion: Literal["early", "late"] = "early",
        no_ball_logit: bool = False,
    ) -> None:
        super().__init__()
        self.frames = int(frames)
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))  # (Hh, Wh)
        self.input_size = (int(input_size[0]), int(input_size[1]))  # (Hi, Wi) the model was configured for
        self.fusion = fusion
        self.backbone = backbone
        if fusion == "early" and self.frames > 1:
            backbone.replace_input_conv(inflate_input_conv(backbone.input_conv(), self.frames))
        self.temporal = LateFusion(backbone.channels, self.frames) if fusion == "late" and self.frames > 1 else None
        self.decoder = decoder
        self.head = HeatmapHead(decoder.out_channels, self.frames)
        self.no_ball = NoBallHead(decoder.out_channels, self.frames) if no_ball_logit else None
        self._channels_last = False
        self.register_buffer("mean", torch.empty(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.empty(1, 1, 3, 1, 1), persistent=False)
        self.set_normalization(backbone.normalization)

    @property
    def normalization(self) -> Normalization:
        """The exact values (the buffers hold them in the model's dtype)."""
        return self._normalization

    def set_normalization(self, normalization: Normalization) -> None:
        self._normalization = normalization
        with torch.no_grad():
            self.mean.copy_(torch.tensor(normalization.mean).reshape(1, 1, 3, 1, 1))
            self.std.copy_(torch.tensor(normalization.std).reshape(1, 1, 3, 1, 1))

    def to_channels_last(self) -> "HeatmapModel":
        """NHWC weights and inputs for the convolutions (a GPU/bf16 speed-up for conv decoders; measure per model)."""
        for p in self.parameters():  # only the 4-D conv weights; buffers like mean/std stay as they are
            if p.ndim == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        self._channels_last = True
        return self

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Backbone (pretrained, for an LR multiplier or freezing) / decoder (incl. late fusion) / head."""
        decoder = list(self.decoder.parameters()) + (list(self.temporal.parameters()) if self.temporal else [])
        head = list(self.head.parameters()) + (list(self.no_ball.parameters()) if self.no_ball else [])
        return {"backbone": list(self.backbone.parameters()), "decoder": decoder, "head": head}

    def train(self, mode: bool = True) -> "HeatmapModel":
        super().train(mode)
        if self.backbone.frozen:
            self.backbone.eval()  # no drop-path / RoPE jitter in a frozen feature extractor
        return self

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(Hh, Wh) for an input of (height, width): the configured heatmap size for the configured input,
        the same cells per input pixel for any other (training crops: `data.augment.crop_width`)."""
        (hh, wh), (hi, wi) = self.heatmap_size, self.input_size
        if (height, width) == (hi, wi):
            return hh, wh
        return max(1, round(height * hh / hi)), max(1, round(width * wh / wi))

    def forward(
        self, frames: torch.Tensor, *, with_no_ball: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, Hh, Wh); with `with_no_ball` also the (B, T) "no ball" logits (needs `no_ball_logit`)."""
        if frames.ndim != 5 or frames.shape[1] != self.frames or frames.shape[2] != 3:
            raise ValueError(f"expected frames (B, {self.frames}, 3, H, W), got {tuple(frames.shape)}")
        batch, steps, _, height, width = frames.shape
        x = (frames.to(self.mean.dtype) - self.mean) / self.std
        multiple = self.backbone.pad_multiple
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))  # zero after normalisation = the mean colour
        padded_h, padded_w = height + pad_h, width + pad_w
        if self.temporal is None:
            x = x.reshape(batch, steps * 3, padded_h, padded_w)
        else:
            x = x.reshape(batch * steps, 3, padded_h, padded_w)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x) if self.temporal is None else self.temporal(self.backbone(x))
        canvas = Canvas(size=self.output_size(height, width), valid=(height / padded_h, width / padded_w))
        decoded = self.decoder(features, canvas)
        logits = self.head(decoded)
        if not with_no_ball:
            return logits
        if self.no_ball is None:
            raise ValueError("this model has no 'no ball' logit: build it with model.no_ball_logit=true")
        return logits, self.no_ball(decoded)
