"""`tracknet label`: label a video or frame folder in the browser, with the model's proposals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from tracknet_cli.choices import DEVICES, RUNTIMES, listed
from tracknet_cli.cli import console
from tracknet_cli.cli.options import RuntimeOpt, checkpoint_option, choice, flag
from tracknet_cli.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.label.session import LabelSession

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


InputArg = Annotated[
    Path,
    typer.Argument(
        metavar="INPUT",
        show_default=False,
        help="A video, or a folder of frame images (labels already there are loaded).",
    ),
]
LabelsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--labels",
        "-l",
        show_default=False,
        help="Label file to write. \\[default: beside INPUT: NAME.csv for a video, Label.csv in a frame folder]",
    ),
]
CheckpointOpt = Annotated[
    Optional[str], checkpoint_option("The model proposing labels. \\[default: the default ready model]")
]
NoModelOpt = Annotated[bool, typer.Option("--no-model", help="No proposals: label by hand only.")]
HostOpt = Annotated[
    str, typer.Option("--host", help="Address to listen on (other than 127.0.0.1: reachable from other machines).")
]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace a label file tracknet label did not write (default: write beside it)."),
]
ProposalDeviceOpt = Annotated[str, typer.Option("--device", help=f"{listed(DEVICES)} (for the proposals)")]


def label_command(
    input: InputArg,
    labels: LabelsOpt = None,
    checkpoint: CheckpointOpt = None,
    no_model: NoModelOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 0,
    open_browser: OpenOpt = False,
    overwrite: OverwriteOpt = False,
    device: ProposalDeviceOpt = "auto",
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

    options = LabelOptions(input, labels, checkpoint, not no_model, host, port, overwrite, device, runtime)
    session = serve(options, Hooks(console.warn, console.info, _url_shower(open_browser), names=flag))
    _show_result(session)


def _url_shower(open_browser: bool) -> Callable[[str], None]:
    """The page's address on stdout as soon as the server listens (and in the browser with --open)."""

    def show_url(url: str) -> None:
        console.out.print(url, markup=False, highlight=False, soft_wrap=True)
        console.out.file.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    return show_url


def _show_result(session: "LabelSession") -> None:
    counts = session.counts()
    console.out.print(
        f"{session.files.target}: {counts['confirmed']} of {session.frames} frames labelled "
        f"({len(session.confirmed)} confirmed in this session)",
        markup=False,
        highlight=False,
    )
