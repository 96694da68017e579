"""One stop-on-signal policy for every command: SIGTERM (`kill PID`, `timeout`, `docker stop`)
stops tracknet as Ctrl-C does, from the first line of the entry point on.

Python's default SIGTERM ends the process at once (exit 143, no message), and a Ctrl-C that comes
while the command is still being imported escapes every handler as a traceback. Installed before
anything else is imported (``tracknet_cli.__main__``), ``stop_on_sigterm`` makes both a
``KeyboardInterrupt``, which the entry point maps to exit 130 and one ``error: interrupted...``
line, whenever the signal comes. The commands that write files (predict, train, label) install
their own handlers around that part and restore this one. Only ``signal`` is imported here: this
runs before anything else of the command is loaded.
"""

import signal


def _stop(signum, frame) -> None:  # noqa: ANN001 - a signal handler
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does. A SIGTERM the parent set to be ignored
    (nohup) stays ignored. Signal handlers can only be set in the main thread: elsewhere, nothing."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _stop)
    except ValueError:  # not the main thread
        pass


def ignore_stop_signals() -> None:
    """Once the outcome is decided (its line printed, the exit code known), a late Ctrl-C or SIGTERM
    must not turn the exit itself (atexit handlers, library finalizers) into a traceback.

    Also tells CPython that an interrupt was handled: a KeyboardInterrupt raised inside code run by
    ``exec`` (dataclasses build their methods that way while modules are imported) sets a flag that
    makes ``python -m`` end by killing itself with SIGINT (status -2 instead of the 130 we exit
    with), although it was caught. Every evaluation of a string resets that flag."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
    exec("pass", {})  # noqa: S102 - a constant: resets the "unhandled KeyboardInterrupt" flag
