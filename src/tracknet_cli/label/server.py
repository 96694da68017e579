"""The labelling page's web server: a Starlette app on uvicorn, bound to 127.0.0.1 by default.

Safety (docs/scripts/label.md): every request carries the random token (`?token=` or the
`X-Token` header) or gets 403; frames are addressed by number only, so nothing the client sends
becomes a path; every write is validated by `state.parse_change`; any failure is a JSON
`{"error": message}` with a 4xx (or 500) status (413 for a body over MAX_BODY, refused unread), never a traceback.

Endpoints: `GET /` the page, `GET /static/{app.js,style.css}`, `GET /api/meta`, `GET /api/labels`
(every frame's label, proposal and state), `PUT /api/labels` `{"changes": [...], "position": i}`,
`GET /api/status` (revision, model progress, save state), `GET /api/next?after=i`,
`GET /api/previous?before=i`, `GET /api/frames/{i}` (JPEG).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import secrets
import socket
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

from tracknet_cli.label.state import LabelConflict, LabelRequestError

if TYPE_CHECKING:  # pragma: no cover
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from tracknet_cli.label.frames import FrameStore
    from tracknet_cli.label.session import LabelSession

MAX_BODY = 8 << 20  # a PUT of every frame of a long clip fits
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
KEYS = [  # every key and gesture the page reacts to (docs/scripts/label.md has the details)
    ("click", "place the ball (class: 1 2 3); nothing outside the picture"),
    ("double-click", "fit the picture (places nothing)"),
    ("wheel", "zoom at the pointer"),
    ("pointer", "loupe: 4x around it, top right (top left while the pointer is near there)"),
    ("l", "loupe off / on"),
    ("0", "no ball in this frame"),
    (
        "1 2 3",
        "class of the next click (visible, hard, occluded), and of a ball labelled here; never confirms a proposal",
    ),
    ("← →", "previous / next frame"),
    ("Home End", "first / last frame"),
    ("Shift+→", "next frame that needs a person (uncertain first)"),
    ("Shift+←", "previous frame that needs a person"),
    ("Enter", "confirm the proposal, next frame; stops at an uncertain one (Enter again confirms)"),
    ("Space", "play / pause"),
    ("Backspace", "clear this frame's label"),
    ("Ctrl+Z", "undo"),
    ("Ctrl+Shift+Z", "redo (also Ctrl+Y)"),
    ("i", "interpolate the unlabelled frames between two labelled balls (never across no ball)"),
    ("timeline", "click to jump to a frame; hover: its number and state"),
]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _static(name: str) -> str:
    return resources.files("tracknet_cli.label").joinpath("static", name).read_text(encoding="utf-8")


def _error(status: int, message: str) -> "Response":
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)


class _TokenGate:
    """ASGI middleware: 403 for any request without the session's token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
            for name, value in scope.get("headers", []):
                if name == b"x-token":
                    given = value.decode("latin-1")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                response = _error(403, "missing or wrong token: open the URL tracknet label printed")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(LabelRequestError):
    """A request body over MAX_BODY: refused (413) before more than MAX_BODY bytes of it are read."""


async def _json_body(request: "Request") -> Any:
    too_large = BodyTooLarge(f"request body over {MAX_BODY >> 20} MB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it comes: a chunked body has no length up front
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise LabelRequestError(f"the body is not JSON ({exc})") from exc
    except RecursionError:
        raise LabelRequestError("the body is not JSON this server reads: it is nested too deeply") from None


def _json(body: Any) -> "Response":
    from starlette.responses import JSONResponse

    return JSONResponse(body)


class _Endpoints:
    """The route handlers of one session's app, holding what they serve (`build_app` wires them up)."""

    def __init__(self, session: "LabelSession", frames: "FrameStore", token: str) -> None:
        self.session, self.frames, self.token = session, frames, token
        self.media = session.media

    async def page(self, request: "Request") -> "Response":
        from starlette.responses import HTMLResponse

        html = _static("index.html").replace("__TOKEN__", self.token)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def static(self, request: "Request") -> "Response":
        from starlette.responses import Response

        name = request.path_params["name"]
        if name not in STATIC:
            return _error(404, f"no such file: {name[:80]}")
        return Response(_static(name), media_type=STATIC[name])

    async def meta(self, request: "Request") -> "Response":
        media, session = self.media, self.session
        return _json(
            {
                "name": media.path.name,
                "kind": media.kind,
                "width": media.width,
                "height": media.height,
                "frames": media.frames,
                "fps": media.fps,
                "frame_names": media.frame_names,
                "labels_path": str(session.files.target),
                "notes": session.notes,
                "keys": KEYS,
            }
        )

    async def labels(self, request: "Request") -> "Response":
        if request.method == "GET":
            return _json(self.session.snapshot())
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise LabelRequestError('the body must be an object {"changes": [...]}')
        changed = self.session.apply(body.get("changes", []), body.get("position"))
        return _json({"changed": changed, "revision": self.session.revision})

    async def status(self, request: "Request") -> "Response":
        session, info = self.session, self.session.model
        return _json(
            {
                "revision": session.revision,
                "saved_revision": session.saved_revision,
                "save_error": session.save_error,
                "model": {
                    "name": info.name,
                    "short": info.short,
                    "default": info.default,
                    "status": info.status,
                    "done": info.done,
                    "total": self.media.frames,
                    "message": info.message,
                },
                "counts": session.counts(),
            }
        )

    async def needing(self, request: "Request") -> "Response":
        """Shift+→ (the next frame needing a person after i) and Shift+← (the previous one before i)."""
        back = request.url.path.endswith("/previous")
        count = self.media.frames
        name, lowest, highest = ("before", 0, count) if back else ("after", -1, count - 1)
        try:
            at = int(request.query_params.get(name, str(highest if back else lowest)))
        except ValueError:
            raise LabelRequestError(f"{name} must be a frame number") from None
        return _json({"frame": self.session.next_needing(max(lowest, min(at, highest)), -1 if back else 1)})

    async def frame(self, request: "Request") -> "Response":
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        index = request.path_params["index"]
        if not 0 <= index < self.media.frames:
            return _error(404, f"frame {index} is outside 0..{self.media.frames - 1}")
        data = await run_in_threadpool(self.frames.jpeg, index)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def _bad_request(request: "Request", exc: Exception) -> "Response":
    """A request the session refuses: 413 too large, 409 a conflict with the file on disk, 422 invalid."""
    status = (
        413
        if isinstance(exc, BodyTooLarge)
        else 409
        if isinstance(exc, LabelConflict)
        else 422
        if isinstance(exc, LabelRequestError)
        else 400
    )
    return _error(status, str(exc))


async def _http_error(request: "Request", exc: Exception) -> "Response":
    """Starlette's own 404 / 405, in our JSON shape."""
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    text = {404: "no such page", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, text)


async def _failure(request: "Request", exc: Exception) -> "Response":
    """Anything else: a 500 with one line, never a traceback."""
    from tracknet_cli.errors import TrackNetError, first_line

    return _error(500, exc.line() if isinstance(exc, TrackNetError) else f"{type(exc).__name__}: {first_line(exc)}")


def build_app(session: "LabelSession", frames: "FrameStore", token: str) -> "Starlette":
    """The ASGI app serving one session (see the module doc for the endpoints)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    api = _Endpoints(session, frames, token)
    routes = [
        Route("/", api.page),
        Route("/static/{name}", api.static),
        Route("/api/meta", api.meta),
        Route("/api/labels", api.labels, methods=["GET", "PUT"]),
        Route("/api/status", api.status),
        Route("/api/next", api.needing),
        Route("/api/previous", api.needing),
        Route("/api/frames/{index:int}", api.frame),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_TokenGate, token=token)],
        exception_handlers={LabelRequestError: _bad_request, HTTPException: _http_error, Exception: _failure},
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so the URL printed is the one that answers."""
    from tracknet_cli.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:  # socket.gaierror: not an address, and no name that resolves
        raise UsageError(
            f"{{host}} {host}: not an address or a name this machine can resolve ({exc.strerror or exc}); "
            "use e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
            parameter="host",
            value=host,
        ) from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"{{host}} {host}: not an address of this machine ({exc.strerror}); use one of its "
                "addresses, 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
                parameter="host",
                value=host,
            ) from exc
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another {{port}} (0 picks a free one)",
            parameter="port",
            value=port,
        ) from exc
    sock.listen(128)
    return sock


def url_for(sock: socket.socket, host: str, token: str) -> str:
    """The URL to open: the host as given, or 127.0.0.1 when it stands for every interface (`0.0.0.0`, `::`,
    `0`: the address the socket is bound to says so, whatever the spelling)."""
    address, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if ipaddress.ip_address(address.split("%")[0]).is_unspecified:
        shown = "127.0.0.1"
    return f"http://{shown}:{port}/?token={token}"


class Server:
    """uvicorn in a thread of its own, so the main thread keeps Ctrl-C (and saves on the way out)."""

    def __init__(self, app: "Starlette", sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, log_level="critical", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="tracknet-label-server", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """True once the server thread has ended (it failed, or `stop` was called)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting, give open requests 2 s, then close what is left (uvicorn closes the socket)."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
