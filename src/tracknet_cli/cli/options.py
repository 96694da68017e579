"""Options more than one command takes, declared once: the profile selection (train, config), the
model to run (--checkpoint, --device, --runtime); and `flag`, how the CLI names a core parameter."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from tracknet_cli.choices import DEVICES, RUNTIMES, listed
from tracknet_cli.config.load import ResolvedConfig, resolve, selection_from

RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        help=f"{listed(RUNTIMES)}: what runs the model's forward (auto: "
        "openvino on a CPU, torch on a GPU; a .onnx checkpoint runs in openvino or "
        "onnxruntime)",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help=listed(DEVICES))]
# What --checkpoint accepts; each command says its default (predict), or that it reads no ONNX file (export).
CHECKPOINT_HELP = (
    "A ready model's name (tracknet models), weights (.safetensors, or .onnx from tracknet export), "
    "a run directory (its best weights), a runs folder such as runs/quickstart (the newest run) "
    "or a Hugging Face repo id org/name."
)


def checkpoint_option(help: str) -> Any:
    """--checkpoint/-c NAME|FILE|RUN with the command's own help (what it accepts and its default)."""
    return typer.Option("--checkpoint", "-c", metavar="NAME|FILE|RUN", show_default=False, help=help)


ProfileOpt = Annotated[
    Optional[str],
    typer.Option(
        "--profile", "-p", help="Profile name (see profiles/) or path to a .yaml file. \\[default: quickstart]"
    ),
]
DataOpt = Annotated[Optional[str], typer.Option("--data", help="Data piece replacing the profile's (name or .yaml).")]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", help="Model piece replacing the profile's (name or .yaml).")
]
TrainingOpt = Annotated[
    Optional[str], typer.Option("--training", help="Training piece replacing the profile's (name or .yaml).")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a key: dotted.key=VALUE (VALUE parsed as YAML). Repeatable."),
]


# The flag of each core parameter a message names (`tracknet_cli.errors`): `--` and the name with `_` as
# `-` (labels: --labels, init_from: --init-from), except these, where the core's name is not the flag's.
FLAGS = {
    "batch_size": "--batch",  # inference.engine.Engine
    "video_path": "--out",  # predict.outputs.write_outputs
    "csv_path": "--csv",  # predict.outputs.write_outputs
    "out_dir": "--save-csv",  # data.predictions.prediction_csv_targets
    "pred_dir": "--pred-csv",  # data.predictions.read_prediction_csvs
}


def flag(parameter: str) -> str:
    """The flag that sets the core's `parameter`: what an error line names (`TrackNetError.line(flag)`)."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def resolve_selection(profile, data, model, training, sets) -> ResolvedConfig:
    return resolve(selection_from(profile, data, model, training, sets))


def choice(value: str, names: tuple[str, ...], param: str) -> str:
    """A command-line choice checked against its one list (`tracknet_cli.choices`), with the closest name."""
    from tracknet_cli.choices import not_one_of

    if value not in names:
        raise typer.BadParameter(not_one_of("", value, names).lstrip(), param_hint=param)
    return value
