"""Heatmap models built from tiny saved backbones: loading, shapes, gradients, freezing, fusion."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.models.conftest import make_config
from tracknet_cli.models import build_model


def _dir(request: pytest.FixtureRequest, kind: str) -> Path:
    fixture = {
        "dinov3_vit": "vit_dir",
        "dinov3_vit0": "vit0_dir",
        "convnext": "convnext_dir",
        "dinov3_convnext": "dinov3_convnext_dir",
    }[kind]
    return request.getfixturevalue(fixture)


def _kind(name: str) -> str:
    return "dinov3_vit" if name.startswith("dinov3_vit") else name


# ---------------------------------------------------------------- loading from a local folder
@pytest.mark.parametrize("registers,fixture", [(4, "vit_dir"), (0, "vit0_dir")])
def test_vit_patch_maps_match_transformers_backbone(
    registers: int, fixture: str, request: pytest.FixtureRequest
) -> None:
    """Our CLS/register dropping agrees with transformers' own DINOv3ViTBackbone on the same weights."""
    from transformers import DINOv3ViTBackbone as HFBackbone

    folder: Path = request.getfixturevalue(fixture)
    model = build_model(make_config("dinov3_vit", folder, backbone={"out_indices": [1, -1]})).eval()
    assert model.backbone.num_prefix_tokens == 1 + registers
    reference = HFBackbone.from_pretrained(str(folder), out_indices=[1, 2]).eval()
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        ours = model.backbone(x)
        theirs = reference(x).feature_maps
    assert [tuple(f.shape) for f in ours] == [(2, 32, 3, 5), (2, 32, 3, 5)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_pretrained_weights_come_from_the_folder(vit_dir: Path, convnext_dir: Path, dinov3_convnext_dir: Path) -> None:
    saved = load_file(str(vit_dir / "model.safetensors"))
    model = build_model(make_config("dinov3_vit", vit_dir))
    net = model.backbone.vit.state_dict()
    renamed = {k if k in net else f"model.{k}": v for k, v in saved.items() if k != "embeddings.mask_token"}
    assert set(renamed) == set(net)  # files keep the original `layer.N` names; the unused mask token is dropped
    for key, value in renamed.items():
        torch.testing.assert_close(net[key], value)
    # the classifier checkpoint stores the trunk under `convnext.`; every stage weight must arrive
    saved = load_file(str(convnext_dir / "model.safetensors"))
    net = build_model(make_config("convnext", convnext_dir)).backbone.net.state_dict()
    trunk = {
        k.removeprefix("convnext."): v
        for k, v in saved.items()
        if k.startswith("convnext.") and not k.startswith("convnext.layernorm.")
    }  # the pooler norm is dropped
    assert set(trunk) == set(net)
    for key, value in trunk.items():
        torch.testing.assert_close(net[key], value)
    # this file keeps the original DINOv3 key names; transformers' own loader is the reference
    from transformers import DINOv3ConvNextModel

    reference = {
        k: v
        for k, v in DINOv3ConvNextModel.from_pretrained(str(dinov3_convnext_dir)).state_dict().items()
        if not k.startswith("layer_norm.")
    }  # the pooler norm is dropped
    net = build_model(make_config("dinov3_convnext", dinov3_convnext_dir)).backbone.net.state_dict()
    assert set(reference) == set(net)
    for key, value in reference.items():
        torch.testing.assert_close(net[key], value)
    fresh = build_model(make_config("dinov3_convnext", dinov3_convnext_dir, pretrained=False)).backbone.net.state_dict()
    assert not torch.equal(
        fresh["model.stages.0.downsample_layers.0.weight"], net["model.stages.0.downsample_layers.0.weight"]
    )


def test_normalisation_from_preprocessor_config_else_imagenet(vit_dir: Path, vit0_dir: Path) -> None:
    model = build_model(make_config("dinov3_vit", vit_dir))
    assert model.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert model.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.3])
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()  # non-persistent
    plain = build_model(make_config("dinov3_vit", vit0_dir))
    assert plain.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert plain.std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])


def test_loading_chatter_is_hidden_unless_verbose(
    convnext_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The classifier checkpoint makes transformers log a LOAD REPORT (unexpected classifier keys)."""
    caplog.set_level(logging.INFO)
    build_model(make_config("convnext", convnext_dir))
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert [r for r in caplog.records if r.name.startswith("transformers")] == []
    build_model(make_config("convnext", convnext_dir), verbose=True)
    assert any("LOAD REPORT" in r.getMessage() for r in caplog.records if r.name.startswith("transformers"))


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", ["dinov3_vit", "dinov3_vit0", "convnext", "dinov3_convnext"])
@pytest.mark.parametrize("fusion,frames", [("early", 1), ("early", 3), ("late", 3)])
def test_output_is_one_heatmap_per_frame(name: str, fusion: str, frames: int, request: pytest.FixtureRequest) -> None:
    config = make_config(
        _kind(name), _dir(request, name), frames=frames, fusion=fusion, size=(64, 96), heatmap=(16, 24)
    )
    model = build_model(config).eval()
    with torch.no_grad():
        out = model(torch.rand(2, frames, 3, 64, 96))
    assert out.shape == (2, frames, 16, 24)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["dinov3_vit", "convnext"])
@pytest.mark.parametrize("size,heatmap", [((50, 90), (25, 45)), ((72, 128), (18, 32)), ((40, 200), (10, 50))])
def test_sizes_that_are_not_patch_multiples(
    name: str, size: tuple[int, int], heatmap: tuple[int, int], request: pytest.FixtureRequest
) -> None:
    """50×90 is a multiple of neither 16 nor 32: padded inside, cropped back to exactly the heatmap size."""
    model = build_model(make_config(_kind(name), _dir(request, name), frames=3, size=size, heatmap=heatmap)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 3, *size))
    assert out.shape == (1, 3, *heatmap)


@pytest.mark.parametrize("name", ["dinov3_vit", "convnext"])
def test_full_broadcast_resolution(name: str, request: pytest.FixtureRequest) -> None:
    """720×1280: 45×80 patches for the ViT; 720 is not a multiple of 32, so the ConvNeXt pads to 736."""
    model = build_model(make_config(_kind(name), _dir(request, name), size=(720, 1280), heatmap=(72, 128))).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 3, 720, 1280))
    assert out.shape == (1, 1, 72, 128)


def test_decoder_is_told_which_part_of_the_padded_input_is_real(convnext_dir: Path, vit_dir: Path) -> None:
    """50×90 pads to 64×96 for ConvNeXt (multiple of 32) and to 64×96 for the ViT (16): 48 would be too small."""
    seen = []
    for kind, folder, padded in (("convnext", convnext_dir, (64, 96)), ("dinov3_vit", vit_dir, (64, 96))):
        model = build_model(make_config(kind, folder, size=(50, 90), heatmap=(25, 45))).eval()
        hook = model.decoder.register_forward_pre_hook(lambda _m, args: seen.append(args))
        with torch.no_grad():
            model(torch.rand(1, 1, 3, 50, 90))
        hook.remove()
        features, canvas = seen[-1]
        strides = model.backbone.strides
        assert [tuple(f.shape[-2:]) for f in features] == [(padded[0] // s, padded[1] // s) for s in strides]
        assert canvas.size == (25, 45)
        assert canvas.valid == (50 / padded[0], 90 / padded[1])


# ---------------------------------------------------------------- gradients and freezing
@pytest.mark.parametrize(
    "name,fusion",
    [
        ("dinov3_vit", "early"),
        ("dinov3_vit0", "late"),
        ("convnext", "early"),
        ("convnext", "late"),
        ("dinov3_convnext", "early"),
    ],
)
def test_gradients_reach_every_trainable_parameter(name: str, fusion: str, request: pytest.FixtureRequest) -> None:
    torch.manual_seed(0)
    model = build_model(
        make_config(
            _kind(name),
            _dir(request, name),
            frames=3,
            fusion=fusion,
            size=(48, 64),
            heatmap=(12, 16),
            no_ball_logit=True,
        )
    ).train()
    logits, no_ball = model(torch.rand(2, 3, 3, 48, 64), with_no_ball=True)
    (logits * torch.randn_like(logits)).sum().add(no_ball.sum()).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or (p.numel() > 0 and not p.grad.abs().sum() > 0)]
    assert missing == []
    # what the task never uses (ViT mask token, the classification pooler's norm) is dropped, nothing frozen
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == []
    groups = model.param_groups()
    assert sum(len(v) for v in groups.values()) == len(list(model.parameters()))


@pytest.mark.parametrize("name,fusion,frames", [("dinov3_vit", "early", 1), ("convnext", "late", 3)])
def test_frozen_backbone_gets_no_gradient(name: str, fusion: str, frames: int, request: pytest.FixtureRequest) -> None:
    model = build_model(
        make_config(
            _kind(name), _dir(request, name), frames=frames, fusion=fusion, freeze=True, size=(48, 64), heatmap=(12, 16)
        )
    )
    model.train()
    assert not model.backbone.training and model.decoder.training  # no drop-path/RoPE jitter when frozen
    model(torch.rand(1, frames, 3, 48, 64)).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


# ---------------------------------------------------------------- temporal fusion
@pytest.mark.parametrize("name", ["dinov3_vit", "convnext", "dinov3_convnext"])
def test_early_fusion_of_identical_frames_reproduces_single_frame_features(
    name: str, request: pytest.FixtureRequest
) -> None:
    folder = _dir(request, name)
    single = build_model(make_config(_kind(name), folder, frames=1)).eval()
    triple = build_model(make_config(_kind(name), folder, frames=3, fusion="early")).eval()
    conv = triple.backbone.input_conv()
    assert conv.in_channels == 9
    torch.testing.assert_close(conv.weight[:, 3:6] * 3, single.backbone.input_conv().weight)
    torch.testing.assert_close(conv.bias, single.backbone.input_conv().bias)  # bias not divided
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        one = single.backbone(x)
        three = triple.backbone(x.repeat(1, 3, 1, 1))
    for a, b in zip(one, three):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_late_fusion_starts_as_the_frame_mean(convnext_dir: Path) -> None:
    model = build_model(make_config("convnext", convnext_dir, frames=3, fusion="late")).eval()
    maps = [torch.randn(2 * 3, c, 4, 6) for c in model.backbone.channels]
    fused = model.temporal(maps)
    for f, m in zip(fused, maps):
        torch.testing.assert_close(f, m.reshape(2, 3, *m.shape[1:]).mean(dim=1), atol=1e-6, rtol=1e-5)


def test_wrong_window_shape_is_refused(vit_dir: Path) -> None:
    model = build_model(make_config("dinov3_vit", vit_dir, frames=3))
    with pytest.raises(ValueError, match=r"\(B, 3, 3, H, W\)"):
        model(torch.rand(1, 2, 3, 64, 96))


def test_channels_last_gives_the_same_heatmaps(convnext_dir: Path) -> None:
    import copy

    model = build_model(make_config("convnext", convnext_dir, frames=3, size=(50, 90), heatmap=(25, 45))).eval()
    fast = copy.deepcopy(model).to_channels_last()
    x = torch.rand(1, 3, 3, 50, 90)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=1e-4)
    assert fast.head.logits.weight.is_contiguous(memory_format=torch.channels_last)


def test_no_ball_logits_only_when_configured(vit_dir: Path) -> None:
    model = build_model(make_config("dinov3_vit", vit_dir, frames=3))
    with pytest.raises(ValueError, match="no_ball_logit=true"):
        model(torch.rand(1, 3, 3, 64, 96), with_no_ball=True)
    with_head = build_model(make_config("dinov3_vit", vit_dir, frames=3, no_ball_logit=True))
    logits, no_ball = with_head(torch.rand(2, 3, 3, 64, 96), with_no_ball=True)
    assert logits.shape == (2, 3, 16, 24) and no_ball.shape == (2, 3)
