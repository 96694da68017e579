"""`tracknet label`: label a video or frame folder in the browser, with the model's proposals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tracknet_cli.choices import DEVICES, RUNTIMES, listed
from tracknet_cli.cli import console
from tracknet_cli.cli.options import RuntimeOpt, choice
from tracknet_cli.errors import UsageError

EPILOG = (
    "Examples:\n\n"
    "  tracknet label rally.mp4                     # labels go to rally.csv (Frame,Visibility,X,Y)\n\n"
    "  tracknet label game1/Clip1 --open            # a frame folder: Label.csv (tennis dialect)\n\n"
    "  tracknet label rally.mp4 --labels l.csv -c badminton --port 8800\n\n"
    "Then: tracknet train --init-from tennis --set data.root=FOLDER (see docs/scripts/label.md).\n\n"
    "Ctrl-C saves and stops the server (exit 0)."
)
EXTRA_HINT = "tracknet label needs the label extra: pip install 'tracknet-cli[label]'"


def _require_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise UsageError(EXTRA_HINT)


def label_command(
    input: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            show_default=False,
            help="A video, or a folder of frame images (labels already there are loaded).",
        ),
    ],
    labels: Annotated[
        Optional[Path],
        typer.Option(
            "--labels",
            "-l",
            show_default=False,
            help="Label file to write. \\[default: beside INPUT: NAME.csv for a video, Label.csv in a frame folder]",
        ),
    ] = None,
    checkpoint: Annotated[
        Optional[str],
        typer.Option(
            "--checkpoint",
            "-c",
            metavar="NAME|FILE|RUN",
            show_default=False,
            help="The model proposing labels. \\[default: the default ready model]",
        ),
    ] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="No proposals: label by hand only.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (other than 127.0.0.1: reachable from other machines).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace a label file tracknet label did not write (default: write beside it)."
        ),
    ] = False,
    device: Annotated[str, typer.Option("--device", help=f"{listed(DEVICES)} (for the proposals)")] = "auto",
    runtime: RuntimeOpt = "auto",
) -> None:
    """Label ball positions in the browser: a local page with the model's proposals, saved as you go."""
    _require_extra()
    choice(device, DEVICES, "--device")
    choice(runtime, RUNTIMES, "--runtime")
    if runtime in ("onnxruntime", "openvino") and not no_model:  # the model loads later, in the background
        from tracknet_cli.inference.onnx import require

        require(runtime, f"--runtime {runtime}")
    if no_model and checkpoint is not None:
        raise typer.BadParameter("--no-model turns the model off; leave out one of them", param_hint="--checkpoint")
    from tracknet_cli.label.service import Hooks, LabelOptions, serve

    def show_url(url: str) -> None:
        console.out.print(url, markup=False, highlight=False, soft_wrap=True)
        console.out.file.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    options = LabelOptions(input, labels, checkpoint, not no_model, host, port, overwrite, device, runtime)
    session = serve(options, Hooks(warn=console.warn, info=console.info, url=show_url))
    counts = session.counts()
    console.out.print(
        f"{session.files.target}: {counts['confirmed']} of {session.frames} frames labelled "
        f"({len(session.confirmed)} confirmed in this session)",
        markup=False,
        highlight=False,
    )
