"""`tracknet label` from start to stop: session, model, frame store, server; saved on the way out.

Stopping: Ctrl-C (SIGINT) or SIGTERM stop the server, wait for the last save and return normally:
stopping is how a labelling session ends, so the command exits 0 once everything is on disk (1 if
the last save fails). A second Ctrl-C while saving is ignored.
"""

from __future__ import annotations

import functools
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tracknet_cli import stopping
from tracknet_cli.errors import Names
from tracknet_cli.label.session import LabelSession

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LabelOptions:
    input: Path
    labels: Path | None = None
    checkpoint: str | None = None  # None: the default ready model
    model: bool = True  # False: --no-model
    host: str = "127.0.0.1"
    port: int = 0
    overwrite: bool = False
    device: str = "auto"
    runtime: str = "auto"  # torch | onnxruntime | openvino | auto (inference.onnx.choose_runtime)


@dataclass
class Hooks:
    """How the core talks to the user (the CLI renders them): warnings, info lines, the URL, and how
    its lines name a parameter (`errors`: the CLI's flags; the name as is by default)."""

    warn: Callable[[str], None]
    info: Callable[[str], None]
    url: Callable[[str], None]
    names: Names = str


def _proposer(session: LabelSession, options: LabelOptions, hooks: Hooks):  # -> Proposer | None
    if not options.model:
        return None
    from tracknet_cli.label.proposals import Proposer, model_key
    from tracknet_cli.predict.tracker import Tracker
    from tracknet_cli.pretrained.resolve import default_checkpoint, default_notice, resolve_checkpoint

    resolved = resolve_checkpoint(options.checkpoint) if options.checkpoint else default_checkpoint()
    if options.checkpoint is None:
        hooks.info(default_notice(resolved, hooks.names))
    load = functools.partial(Tracker.from_pretrained, resolved, device=options.device, runtime=options.runtime)
    short = resolved.entry.name if resolved.entry else str(resolved.hub.repo) if resolved.hub else resolved.path.name
    return Proposer(
        session,
        load,
        resolved.label,
        model_key(resolved.path),
        short=short,
        default=options.checkpoint is None,
        on_failure=lambda message: hooks.warn(f"model proposals stopped: {message}"),
        names=hooks.names,
    )


def serve(options: LabelOptions, hooks: Hooks) -> LabelSession:
    """Serve the page until Ctrl-C or SIGTERM; returns the session after its last save."""
    from tracknet_cli.label.frames import FrameStore
    from tracknet_cli.label.server import Server, bind, build_app, new_token, url_for
    from tracknet_cli.label.session import open_session

    session = open_session(options.input, options.labels, overwrite=options.overwrite, names=hooks.names)
    for note in session.notes:
        hooks.warn(note)
    proposer = _proposer(session, options, hooks)
    sock = bind(options.host, options.port)  # a bad --host is refused before any warning about it
    if options.host not in LOCAL_HOSTS:
        hooks.warn(
            f"{hooks.names('host')} {options.host}: the page is reachable from other machines; anyone with the URL "
            "(its token) can read the frames and change the labels"
        )
    token = new_token()
    frames = FrameStore(session.media)
    server = Server(build_app(session, frames, token), sock)
    session.start_saver(on_error=hooks.warn)
    stop = stopping.Stop()
    # SIGTERM only asks the loop to end; Ctrl-C raises KeyboardInterrupt there, ending the wait at once.
    with stopping.deferred(stop, (signal.SIGTERM,)):
        try:
            server.start()
            if proposer is not None:
                proposer.start()
            hooks.url(url_for(sock, options.host, token))
            hooks.info(f"labels are saved to {session.files.target} as you go; Ctrl-C stops the server")
            ended = False
            try:
                while not stop.requested and not ended:
                    ended = server.wait(0.2)
            except KeyboardInterrupt:
                pass
            if ended:
                from tracknet_cli.errors import RuntimeFailure

                session.close()
                raise RuntimeFailure(
                    "the web server stopped unexpectedly; the labels so far are saved (run with --debug)"
                )
        finally:
            with stopping.ignoring((signal.SIGINT,)):  # a second Ctrl-C must not cut the last save short
                server.stop()
                if proposer is not None:
                    proposer.stop()
                frames.close()
                session.close()
    return session
