"""Lock files: one process at a time writes a label file (`tracknet label`) or a run directory
(`tracknet train`).

`hold(PATH)` takes an OS lock (`fcntl.flock`) on the lock file PATH, creating it, and writes the
holder's pid into it; `Busy` names the pid of another process holding it. The OS drops the lock
when its process ends, however it ends (SIGKILL, power loss), so a lock file left behind never
blocks anyone: a stale one is taken over. `release()` removes the file and drops the lock. Where
`fcntl` is missing (Windows) nothing is locked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class Busy(Exception):
    """Another live process holds the lock."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"pid {pid}" if pid else "a process that is still running")
        self.pid = pid


class Lock:
    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self.fd = path, fd

    def release(self) -> None:
        """Remove the lock file (while still holding it, so nobody else's is removed) and drop it."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def hold(path: Path) -> Lock:
    """Hold the lock file `path` until `release()` or the end of the process. Raises `Busy` when a
    live process holds it, OSError when it cannot be created (a read-only folder)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return Lock(path, None)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid(fd)
            for _ in range(50):  # the holder writes its pid just after it locks: wait for it, briefly
                if pid:
                    break
                time.sleep(0.01)
                pid = _pid(fd)
            os.close(fd)
            raise Busy(pid) from None
        if _same_file(fd, path):  # not a file its last holder removed between our open and our lock
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return Lock(path, fd)
