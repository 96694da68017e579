"""Where output goes: results on stdout, progress and logs on stderr.

rich already turns colour off for NO_COLOR and for streams that are not terminals; `--quiet`
silences the stderr console (errors are printed by the entry point regardless).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable

from rich.console import Console
from rich.segment import Segment

from tracknet_cli.errors import DEBUG_ENV, RuntimeFailure, debug_enabled  # noqa: F401 - the CLI asks console.debug_enabled()

# C0 controls but tab and newline, DEL and C1: a file named `\x1b]0;x` or `\x1b[2J` must not retitle or
# clear the user's terminal when an error, a warning, a summary or a table names it.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (`\x1b`), as Python's repr writes them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _EscapingConsole(Console):
    """Every text segment goes out through `printable` (user text reaches the screen in tables, summaries and
    warnings, never only in error lines); rich's own styling and cursor moves are not text segments."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(seg if seg.control else Segment(printable(seg.text), seg.style) for seg in buffer)


# markup=False: paths, clip names and messages are user text, never rich markup (a folder named
# `mk[/b]` must print as itself); styling is added with Text objects. soft_wrap=True: a log line
# stays one line however long (rich would wrap it at 80 columns when stderr is not a terminal).
out = _EscapingConsole(soft_wrap=True, highlight=False, markup=False)
err = _EscapingConsole(stderr=True, highlight=False, markup=False, soft_wrap=True)


def wide_console(width: int) -> Console:
    """A stdout console of a fixed width (whole tables on pipes and logs), escaping as `out` does."""
    return _EscapingConsole(width=width, highlight=False, markup=False)


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
    """Newlines folded, control characters escaped, at most ERROR_LINE_MAX characters: a log line stays one
    line, and a name in it cannot drive the terminal."""
    text = printable(" ".join(str(message).splitlines()))
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


class StdoutFailed(RuntimeFailure):
    """stdout could not be written (it is /dev/full, or a redirect onto a full disk): what the command
    printed is lost, the files it wrote are not (exit 1)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(
            f"cannot write to stdout ({exc.strerror or exc}): what tracknet printed there is lost; "
            "the files it wrote are kept (none was removed)"
        )


class _GuardedStdout:
    """`sys.stdout` while a command runs (`guard_stdout`): a write or flush that fails raises `StdoutFailed`,
    so the last line says so, not the full-disk line of a file ("unfinished files were removed", which
    stdout never deletes). A closed pipe (BrokenPipeError) passes as it is: `tracknet ... | head` ends quietly."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)  # type: ignore[attr-defined]
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutFailed(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()  # type: ignore[attr-defined]
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutFailed(exc) from exc

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def guard_stdout() -> object:
    """Put `_GuardedStdout` in front of sys.stdout; returns what to restore."""
    previous = sys.stdout
    if previous is not None and not isinstance(previous, _GuardedStdout):
        sys.stdout = _GuardedStdout(previous)  # type: ignore[assignment]
    return previous


def drop_stdout() -> None:
    """After `StdoutFailed`: what is still buffered goes to /dev/null, so the interpreter's last flush
    cannot fail again ("Exception ignored ... OSError", exit 120) after the one line was printed."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
