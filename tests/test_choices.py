"""One list per kind of choice (tracknet_cli.choices): the config schema, the owners' registries,
the CLI's help and checks, and every "did you mean" come from it."""

from __future__ import annotations

from typing import Literal, get_args

import pytest

from tests.cli.helpers import invoke
from tracknet_cli import choices
from tracknet_cli.config.load import Selection, resolve
from tracknet_cli.config.schema import BackboneConfig, ModelConfig, TrainingConfig
from tracknet_cli.errors import ConfigError


def test_the_schema_fields_are_the_choices() -> None:
    assert TrainingConfig.model_fields["protocol"].annotation is choices.ProtocolName
    assert TrainingConfig.model_fields["loss"].annotation is choices.LossName
    assert TrainingConfig.model_fields["precision"].annotation is choices.PrecisionSetting
    assert TrainingConfig.model_fields["device"].annotation is choices.DeviceName
    assert BackboneConfig.model_fields["type"].annotation is choices.BackboneName
    assert ModelConfig.model_fields["decoder"].annotation is choices.DecoderName
    assert set(choices.INFERENCE_PRECISIONS) < set(choices.PRECISIONS)


def test_every_registry_is_keyed_by_its_choices() -> None:
    from tracknet_cli.inference.runtime import INFERENCE_PRECISIONS, PRECISIONS
    from tracknet_cli.models.losses import LOSSES
    from tracknet_cli.models.registry import BACKBONES, DECODERS
    from tracknet_cli.training.metrics import PROTOCOLS

    assert tuple(PROTOCOLS) == choices.PROTOCOL_NAMES == ("tracknet", "v2", "wasb")
    assert tuple(LOSSES) == choices.LOSS_NAMES
    assert tuple(BACKBONES) == choices.BACKBONE_NAMES and tuple(DECODERS) == choices.DECODER_NAMES
    assert (PRECISIONS, INFERENCE_PRECISIONS) == (choices.PRECISIONS, choices.INFERENCE_PRECISIONS)


def test_a_registry_that_drifts_from_its_choices_is_refused() -> None:
    with pytest.raises(RuntimeError, match="differ from the choices"):
        choices.registry({"a": 1, "c": 2}, Literal["a", "b"])
    assert list(choices.registry({"b": 1, "a": 2}, Literal["a", "b"])) == ["a", "b"]  # the Literal's order


@pytest.mark.parametrize(
    "key, value, expected",
    [
        (
            "training.loss",
            "sofmax",
            "training.loss 'sofmax' is not one of mse, focal, wbce, softmax; did you mean 'softmax'?",
        ),
        (
            "training.protocol",
            "wsab",
            "training.protocol 'wsab' is not one of tracknet, v2, wasb; did you mean 'wasb'?",
        ),
        ("model.backbone.type", "convnxt", "did you mean 'convnext'?"),
        ("model.decoder", "fnp", "did you mean 'fpn'?"),
        ("training.precision", "bf61", "did you mean 'bf16'?"),
    ],
)
def test_config_choices_suggest_the_closest_name(key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve(Selection(sets=(f"{key}={value}",)))
    assert expected in err.value.line() and "(from --set)" in err.value.line()


def test_owners_validate_with_the_same_message() -> None:
    from tracknet_cli.inference.runtime import pick_device, resolve_precision
    from tracknet_cli.models.losses import build_loss
    from tracknet_cli.training.metrics import get_protocol

    for call, needle in (
        (
            lambda: get_protocol("tracknett"),
            "protocol 'tracknett' is not one of tracknet, v2, wasb; did you mean 'tracknet'?",
        ),
        (lambda: build_loss("wbc"), "did you mean 'wbce'?"),
        (lambda: resolve_precision("fp8", "cpu"), "precision 'fp8' is not one of auto, fp32, bf16, fp16"),
        (lambda: pick_device("tpu"), "device 'tpu' is not one of auto, cpu, cuda, mps"),
    ):
        with pytest.raises(ConfigError) as err:
            call()
        assert needle in err.value.line()


def test_the_cli_lists_and_checks_the_same_names() -> None:
    help_text = invoke("eval", "--help").stdout
    assert choices.listed(choices.PROTOCOL_NAMES) in help_text
    result = invoke("eval", "--pred-csv", "x", "--gt", "y", "--protocol", "wsab")
    assert result.exit_code == 2 and "'wsab' is not one of tracknet, v2, wasb; did you mean 'wasb'?" in result.stderr
    result = invoke("predict", "x.mp4", "--precision", "bf61")
    assert result.exit_code == 2 and "did you mean 'bf16'?" in result.stderr
    assert get_args(choices.CsvFormat) == choices.CSV_FORMATS
