"""Weights that can or cannot be had: offline hub ids, folders, random builds that never touch the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.models.conftest import make_config
from tracknet_cli.errors import ConfigError, InputError, WeightsUnavailableError
from tracknet_cli.models import build_model


def test_hub_id_offline_is_one_actionable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = make_config("dinov3_vit", "tracknet-tests/dinov3-never-cached")
    with pytest.raises(WeightsUnavailableError) as info:
        build_model(config)
    line = info.value.line()
    assert info.value.exit_code == 1
    assert "\n" not in line
    assert "tracknet-tests/dinov3-never-cached" in line and "offline" in line
    assert "local folder" in line and "model.backbone.pretrained=false" in line


def test_gated_dinov3_offline_says_how_to_get_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # a name of the gated family that is surely not cached
    config = make_config("dinov3_vit", "facebook/dinov3-tracknet-test-never-cached")
    with pytest.raises(
        WeightsUnavailableError,
        match=r"request access on https://huggingface.co/facebook/dinov3-.*HF_TOKEN.*hf auth login",
    ):
        build_model(config)


def test_random_build_of_a_known_hub_id_uses_its_architecture_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrained=false with the default ViT-B/16 id: its 4 register tokens and 12 heads, shrunk by overrides."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = make_config(
        "dinov3_vit",
        "facebook/dinov3-vitb16-pretrain-lvd1689m",
        pretrained=False,
        backbone={"config_overrides": {"num_hidden_layers": 1, "hidden_size": 48, "intermediate_size": 96}},
    )
    model = build_model(config)
    vit = model.backbone.vit.config
    assert (vit.num_register_tokens, vit.num_attention_heads, vit.num_hidden_layers, vit.hidden_size) == (4, 12, 1, 48)
    assert model.backbone.num_prefix_tokens == 5


def test_random_convnext_overrides_can_change_the_stage_count() -> None:
    config = make_config(
        "convnext",
        "facebook/convnext-tiny-224",
        pretrained=False,
        backbone={"config_overrides": {"depths": [1, 1, 1], "hidden_sizes": [8, 16, 24]}},
    )
    backbone = build_model(config).backbone
    assert backbone.channels == [8, 16, 24] and backbone.strides == [4, 8, 16] and backbone.pad_multiple == 16


def test_folder_problems_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no config.json"):
        build_model(make_config("convnext", tmp_path))
    with pytest.raises(InputError, match="does not exist"):
        build_model(make_config("convnext", tmp_path / "missing"))
    with pytest.raises(InputError, match="does not exist"):
        build_model(make_config("convnext", tmp_path / "missing", pretrained=False))


def test_a_checkpoint_of_another_family_is_a_config_error(vit_dir: Path) -> None:
    with pytest.raises(ConfigError, match="holds a dinov3_vit model but model.backbone.type is convnext"):
        build_model(make_config("convnext", vit_dir))
    with pytest.raises(ConfigError, match="holds a dinov3_vit model"):
        build_model(make_config("convnext", "facebook/dinov3-vitb16-pretrain-lvd1689m", pretrained=False))


def test_unknown_override_and_bad_out_indices_are_config_errors(vit_dir: Path) -> None:
    with pytest.raises(ConfigError, match="config_overrides.hidden_sise"):
        build_model(
            make_config("dinov3_vit", vit_dir, pretrained=False, backbone={"config_overrides": {"hidden_sise": 8}})
        )
    with pytest.raises(ConfigError, match=r"out_indices: 3 is not a layer.*1\.\.2"):
        build_model(make_config("dinov3_vit", vit_dir, backbone={"out_indices": [3]}))


def test_overrides_that_break_pretrained_weights_are_config_errors(convnext_dir: Path) -> None:
    config = make_config("convnext", convnext_dir, backbone={"config_overrides": {"hidden_sizes": [16, 16, 24, 32]}})
    with pytest.raises(ConfigError, match="do not fit the overridden architecture"):
        build_model(config)


def test_use_p2_adds_the_stride_4_level(convnext_dir: Path) -> None:
    plain = build_model(make_config("convnext", convnext_dir)).backbone
    p2 = build_model(make_config("convnext", convnext_dir, fpn={"lateral_dim": 8, "use_p2": True})).backbone
    assert plain.strides == [8, 16, 32] and plain.channels == [16, 24, 32]
    assert p2.strides == [4, 8, 16, 32] and p2.channels == [8, 16, 24, 32]


def test_unreadable_preprocessor_config_is_an_input_error(tmp_path: Path, vit0_dir: Path) -> None:
    folder = tmp_path / "vit"
    folder.mkdir()
    for f in vit0_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5]}))
    with pytest.raises(InputError, match="image_mean"):
        build_model(make_config("dinov3_vit", folder))
