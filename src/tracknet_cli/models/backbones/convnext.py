"""ConvNeXt (transformers `ConvNextModel` or `DINOv3ConvNextModel`) as a multi-scale pyramid.

The `*Model` classes are used rather than `*Backbone` because they are what the released
checkpoints hold: `ConvNextBackbone.from_pretrained` on `facebook/convnext-tiny-224` leaves its
stage norms freshly initialised behind a load report. The per-level LayerNorms are ours instead,
initialised to identity, and always trained with the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tracknet_cli.models.backbones.base import Backbone, resolve_out_indices
from tracknet_cli.models.weights import LoadedBackbone


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class ConvNeXtBackbone(Backbone):
    """Stage outputs C1..C4 (strides 4, 8, 16, 32); the FPN's C2..C5. Default: stages 2, 3, 4."""

    def __init__(
        self,
        loaded: LoadedBackbone,
        family: Literal["convnext", "dinov3_convnext"],
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.family = family
        self.net = loaded.model
        config = self.net.config
        sizes = [int(c) for c in config.hidden_sizes]
        num_stages = len(sizes)
        stem = int(getattr(config, "patch_size", 4)) if family == "convnext" else 4
        last_three = list(range(max(1, num_stages - 2), num_stages + 1))
        self.out_indices = resolve_out_indices(out_indices, num_stages, last_three, "stage")
        self.channels = [sizes[i - 1] for i in self.out_indices]
        self.strides = [stem * 2 ** (i - 1) for i in self.out_indices]
        self.pad_multiple = stem * 2 ** (num_stages - 1)
        self.norms = nn.ModuleList(LayerNorm2d(c, eps=1e-6) for c in self.channels)
        self.normalization = loaded.normalization
        self.source_config = loaded.source_config
        # The norm of the pooled classification vector is never used here: drop it after loading.
        if family == "convnext":
            self.net.layernorm = nn.Identity()
        else:
            self.net.layer_norm = nn.Identity()

    def input_conv(self) -> nn.Conv2d:
        if self.family == "convnext":
            return self.net.embeddings.patch_embeddings
        return self.net.model.stages[0].downsample_layers[0]

    def replace_input_conv(self, conv: nn.Conv2d) -> None:
        if self.family == "convnext":
            self.net.embeddings.patch_embeddings = conv
            self.net.embeddings.num_channels = conv.in_channels  # transformers checks the input against it
        else:
            self.net.model.stages[0].downsample_layers[0] = conv

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[-2] % self.pad_multiple or x.shape[-1] % self.pad_multiple:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not a multiple of {self.pad_multiple}")
        # Call the encoders directly: the pooled head of the *Model classes is not needed.
        if self.family == "convnext":
            hidden = self.net.encoder(self.net.embeddings(x), output_hidden_states=True).hidden_states
        else:
            hidden = self.net.model(x, output_hidden_states=True).hidden_states
        # hidden[0] is the stem (convnext) or the input (dinov3_convnext); hidden[i] is stage i.
        return [norm(hidden[i]) for norm, i in zip(self.norms, self.out_indices)]
