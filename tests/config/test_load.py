"""Profile composition, precedence (defaults < pieces < profile < env < --set) and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracknet_cli.config.load import Selection, all_keys, available, parse_set, resolve
from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import ConfigError


def test_shipped_profiles_are_listed() -> None:
    assert {"quickstart", "vit_heatmap", "convnext_fpn"} <= set(available())
    assert "tracknet" in available("data")
    assert {"vit_heatmap", "convnext_fpn_heatmap", "unet_heatmap"} <= set(available("model"))
    assert "default" in available("training")


@pytest.mark.parametrize("name", ["quickstart", "vit_heatmap", "convnext_fpn"])
def test_every_shipped_profile_validates(name: str) -> None:
    resolved = resolve(Selection(profile=name), environ={})
    assert resolved.profile_name == name
    assert isinstance(resolved.config, TrackNetConfig)


def test_vit_profile_names_the_dinov3_checkpoint() -> None:
    cfg = resolve(Selection(profile="vit_heatmap"), environ={}).config
    assert cfg.model.backbone.pretrained_model_name == "facebook/dinov3-vitb16-pretrain-lvd1689m"
    assert cfg.model.backbone.type == "dinov3_vit"


def test_quickstart_is_cpu_sized_and_offline() -> None:
    cfg = resolve(Selection(profile="quickstart"), environ={}).config
    assert cfg.model.backbone.pretrained is False
    assert cfg.data.root == Path("data/tracknet")


def test_piece_on_command_line_replaces_profile_piece() -> None:
    resolved = resolve(Selection(profile="vit_heatmap", model="convnext_fpn_heatmap"), environ={})
    assert resolved.config.model.decoder == "fpn"
    assert resolved.provenance["model.decoder"] == "profiles/model/convnext_fpn_heatmap.yaml"


def test_precedence_file_then_env_then_set() -> None:
    # profile sets training.lr = 0.002
    assert resolve(Selection(profile="quickstart"), environ={}).config.training.lr == 0.002
    env = {"TRACKNET_TRAINING__LR": "0.5"}
    resolved = resolve(Selection(profile="quickstart"), environ=env)
    assert resolved.config.training.lr == 0.5
    assert resolved.provenance["training.lr"] == "env TRACKNET_TRAINING__LR"
    resolved = resolve(Selection(profile="quickstart", sets=("training.lr=0.25",)), environ=env)
    assert resolved.config.training.lr == 0.25
    assert resolved.provenance["training.lr"] == "--set"


def test_set_values_are_yaml() -> None:
    resolved = resolve(
        Selection(sets=("data.split.test=[game8, game9, game10]", "data.subset.max_clips=3")), environ={}
    )
    assert resolved.config.data.split.test == ["game8", "game9", "game10"]
    assert resolved.config.data.subset.max_clips == 3


def test_env_values_are_yaml_and_nested() -> None:
    resolved = resolve(Selection(), environ={"TRACKNET_DATA__SPLIT__VAL": "[game1]", "TRACKNET_DEBUG": "1"})
    assert resolved.config.data.split.val == ["game1"]


def test_default_values_carry_no_provenance() -> None:
    resolved = resolve(Selection(profile="quickstart", sets=("training.seed=0",)), environ={})
    assert "training.seed" not in resolved.provenance  # same as the default


def test_profile_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("data: tracknet\nmodel: vit_heatmap\noverrides:\n  training:\n    batch_size: 3\n")
    resolved = resolve(Selection(profile=str(path)), environ={})
    assert resolved.profile_name == "mine"
    assert resolved.config.training.batch_size == 3


@pytest.mark.parametrize(
    ("selection", "fragment"),
    [
        (
            Selection(profile="nosuch"),
            "available: convnext_fpn, cpu_small, finetune, padel, pretrained_fast, pretrained_unet, "
            "quickstart, vit_heatmap",
        ),
        (Selection(profile="quickstrt"), "did you mean 'quickstart'"),
        (Selection(model="vit_heatmp"), "did you mean 'vit_heatmap'"),
        (Selection(sets=("training.lr=abc",)), "training.lr"),
        (Selection(sets=("training.lrr=1",)), "did you mean 'training.lr'"),
        (Selection(sets=("training.batch_size=0",)), "training.batch_size"),
        (Selection(sets=("model.temporal_fusion=middle",)), "model.temporal_fusion"),
        (Selection(sets=("training.lr",)), "--set expects dotted.key=VALUE"),
        (Selection(sets=("training.lr=[1,",)), "training.lr: cannot parse"),
        (Selection(sets=("data.split.val_ratio=0.6", "data.split.test_ratio=0.5")), "data.split"),
        (Selection(sets=("data.split.val=[00001]",)), "data.split.val: Value error, 1 was read as a number"),
    ],
)
def test_errors_name_the_key(selection: Selection, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(selection, environ={})
    assert fragment in info.value.line()
    assert "\n" not in info.value.line()


def test_numeric_clip_names_in_a_profile_say_to_quote_them(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("overrides:\n  data:\n    split:\n      test: [00031, 00032]\n")
    with pytest.raises(ConfigError) as info:
        resolve(Selection(profile=str(path)), environ={})
    assert "quote each name, e.g. ['00001']" in info.value.line()
    path.write_text("overrides:\n  data:\n    split:\n      test: ['00031', '00032']\n")
    assert resolve(Selection(profile=str(path)), environ={}).config.data.split.test == ["00031", "00032"]


def test_env_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="env TRACKNET_TRAINING__EPOCHS"):
        resolve(Selection(), environ={"TRACKNET_TRAINING__EPOCHS": "many"})


def test_bad_profile_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(Selection(profile=str(bad)), environ={})
    odd = tmp_path / "odd.yaml"
    odd.write_text("datta: tracknet\n")
    with pytest.raises(ConfigError, match="unknown top-level key 'datta'"):
        resolve(Selection(profile=str(odd)), environ={})


def test_parse_set() -> None:
    assert parse_set("a.b=1") == ("a.b", 1)
    assert parse_set("a.b=") == ("a.b", "")
    assert parse_set("a=x=y") == ("a", "x=y")


def test_all_keys_cover_the_keys_other_issues_rely_on() -> None:
    keys = set(all_keys())
    for key in [
        "data.root",
        "data.split.train",
        "data.split.val",
        "data.split.test",
        "training.seed",
        "training.lr",
        "training.batch_size",
        "training.epochs",
        "training.max_steps",
        "training.time_limit",
        "model.backbone.pretrained_model_name",
        "model.backbone.pretrained",
        "model.temporal_fusion",
    ]:
        assert key in keys


def test_yaml_12_booleans() -> None:
    resolved = resolve(Selection(sets=("data.cache=off", "model.backbone.pretrained=false")), environ={})
    assert resolved.config.data.cache == "off"
    assert resolved.config.model.backbone.pretrained is False
