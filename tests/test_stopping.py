"""tracknet_cli.stopping with real signals sent to this process (in the main thread, where Python runs
handlers): what each way of stopping does, and that the previous handlers come back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tracknet_cli import stopping


class _Unhandled(Exception):
    """A SIGTERM that reached the test's own handler: nothing under test handled it."""


def _unhandled(signum: int, frame: object) -> None:
    raise _Unhandled(signal.Signals(signum).name)


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    """Each test starts with Python's SIGINT handler and a SIGTERM one that cannot kill pytest, and
    leaves both as it found them."""
    saved = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _unhandled)
    yield
    for sig, old in saved.items():
        signal.signal(sig, old)


def _send(sig: int) -> None:
    """Send ``sig`` to this process and give Python the moment it takes to run the handler."""
    os.kill(os.getpid(), sig)
    for _ in range(20):  # a handler runs between bytecodes of the main thread, at the latest here
        time.sleep(0.001)


def test_deferred_sets_the_stop_and_raises_nothing_then_restores_the_handlers() -> None:
    stop = stopping.Stop()
    with stopping.deferred(stop) as same:
        assert same is stop and not stop.requested
        _send(signal.SIGINT)
        assert stop.requested
        _send(signal.SIGTERM)  # again, while finalising: still nothing raised
        _send(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is _unhandled
    with pytest.raises(KeyboardInterrupt):
        _send(signal.SIGINT)


def test_deferred_leaves_the_signals_it_was_not_given() -> None:
    stop = stopping.Stop()
    with stopping.deferred(stop, (signal.SIGTERM,)):
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGINT)
        assert not stop.requested
        _send(signal.SIGTERM)
        assert stop.requested


def test_interrupting_raises_once_and_ignores_the_next_until_the_block_ends() -> None:
    with stopping.interrupting((signal.SIGTERM,)):
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGTERM)
        _send(signal.SIGTERM)  # the state is being written: ignored
    assert signal.getsignal(signal.SIGTERM) is _unhandled


def test_ignoring_ignores_during_the_block_only() -> None:
    with stopping.ignoring((signal.SIGINT,)):
        _send(signal.SIGINT)
        assert signal.getsignal(signal.SIGTERM) is _unhandled
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_as_ctrl_c_raises_keyboard_interrupt_unless_sigterm_was_ignored() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stopping.sigterm_as_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        _send(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as nohup leaves it
    stopping.sigterm_as_ctrl_c()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    _send(signal.SIGTERM)


def test_ignore_is_for_good() -> None:
    stopping.ignore()
    _send(signal.SIGINT)
    _send(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_off_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def work() -> None:
        stop = stopping.Stop()
        with stopping.deferred(stop), stopping.interrupting(), stopping.ignoring():
            stopping.sigterm_as_ctrl_c()
            stopping.ignore()
            seen.extend(signal.getsignal(sig) for sig in stopping.STOP_SIGNALS)
        seen.append(stop.requested)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler, _unhandled, False]


def test_held_notes_a_signal_and_raises_it_once_the_block_is_done() -> None:
    """Model loading runs native code that calls back into Python: nothing may be raised inside it."""
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with stopping.held():
            _send(signal.SIGTERM)
            steps.append("after the signal")  # the block went on to its end
            _send(signal.SIGINT)
            steps.append("after the second")
    assert steps == ["after the signal", "after the second"]
    assert signal.getsignal(signal.SIGTERM) is _unhandled
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_held_leaves_an_ignored_signal_ignored() -> None:
    """`cmd &` in a script starts with SIGINT ignored: a Ctrl-C meant for the shell is not ours."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stopping.held():
        _send(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    with stopping.held():
        pass  # and nothing is raised without a signal
