"""`tracknet export`: a checkpoint as an ONNX model, for `predict -c model.onnx` or any ONNX runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracknet_cli.choices import EXPORT_FORMATS, listed
from tracknet_cli.cli import console
from tracknet_cli.cli.options import checkpoint_option, choice

EPILOG = (
    "Examples:\n\n"
    "  tracknet export -c badminton -o badminton.onnx\n\n"
    "  tracknet export -c runs/quickstart/exp1 --format onnx -o quickstart.onnx --overwrite\n\n"
    "  tracknet predict match.mp4 -c badminton.onnx --no-video    # runs in openvino\n\n"
    "The graph takes uint8 RGB frames (B, T, H, W, 3) at the model canvas and returns the heatmap logits "
    "(and the no-ball logits); the checkpoint's metadata (config, threshold, ...) travel in the file."
)


def export_command(
    checkpoint: Annotated[
        str,
        checkpoint_option(
            "A ready model's name (tracknet models), weights (.safetensors), a run directory (its best weights), "
            "a runs folder (the newest run) or a Hugging Face repo id org/name."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", show_default=False, help="The file to write (NAME.onnx).")],
    fmt: Annotated[str, typer.Option("--format", help=listed(EXPORT_FORMATS))] = "onnx",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output file (never the checkpoint).")
    ] = False,
) -> None:
    """Export a checkpoint as an ONNX model: uint8 frames in, heatmap logits out, its metadata inside."""
    choice(fmt, EXPORT_FORMATS, "--format")
    from tracknet_cli.inference.onnx import export_checkpoint
    from tracknet_cli.pretrained.resolve import resolve_checkpoint

    resolved = resolve_checkpoint(checkpoint)
    done = export_checkpoint(resolved.path, out, fmt=fmt, overwrite=overwrite)
    shape = ", ".join(str(d) for d in done.input_shape)
    console.out.print(
        f"{resolved.label} → {done.path} ({fmt}, {done.bytes / 1e6:.1f} MB): frames uint8 ({shape}) → "
        f"{', '.join(done.outputs)}",
        markup=False,
        highlight=False,
    )
