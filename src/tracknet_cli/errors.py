"""Project exceptions. The core raises these; the CLI maps each to one line and its exit code."""

from __future__ import annotations

import os

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


class TrackNetError(Exception):
    """A known failure: its message is shown to the user as one line."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


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
