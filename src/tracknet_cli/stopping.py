"""Stopping on Ctrl-C (SIGINT) and SIGTERM (`kill PID`, `timeout`, `docker stop`): every signal
handler tracknet sets is set here, so the policy reads in one place.

A signal stops work in one of three ways:

- *interrupt*: it raises ``KeyboardInterrupt`` as Ctrl-C does, and the command ends with its own
  line and exit 130 (``sigterm_as_ctrl_c`` from the entry point on; ``interrupting`` around
  training, which saves its state on the way out);
- *defer*: it only sets a ``Stop`` that the work checks between steps, so nothing is raised while
  threads in native code are stopped and files finalised (``deferred``: predict, label);
- *ignore*: while finalising, and for good once the outcome is decided (``ignoring``, ``ignore``).

Handlers can only be set in the main thread (where Python runs them); elsewhere every function here
does nothing. Nothing heavy is imported: the entry point installs the policy before anything else
of the command is loaded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence  # not typing: it costs ms at every start
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The line for a signal that came while tracknet loaded or parsed its command line (entry point and app).
INTERRUPTED_BEFORE_START = "interrupted before tracknet started; nothing was written"


class Stop:
    """A request to stop, set by a signal (``deferred``) or by anyone; the work checks ``requested``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _handling(signals: Sequence[int], handler: Callable[[int, object], object] | signal.Handlers) -> Iterator[None]:
    """``handler`` for ``signals`` during the block; the previous handlers come back after it."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, old)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def sigterm_as_ctrl_c() -> None:
    """From now on SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does: Python's default ends the
    process at once (exit 143, no message). A SIGTERM the parent set to be ignored (nohup) stays
    ignored."""
    if _in_main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_interrupt)


def ignore(signals: Sequence[int] = STOP_SIGNALS) -> None:
    """For good: once the outcome is decided (its line printed, the exit code known), a late signal
    must not turn the exit itself (atexit handlers, library finalizers) into a traceback.

    Also tells CPython that an interrupt was handled: a KeyboardInterrupt raised inside code run by
    ``exec`` (dataclasses build their methods that way while modules are imported) sets a flag that
    makes ``python -m`` end by killing itself with SIGINT (status -2 instead of the 130 we exit
    with), although it was caught. Every evaluation of a string resets that flag."""
    if _in_main_thread():
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
    exec("pass", {})  # noqa: S102 - a constant: resets the "unhandled KeyboardInterrupt" flag


@contextmanager
def deferred(stop: Stop, signals: Sequence[int] = STOP_SIGNALS) -> Iterator[Stop]:
    """During the block the signals only set ``stop`` (again and again): the work ends at its next
    check, whole, instead of wherever the signal found it."""
    with _handling(signals, lambda signum, frame: stop.set()):
        yield stop


@contextmanager
def interrupting(signals: Sequence[int] = (signal.SIGTERM,)) -> Iterator[None]:
    """During the block the first signal raises ``KeyboardInterrupt``; further ones are ignored while
    the work's own ``except``/``finally`` writes what it must (SIGKILL still ends it)."""

    def first(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    with _handling(signals, first):
        yield


@contextmanager
def ignoring(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """During the block the signals are ignored (finalising must not be cut short)."""
    with _handling(signals, signal.SIG_IGN):
        yield


@contextmanager
def held(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """During the block a signal is only noted, and raised as ``KeyboardInterrupt`` when the block
    ends: for imports and model loading, where native code (safetensors in Rust, OpenVINO and torch
    in C++) calls back into Python and cannot unwind an exception raised there (a SIGTERM while the
    weights loaded aborted the process: "Rust cannot catch foreign exceptions"). A signal the parent
    set to be ignored stays ignored."""
    stop = Stop()
    noted = [sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN]
    with deferred(stop, noted):
        yield
    if stop.requested:
        raise KeyboardInterrupt
