"""The native U-Net (backbone `unet` + decoder `unet`): full-resolution maps, padding, fusion, checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from tests.models.conftest import make_config
from tracknet_cli.errors import ConfigError
from tracknet_cli.inference.checkpoint import load_model, save_checkpoint
from tracknet_cli.models import build_model

WIDTHS = [4, 8, 12, 16]


def unet_config(
    *,
    frames: int = 3,
    fusion: str = "early",
    size: tuple[int, int] = (48, 64),
    heatmap: tuple[int, int] = (48, 64),
    input_stride: int = 1,
    **model,
):
    return make_config(
        "unet",
        "unused",
        frames=frames,
        fusion=fusion,
        size=size,
        heatmap=heatmap,
        pretrained=False,
        decoder="unet",
        unet={"widths": WIDTHS, "convs": 2, "input_stride": input_stride},
        **model,
    )


@pytest.mark.parametrize("fusion,frames", [("early", 1), ("early", 3), ("late", 3)])
@pytest.mark.parametrize("size,heatmap", [((48, 64), (48, 64)), ((50, 90), (50, 90)), ((50, 90), (25, 45))])
def test_one_heatmap_per_frame_at_any_size(
    fusion: str, frames: int, size: tuple[int, int], heatmap: tuple[int, int]
) -> None:
    """50×90 is not a multiple of 8 (three poolings): padded inside, cropped back to the canvas."""
    model = build_model(unet_config(frames=frames, fusion=fusion, size=size, heatmap=heatmap)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, frames, 3, *size))
    assert out.shape == (2, frames, *heatmap)
    assert torch.isfinite(out).all()


def test_encoder_keeps_a_full_resolution_map() -> None:
    model = build_model(unet_config(size=(50, 90), heatmap=(50, 90))).eval()
    assert model.backbone.strides == [1, 2, 4, 8] and model.backbone.channels == WIDTHS
    assert model.backbone.pad_multiple == 8
    seen = []
    hook = model.decoder.register_forward_pre_hook(lambda _m, args: seen.append(args))
    with torch.no_grad():
        model(torch.rand(1, 3, 3, 50, 90))
    hook.remove()
    features, canvas = seen[0]
    assert [tuple(f.shape[-2:]) for f in features] == [(56, 96), (28, 48), (14, 24), (7, 12)]
    assert canvas.valid == (50 / 56, 90 / 96)
    assert model.decoder.out_channels == WIDTHS[0]


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model(unet_config(no_ball_logit=True)).train()
    logits, no_ball = model(torch.rand(2, 3, 3, 48, 64), with_no_ball=True)
    (logits * torch.randn_like(logits)).sum().add(no_ball.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert sum(len(v) for v in model.param_groups().values()) == len(list(model.parameters()))


def test_early_fusion_of_identical_frames_reproduces_single_frame_features() -> None:
    """Same seed, same encoder; the 9-channel first conv holds the 3-channel weights / 3."""
    torch.manual_seed(0)
    single = build_model(unet_config(frames=1)).eval()
    torch.manual_seed(0)
    triple = build_model(unet_config(frames=3)).eval()
    conv = triple.backbone.input_conv()
    assert conv.in_channels == 9
    torch.testing.assert_close(conv.weight[:, 3:6] * 3, single.backbone.input_conv().weight)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        for a, b in zip(single.backbone(x), triple.backbone(x.repeat(1, 3, 1, 1))):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_channels_last_gives_the_same_heatmaps() -> None:
    model = build_model(unet_config(size=(50, 90), heatmap=(50, 90))).eval()
    fast = copy.deepcopy(model).to_channels_last()
    x = torch.rand(1, 3, 3, 50, 90)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=1e-4)


def test_checkpoint_rebuilds_the_same_model(tmp_path: Path) -> None:
    config = unet_config(size=(40, 72), heatmap=(20, 36))
    model = build_model(config).train()
    model(torch.rand(4, 3, 3, 40, 72))  # moves the BatchNorm running statistics away from their init
    model.eval()
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, model, config, threshold=0.4, loss="softmax", metrics={})
    loaded, meta = load_model(path)
    x = torch.rand(1, 3, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta.backbone_config == {"model_type": "tracknet_unet", "widths": WIDTHS, "convs": 2, "input_stride": 1}


def test_input_stride_2_halves_every_map_and_keeps_the_shapes_of_the_parameters() -> None:
    """The real-time family: the first convolution strided, every stage at half resolution, the heatmap
    at the decoder's finest map; the parameters are those of the stride-1 model, one for one."""
    full = build_model(unet_config(size=(48, 80), heatmap=(48, 80))).eval()
    fast = build_model(unet_config(size=(48, 80), heatmap=(24, 40), input_stride=2)).eval()
    assert fast.backbone.strides == [2, 4, 8, 16] and fast.backbone.pad_multiple == 16
    assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in full.state_dict().items()}
    seen = []
    hook = fast.decoder.register_forward_pre_hook(lambda _m, args: seen.append(args))
    with torch.no_grad():
        out = fast(torch.rand(1, 3, 3, 48, 80))
    hook.remove()
    assert [tuple(f.shape[-2:]) for f in seen[0][0]] == [(24, 40), (12, 20), (6, 10), (3, 5)]
    assert out.shape == (1, 3, 24, 40)
    fast.load_state_dict(full.state_dict())  # a full-resolution model's weights start a stride-2 one


def test_input_stride_2_survives_a_checkpoint_and_old_checkpoints_mean_stride_1(tmp_path: Path) -> None:
    config = unet_config(size=(48, 80), heatmap=(24, 40), input_stride=2)
    model = build_model(config).eval()
    path = save_checkpoint(tmp_path / "fast.safetensors", model, config, threshold=0.5, loss="softmax", metrics={})
    loaded, meta = load_model(path)
    assert meta.backbone_config["input_stride"] == 2 and loaded.backbone.strides[0] == 2
    x = torch.rand(1, 3, 3, 48, 80)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    from tracknet_cli.models.backbones.unet import UNetBackbone

    assert UNetBackbone({"widths": WIDTHS, "convs": 2}).strides == [1, 2, 4, 8]  # written before input_stride


def test_pretrained_unet_is_refused_with_the_fix() -> None:
    config = make_config("unet", "unused", pretrained=True, decoder="unet")
    with pytest.raises(ConfigError, match="no pretrained weights") as info:
        build_model(config)
    assert "pretrained=false" in str(info.value.hint)


def test_unet_decoder_also_takes_a_convnext_pyramid(convnext_dir: Path) -> None:
    model = build_model(
        make_config(
            "convnext",
            convnext_dir,
            frames=3,
            size=(64, 96),
            heatmap=(32, 48),
            decoder="unet",
            backbone={"out_indices": [1, 2, 3, 4]},
        )
    ).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 3, 64, 96)).shape == (1, 3, 32, 48)
    assert model.decoder.out_channels == model.backbone.channels[0]


def test_predict_auto_precision_follows_the_family_table(tmp_path: Path) -> None:
    """`predict --precision auto` on a CPU with native bf16 runs the unet in bf16 + channels_last, else fp32."""
    from tracknet_cli.inference.runtime import cpu_bf16_support
    from tracknet_cli.predict.tracker import Tracker

    config = unet_config(size=(40, 72), heatmap=(40, 72))
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, build_model(config).eval(), config, threshold=0.5, loss="softmax", metrics={})
    auto = Tracker.from_pretrained(path, device="cpu", runtime="torch")
    fp32 = Tracker.from_pretrained(path, device="cpu", precision="fp32", runtime="torch")
    assert fp32.engine.autocast_dtype is None and not fp32.engine.model._channels_last
    if cpu_bf16_support().native:
        assert auto.engine.autocast_dtype == torch.bfloat16 and auto.engine.model._channels_last
    else:
        assert auto.engine.autocast_dtype is None


@pytest.mark.parametrize(
    "size,heatmap,crop,expected", [((48, 64), (48, 64), (32, 32), (32, 32)), ((48, 64), (24, 32), (32, 48), (16, 24))]
)
def test_a_training_crop_gets_the_same_cells_per_pixel(size, heatmap, crop, expected) -> None:
    """data.augment.crop_*: a crop of the input gives the matching crop of the heatmap grid."""
    model = build_model(unet_config(size=size, heatmap=heatmap)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 3, *crop)).shape == (1, 3, *expected)
        assert model(torch.rand(1, 3, 3, *size)).shape == (1, 3, *heatmap)
