"""`tracknet models`: the ready models `--checkpoint NAME` loads (bundled, and $TRACKNET_MODELS_DIR folders)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tracknet_cli.cli import console
from tracknet_cli.cli.options import flag
from tracknet_cli.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.pretrained.catalogue import CatalogueEntry

EPILOG = (
    "Examples:\n\n"
    "  tracknet models\n\n"
    "  tracknet models --json\n\n"
    "  tracknet predict match.mp4 --checkpoint tennis --out overlay.mp4\n\n"
    "  TRACKNET_MODELS_DIR=/team/models tracknet models     # add a shared models folder"
)


def models_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: the default name and every model with its metadata.")
    ] = False,
) -> None:
    """Ready models: name, sport, input size, parameters, held-out F1 and its protocol, data source."""
    from tracknet_cli.pretrained.catalogue import load_catalogue
    from tracknet_cli.pretrained.resolve import require_file

    catalogue = load_catalogue()
    rows = []
    for entry in catalogue.entries.values():
        require_file(entry)  # a catalogue naming a missing file is the catalogue's error: fix it
        try:
            rows.append(model_row(entry, entry.name == catalogue.default))
        except InputError as exc:  # one bad file in a shared folder must not hide the other models
            console.warn(f"model {entry.name} left out: {exc.line(flag)}")
    if as_json:
        print(json.dumps({"default": catalogue.default, "models": rows}))
        return
    if not rows:
        console.info(
            "no models are bundled with this install yet; set TRACKNET_MODELS_DIR to a models folder "
            "(docs/models/pretrained.md), or pass --checkpoint FILE|RUN"
        )
        return
    _table(rows)


def model_row(entry: "CatalogueEntry", is_default: bool) -> dict[str, Any]:
    """One model as `--json` prints it (header of its file read, weights not loaded)."""
    from tracknet_cli.pretrained.catalogue import weights_info
    from tracknet_cli.pretrained.resolve import require_file

    require_file(entry)
    info = weights_info(entry.path)
    spec = entry.spec
    return {
        "name": entry.name,
        "default": is_default,
        "sport": spec.sport,
        "description": spec.description,
        "input_width": info.input_width,
        "input_height": info.input_height,
        "frames": info.frames,
        "backbone": info.backbone,
        "parameters": info.parameters,
        "threshold": info.threshold,
        "held_out": spec.held_out.model_dump() if spec.held_out else None,
        "data": [source.model_dump() for source in spec.data],
        "training": spec.training.model_dump() if spec.training else None,
        "card": spec.card,
        "file": entry.path.name,
        "path": str(entry.path),
        "size_mb": round(info.size_bytes / 2**20, 2),
        "origin": entry.origin,
    }


def _params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 100_000 else f"{n / 1e3:.1f} k"


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from tracknet_cli.pretrained.catalogue import BUNDLED, DataSource

    table = Table(
        caption="* the default (predict without --checkpoint); pick one with --checkpoint NAME; "
        "input: width x height x frames; --json for data commits"
    )
    for title, justify, wrap in (
        ("name", "left", False),
        ("sport", "left", False),
        ("input", "right", False),
        ("params", "right", False),
        ("F1", "right", False),
        ("held out (protocol)", "left", True),
        ("data", "left", True),
    ):
        table.add_column(title, justify=justify, no_wrap=not wrap, overflow="fold")  # type: ignore[arg-type]
    foreign = any(row["origin"] != BUNDLED for row in rows)
    if foreign:
        table.add_column("from", overflow="fold")
    for row in rows:
        held = row["held_out"]
        cells = [
            row["name"] + (" *" if row["default"] else ""),
            row["sport"],
            f"{row['input_width']}x{row['input_height']}x{row['frames']}",
            _params(row["parameters"]),
            f"{held['f1']:.3f}" if held else "-",
            f"{held['split']} ({held['protocol']})" if held else "-",
            "\n".join(DataSource(**source).repository for source in row["data"]) or "-",  # --json: commits, paths
        ]
        if foreign:
            cells.append(row["origin"])
        table.add_row(*cells)
    console.out.print(table)
