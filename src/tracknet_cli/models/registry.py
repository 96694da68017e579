"""Names → builders for backbones and decoders, and `build_model(config)`.

Importing this module does not import torch or transformers (the CLI reads the names for help
text and suggestions); the builders import them when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracknet_cli.choices import BackboneName, DecoderName, registry
from tracknet_cli.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from tracknet_cli.config.schema import ModelConfig, TrackNetConfig
    from tracknet_cli.models.backbones.base import Backbone
    from tracknet_cli.models.heatmap_model import HeatmapModel


@dataclass(frozen=True)
class BackboneEntry:
    """One backbone family: how to build it and the traits the rest of the package asks about."""

    build: Callable[["ModelConfig", "Mapping[str, Any] | None", "bool | None"], "Backbone"]
    description: str
    bf16_on_cpu: bool
    """`precision: auto` on a CPU with native bf16 picks bf16 (measured, docs/training/losses.md: the
    ConvNeXt+FPN trains 1.4-1.7x faster; a small ViT ran 2x slower, so ViTs stay fp32)."""
    channels_last_on_cpu: bool = False
    """... and also channels_last (the unet: 35 vs 25 samples/s at 256x144)."""


def _transformers(model_class: str, config_class: str, wrap: Callable[[Any, "list[int] | None"], "Backbone"]):
    """A builder for a backbone that `transformers` implements (`model_class`, `config_class` name its classes)."""

    def build(model: "ModelConfig", source_config: "Mapping[str, Any] | None", verbose: "bool | None") -> "Backbone":
        import transformers

        from tracknet_cli.models import weights

        spec = model.backbone
        model_cls, config_cls = getattr(transformers, model_class), getattr(transformers, config_class)
        if spec.pretrained and source_config is None:
            loaded = weights.load_pretrained(
                model_cls, config_cls, spec.pretrained_model_name, spec.config_overrides, verbose=verbose
            )
        else:
            loaded = weights.build_random(
                model_cls, config_cls, spec.pretrained_model_name, spec.config_overrides, source_config=source_config
            )
        return wrap(loaded, default_out_indices(model))

    return build


def _wrap_vit(loaded: Any, out_indices: list[int] | None) -> "Backbone":
    from tracknet_cli.models.backbones.vit import DINOv3ViTBackbone

    return DINOv3ViTBackbone(loaded, out_indices)


def _wrap_convnext(family: str) -> Callable[..., "Backbone"]:
    def wrap(loaded: Any, out_indices: list[int] | None) -> "Backbone":
        from tracknet_cli.models.backbones.convnext import ConvNeXtBackbone

        return ConvNeXtBackbone(loaded, family, out_indices)  # type: ignore[arg-type]

    return wrap


def _build_unet_backbone(
    model: "ModelConfig", source_config: "Mapping[str, Any] | None", verbose: "bool | None"
) -> "Backbone":
    """Plain torch: no transformers import."""
    from tracknet_cli.models.backbones.unet import UNetBackbone, unet_source_config

    if model.backbone.pretrained and source_config is None:
        raise ConfigError(
            "model.backbone.type=unet has no pretrained weights", hint="set model.backbone.pretrained=false"
        )
    source = source_config or unet_source_config(model.unet.widths, model.unet.convs, model.unet.input_stride)
    return UNetBackbone(source, default_out_indices(model))


BACKBONES: dict[str, BackboneEntry] = registry(
    {
        "dinov3_vit": BackboneEntry(
            _transformers("DINOv3ViTModel", "DINOv3ViTConfig", _wrap_vit),
            "DINOv3 ViT, patch 16, stride-16 maps of chosen layers (default: the last)",
            bf16_on_cpu=False,
        ),
        "convnext": BackboneEntry(
            _transformers("ConvNextModel", "ConvNextConfig", _wrap_convnext("convnext")),
            "ConvNeXt (open ImageNet weights), stage maps at strides 4/8/16/32",
            bf16_on_cpu=True,
        ),
        "dinov3_convnext": BackboneEntry(
            _transformers("DINOv3ConvNextModel", "DINOv3ConvNextConfig", _wrap_convnext("dinov3_convnext")),
            "DINOv3 ConvNeXt (gated weights), stage maps at strides 4/8/16/32",
            bf16_on_cpu=True,
        ),
        "unet": BackboneEntry(
            _build_unet_backbone,
            "plain full-resolution conv encoder (model.unet), random init, for CPUs and small balls",
            bf16_on_cpu=True,
            channels_last_on_cpu=True,
        ),
    },
    BackboneName,
)
"""Every backbone family, keyed by `choices.BackboneName` (which feeds the config schema)."""


def _build_upsampling(model: "ModelConfig", channels: list[int]) -> "nn.Module":
    from tracknet_cli.models.decoders.upsampling import UpsamplingDecoder

    return UpsamplingDecoder(channels, model.upsampling.channels)


def _build_fpn(model: "ModelConfig", channels: list[int]) -> "nn.Module":
    from tracknet_cli.models.decoders.fpn import FPNDecoder

    return FPNDecoder(channels, model.fpn.lateral_dim, model.fpn.fuse)


def _build_unet(model: "ModelConfig", channels: list[int]) -> "nn.Module":
    from tracknet_cli.models.decoders.unet import UNetDecoder

    return UNetDecoder(channels, model.unet.convs)


DECODERS: dict[str, Callable[["ModelConfig", list[int]], "nn.Module"]] = registry(
    {
        "upsampling": _build_upsampling,
        "fpn": _build_fpn,
        "unet": _build_unet,
    },
    DecoderName,
)


def default_out_indices(model: "ModelConfig") -> list[int] | None:
    """The configured indices, else C2..C5 for an FPN with `use_p2` on a ConvNeXt, else the backbone's default."""
    if model.backbone.out_indices is not None:
        return list(model.backbone.out_indices)
    if model.decoder == "fpn" and model.fpn.use_p2 and model.backbone.type != "dinov3_vit":
        return [1, 2, 3, 4]
    return None


def build_backbone(
    model: "ModelConfig", *, source_config: Mapping[str, Any] | None = None, verbose: bool | None = None
) -> "Backbone":
    """Pretrained from a folder or the hub cache, or random from a config (`source_config`: a checkpoint's)."""
    return BACKBONES[model.backbone.type].build(model, source_config, verbose)


def build_model(
    config: "TrackNetConfig", *, backbone_config: Mapping[str, Any] | None = None, verbose: bool | None = None
) -> "HeatmapModel":
    """The configured model on the CPU (the caller moves it). `verbose`: show transformers' loading output
    (default: when TRACKNET_DEBUG is set). `backbone_config`: rebuild from a checkpoint's embedded config."""
    from tracknet_cli.models.heatmap_model import HeatmapModel

    model_cfg, data = config.model, config.data
    backbone = build_backbone(model_cfg, source_config=backbone_config, verbose=verbose)
    decoder = DECODERS[model_cfg.decoder](model_cfg, list(backbone.channels))
    model = HeatmapModel(
        backbone,
        decoder,
        frames=data.sequence_length,
        heatmap_size=(data.heatmap_height, data.heatmap_width),
        input_size=(data.input_height, data.input_width),
        fusion=model_cfg.temporal_fusion,
        no_ball_logit=model_cfg.no_ball_logit,
    )
    if model_cfg.backbone.freeze:
        model.backbone.freeze()
    return model
