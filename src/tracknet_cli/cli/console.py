"""Where output goes: results on stdout, progress and logs on stderr.

rich already turns colour off for NO_COLOR and for streams that are not terminals; `--quiet`
silences the stderr console (errors are printed by the entry point regardless).
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

from tracknet_cli.errors import DEBUG_ENV, debug_enabled  # noqa: F401 - the CLI asks console.debug_enabled()

# markup=False: paths, clip names and messages are user text, never rich markup (a folder named
# `mk[/b]` must print as itself); styling is added with Text objects. soft_wrap=True: a log line
# stays one line however long (rich would wrap it at 80 columns when stderr is not a terminal).
out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

_state = {"quiet": False}


def configure(*, debug: bool, quiet: bool) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"  # the core's and child processes' view of --debug
    _state["quiet"] = quiet
    err.quiet = quiet


def quiet() -> bool:
    return _state["quiet"]


ERROR_LINE_MAX = 2000  # characters: a message quoting huge user input is cut, not printed whole


def one_line(message: object) -> str:
    """Newlines folded, at most ERROR_LINE_MAX characters: a log line stays one line."""
    text = " ".join(str(message).splitlines())
    if len(text) > ERROR_LINE_MAX:
        text = f"{text[:ERROR_LINE_MAX]}... ({len(text) - ERROR_LINE_MAX:,} more characters cut)"
    return text


def error_line(message: str) -> None:
    """The one line a failure gets, plain text so pipes and logs read it as-is (newlines folded,
    at most ERROR_LINE_MAX characters)."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    from rich.text import Text

    err.print(Text.assemble(("warning:", "yellow"), " ", one_line(message)))


def info(message: str) -> None:
    err.print(message, markup=False)
