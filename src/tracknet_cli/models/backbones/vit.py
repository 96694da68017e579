"""DINOv3 ViT (transformers `DINOv3ViTModel`) as patch-grid feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tracknet_cli.errors import ConfigError
from tracknet_cli.models.backbones.base import Backbone, resolve_out_indices
from tracknet_cli.models.weights import LoadedBackbone


class DINOv3ViTBackbone(Backbone):
    """Patch tokens of chosen layers as NCHW maps at stride `patch_size`.

    The sequence is 1 CLS + `num_register_tokens` + Hp·Wp patches; the prefix is dropped by its
    count from the config (0 for the class default, 4 for the released checkpoints). Intermediate
    layers get the final LayerNorm like transformers' own backbone (`apply_layernorm`).
    Default: the last layer only.
    """

    def __init__(self, loaded: LoadedBackbone, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        self.vit = loaded.model
        config = self.vit.config
        patch = config.patch_size
        if not isinstance(patch, int):
            if len(set(patch)) != 1:
                raise ConfigError(f"model.backbone: non-square patches {patch} are not supported")
            patch = int(patch[0])
        self.patch_size = int(patch)
        self.num_layers = int(config.num_hidden_layers)
        self.num_prefix_tokens = 1 + int(config.num_register_tokens)
        self.out_indices = resolve_out_indices(out_indices, self.num_layers, [self.num_layers], "layer")
        hidden = int(config.hidden_size)
        self.channels = [hidden] * len(self.out_indices)
        self.strides = [self.patch_size] * len(self.out_indices)
        self.pad_multiple = self.patch_size
        self.normalization = loaded.normalization
        self.source_config = loaded.source_config
        # The mask token only serves masked pre-training (`bool_masked_pos`); drop it after loading so
        # every parameter left takes part in the forward pass (and gets a gradient).
        del self.vit.embeddings.mask_token
        self.vit.embeddings.mask_token = None

    def input_conv(self) -> nn.Conv2d:
        return self.vit.embeddings.patch_embeddings

    def replace_input_conv(self, conv: nn.Conv2d) -> None:
        self.vit.embeddings.patch_embeddings = conv

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        batch, _, height, width = x.shape
        if height % self.patch_size or width % self.patch_size:
            # transformers would silently drop the remainder; the model pads before calling us
            raise ValueError(f"input {height}x{width} is not a multiple of the patch size {self.patch_size}")
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        need_hidden = self.out_indices != [self.num_layers]
        out = self.vit(pixel_values=x, output_hidden_states=need_hidden)
        maps = []
        for index in self.out_indices:
            tokens = out.last_hidden_state if index == self.num_layers else self.vit.norm(out.hidden_states[index])
            patches = tokens[:, self.num_prefix_tokens :, :]
            if patches.shape[1] != grid_h * grid_w:
                raise RuntimeError(f"expected {grid_h * grid_w} patch tokens, got {patches.shape[1]}")
            maps.append(patches.reshape(batch, grid_h, grid_w, -1).permute(0, 3, 1, 2).contiguous())
        return maps
