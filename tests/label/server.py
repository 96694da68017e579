"""`tracknet label` as a real subprocess, and plain HTTP against it (no client library in the way)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from tests.cli.helpers import ROOT

STARTUP_S = 180  # the machine may be busy: importing torch and av alone can take many seconds


@dataclass
class Running:
    proc: subprocess.Popen[str]
    url: str

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def token(self) -> str:
        return self.url.split("token=", 1)[1]

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = "default", raw: bytes | None = None
    ) -> tuple[int, bytes, str]:
        """(status, body bytes, content type); the token goes in the query unless token=None."""
        token = self.token if token == "default" else token
        sep = "&" if "?" in path else "?"
        url = self.base + path + (f"{sep}token={token}" if token is not None else "")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, data, kind = self.request(method, path, body, **kw)
        assert kind.startswith("application/json"), (status, kind, data[:200])
        return status, json.loads(data)

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err


@contextmanager
def label_server(*args: str) -> Iterator[Running]:
    """Start `tracknet label ARGS`, wait for the one URL on stdout; stopped (Ctrl-C) at the end if
    the test did not stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", "label", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(STARTUP_S)
    if not line or not line[0].startswith("http://"):
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"no URL on stdout: {line!r} {out!r} {err!r}")
    running = Running(proc, line[0].strip())
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def wait_for(predicate, timeout: float = 120.0, step: float = 0.1) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def labels_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""
