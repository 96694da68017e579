"""The `tracknet` command: a thin Typer layer over the core.

Heavy libraries (torch, transformers, av) are imported inside commands so `tracknet --help`
stays fast. Every failure ends here: one line on stderr and a documented exit code.
"""

from __future__ import annotations

import errno
import functools
import signal
import sys
from typing import Annotated, Any, Callable, Optional

import typer

from tracknet_cli import stopping
from tracknet_cli.cli import config as config_cmd
from tracknet_cli.cli import console
from tracknet_cli.cli import data as data_cmd
from tracknet_cli.cli import eval as eval_cmd
from tracknet_cli.cli import export as export_cmd
from tracknet_cli.cli import label as label_cmd
from tracknet_cli.cli import models as models_cmd
from tracknet_cli.cli import predict as predict_cmd
from tracknet_cli.cli import train as train_cmd
from tracknet_cli.cli.options import flag
from tracknet_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Interrupted, Reported, TrackNetError

app = typer.Typer(
    name="tracknet",
    help=(
        "Ball tracking for sports video: inspect and import datasets, train heatmap models, "
        "evaluate them under the published protocols, predict ball positions.\n\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 usage/config/input error, 130 interrupted."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
# In the order of the workflow: data, train, eval, then the ready models, predict and export; then config.
app.add_typer(data_cmd.app, name="data")
app.command("train", epilog=train_cmd.EPILOG)(train_cmd.train)
app.command("eval", epilog=eval_cmd.EPILOG)(eval_cmd.evaluate_command)
app.command("models", epilog=models_cmd.EPILOG)(models_cmd.models_command)
app.command("predict", epilog=predict_cmd.EPILOG)(predict_cmd.predict)
app.command("export", epilog=export_cmd.EPILOG)(export_cmd.export_command)
app.command("label", epilog=label_cmd.EPILOG)(label_cmd.label_command)
app.add_typer(config_cmd.app, name="config")


def _interruptible(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C in a command without its own handler: one line saying what stopped and what is kept
    (click would otherwise print a bare newline and abort)."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted: tracknet {name} stopped before it finished; files it had completed "
                "are kept and none is left half-written (outputs are written atomically)"
            ) from None

    return command


for _prefix, _typer in (("", app), ("data ", data_cmd.app), ("config ", config_cmd.app)):
    for _info in _typer.registered_commands:
        _info.callback = _interruptible(_prefix + (_info.name or _info.callback.__name__), _info.callback)


def _version(value: bool) -> None:
    if value:
        from tracknet_cli import __version__

        print(f"tracknet {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and library logs (or TRACKNET_DEBUG=1).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors; no progress or logs.")] = False,
) -> None:
    console.configure(debug=debug or console.debug_enabled(), quiet=quiet)


def main(argv: list[str] | None = None) -> None:
    """Run the app and map every failure to one line and an exit code (the console script and
    `python -m tracknet_cli` start at ``tracknet_cli.__main__``, which installs the signal policy
    before this module is imported)."""
    stopping.sigterm_as_ctrl_c()
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        # `--debug` is honoured anywhere on the line, not only before the subcommand.
        if "--debug" in args[1:]:
            args = ["--debug"] + [a for a in args if a != "--debug"]
        if "--debug" in args:
            console.configure(debug=True, quiet=False)
        code = run(args)
    except KeyboardInterrupt:  # before the command began, or as it returned
        stopping.ignore()
        console.error_line("interrupted")
        code = EXIT_INTERRUPTED
    stopping.ignore()  # the outcome is decided: a late signal must not change it during the exit
    sys.exit(code)


def _is_a(exc: BaseException, name: str) -> bool:
    """Typer vendors its own click; match its exception classes by name, whichever copy raised."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _ignore_further_interrupts() -> None:
    """After a Ctrl-C the process only reports and exits 130: another one must not raise during the
    exit itself (atexit handlers, library finalizers)."""
    stopping.ignore((signal.SIGINT,))


def run(args: list[str]) -> int:
    previous = console.guard_stdout()
    try:
        return _run(args)
    finally:
        sys.stdout = previous


def _run(args: list[str]) -> int:
    try:
        rv = app(args=args, prog_name="tracknet", standalone_mode=False)
        sys.stdout.flush()  # what is still buffered fails here, reported like the rest (not at the exit)
        if rv == EXIT_INTERRUPTED:  # typer's own: a Ctrl-C while it parsed the line, before the command ran
            _ignore_further_interrupts()
            console.error_line(stopping.INTERRUPTED_BEFORE_START)
        return rv if isinstance(rv, int) else 0
    except TrackNetError as exc:
        if isinstance(exc, Reported):
            return exc.exit_code
        if isinstance(exc, console.StdoutFailed):
            console.drop_stdout()
        if isinstance(exc, Interrupted):
            _ignore_further_interrupts()
        if console.debug_enabled():
            raise
        console.error_line(exc.line(flag))  # the core names parameters; the user typed flags
        return exc.exit_code
    except KeyboardInterrupt:  # every command handles its own: this one came while typer set the app up
        _ignore_further_interrupts()
        console.error_line(stopping.INTERRUPTED_BEFORE_START)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if _is_a(exc, "Exit"):
            return int(getattr(exc, "exit_code", 0))
        if _is_a(exc, "Abort"):
            _ignore_further_interrupts()
            console.error_line("interrupted")
            return EXIT_INTERRUPTED
        if console.debug_enabled():
            raise
        if _is_a(exc, "UsageError"):
            if not exc.format_message().strip():  # bare group: its help was already shown
                return EXIT_USAGE
            ctx = getattr(exc, "ctx", None)
            cmd = ctx.command_path if ctx is not None else "tracknet"
            console.error_line(f"{exc.format_message()} (see '{cmd} --help')")
            return EXIT_USAGE
        if _is_a(exc, "ClickException"):
            console.error_line(exc.format_message())
            return int(getattr(exc, "exit_code", EXIT_FAILURE))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            where = f" while writing {exc.filename}" if exc.filename else ""
            console.error_line(
                f"{exc.strerror or exc}{where}; free some space or write elsewhere (unfinished files were removed)"
            )
            return EXIT_FAILURE
        console.error_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_FAILURE
