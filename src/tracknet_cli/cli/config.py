"""`tracknet config show`: the resolved configuration and where each non-default value came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tracknet_cli.cli import console
from tracknet_cli.cli.options import DataOpt, ModelOpt, ProfileOpt, SetOpt, TrainingOpt, resolve_selection
from tracknet_cli.config.load import dump_yaml

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("show", epilog="Example: tracknet config show --profile quickstart --set training.lr=0.0005")
def show(
    profile: ProfileOpt = None,
    data: DataOpt = None,
    model: ModelOpt = None,
    training: TrainingOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the resolved config (YAML or JSON) and the source of every non-default value."""
    resolved = resolve_selection(profile, data, model, training, set_)
    if as_json:
        payload = {
            "profile": resolved.profile_name,
            "config": resolved.config.model_dump(mode="json"),
            "provenance": resolved.provenance,
        }
        console.out.print_json(json.dumps(payload)) if console.out.is_terminal else print(json.dumps(payload, indent=2))
        return
    print(f"# profile: {resolved.profile_name}")
    print(dump_yaml(resolved.config), end="")
    if resolved.provenance:
        print("# values that differ from the defaults, and where they came from:")
        width = max(len(k) for k in resolved.provenance)
        for key, source in sorted(resolved.provenance.items()):
            print(f"#   {key.ljust(width)}  {source}")
