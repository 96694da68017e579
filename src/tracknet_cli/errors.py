"""Project exceptions. The core raises these; the CLI maps each to one line and its exit code.

Parameters in messages. The core is called by the CLI, which takes flags (`--labels`), and by Python
code, which takes keyword arguments (`labels=`), so a message written in the core never names a flag.
It writes the core's name of the parameter in braces, and says which names it wrote: `parameter`, the
one the error is about, and `also`, any other; `value` keeps the value given, where that helps:

    raise UsageError(f"{{labels}} {path} is a folder; name a .csv file", parameter="labels", value=path)

`render(names)` and `line(names)` fill each placeholder with `names(parameter)`. By default that is
the name as is (`str(exc)`: "labels /x is a folder; name a .csv file"); the CLI passes its flags
(`cli.options.flag`: "--labels /x is a folder; ..."). Only the declared names are filled, so braces
in a path stay as they are. Where the core words a notice itself rather than raising, its caller
hands it the same kind of `names` function (`label.service.Hooks.names`).
"""

from __future__ import annotations

import os
from typing import Callable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEBUG_ENV = "TRACKNET_DEBUG"


def debug_enabled() -> bool:
    """`--debug` or TRACKNET_DEBUG=1: the CLI sets the variable for `--debug`, so the core (which never
    imports cli/) and child processes see the same switch."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


def first_line(exc: BaseException) -> str:
    """A library exception's message as one short line, for our one-line errors."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(exc).__name__


Names = Callable[[str], str]
"""How messages name a parameter: `str` (the name as is) for Python callers, the flag in the CLI."""


class TrackNetError(Exception):
    """A known failure: its message is shown to the user as one line. `message` and `hint` are as
    written, with `{parameter}` placeholders (see the module doc); `str(exc)` is `render()`."""

    exit_code: int = EXIT_FAILURE

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        parameter: str | None = None,
        value: object = None,
        also: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.hint = hint
        self.parameter = parameter  # the parameter the error is about (the core's name), if any
        self.value = value  # the value it was given, where that helps
        self.parameters = ((parameter,) if parameter else ()) + tuple(also)  # every name the text holds
        super().__init__(self.render())

    def _fill(self, text: str, names: Names) -> str:
        for name in self.parameters:
            text = text.replace("{" + name + "}", names(name))
        return text

    def render(self, names: Names = str) -> str:
        """The message with each parameter named by `names` (the name as is by default)."""
        return self._fill(self.message, names)

    def line(self, names: Names = str) -> str:
        """The message and its hint, as the one line the user reads."""
        message = self.render(names)
        return f"{message} ({self._fill(self.hint, names)})" if self.hint else message


class UsageError(TrackNetError):
    """Bad command-line usage, configuration or input: exit 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A profile, key or value that cannot be resolved."""


class InputError(UsageError):
    """A path or file the user pointed at that cannot be used."""


class RuntimeFailure(TrackNetError):
    """Something went wrong while doing the work: exit 1."""


class WeightsUnavailableError(RuntimeFailure):
    """Pretrained weights cannot be had (gated, offline, no network)."""


class Reported(TrackNetError):
    """A failure whose line another process already printed (a worker rank, or the launcher after its
    workers): end with its exit code and print nothing more."""

    def __init__(self, exit_code: int) -> None:
        super().__init__("")
        self.exit_code = exit_code


class Interrupted(TrackNetError):
    """The user pressed Ctrl-C; whatever was written so far was kept."""

    exit_code = EXIT_INTERRUPTED
