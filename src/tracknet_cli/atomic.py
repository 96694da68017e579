"""Atomic file writes: a temp file in the same directory, then a rename. Readers never see half a file.

mkstemp/mkdtemp create 0600 files and 0700 folders whatever the umask; `publish_mode` gives a temp
file or folder the mode a plain `open`/`mkdir` would have (or the mode of the file it replaces)
before it is renamed into place."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from typing import Iterator
import tempfile
from pathlib import Path


def umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(tmp: Path | str, target: Path | str | None = None, *, directory: bool = False) -> None:
    """Give the temp file (or folder) `tmp` the permissions of the `target` it will replace, or
    those a new file (0666) or folder (0777) gets under the user's umask."""
    mode = None
    if target is not None and not directory:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = None
    if mode is None:
        mode = (0o777 if directory else 0o666) & ~umask()
    os.chmod(tmp, mode)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path` for a library to write to; renamed over `path` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
