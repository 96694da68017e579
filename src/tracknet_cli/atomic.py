"""Atomic file writes: a temp file in the same directory, then a rename. Readers never see half a file.

mkstemp/mkdtemp create 0600 files and 0700 folders whatever the umask; `publish_mode` gives a temp
file or folder the mode a plain `open`/`mkdir` would have (or the mode of the file it replaces)
before it is renamed into place.

Temp names carry the writer's process id (`.NAME.PID.xxxxxxxx...`, `.NAME.importing-PID-xxxxxxxx`):
a later write of the same NAME removes what a process that is no longer alive left behind (SIGKILL,
power loss), and never touches a live writer's files.

Renaming a new file over a name replaces whatever had it: `refuse_special` is the check every
output goes through (the writers here, predict's, eval's and export's), so a FIFO, a device such as
/dev/null, a socket or a symbolic link given as an output is refused, `--overwrite` or not, and `-`
(not stdout here: results go to files) too."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tracknet_cli.errors import InputError

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def special_kind(path: Path | str, *, follow: bool = False) -> str | None:
    """What `path` is when it exists but is not a regular file ("a named pipe (FIFO)", "a symbolic
    link (to X)", ...), else None. `follow`: what a link points to (for reading) instead of the link."""
    try:
        mode = (os.stat if follow else os.lstat)(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)})"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def refuse_special(path: Path | str) -> None:
    """`InputError` (exit 2) unless the output `path` is absent or a regular file (see the module doc)."""
    if str(path) == "-":
        raise InputError(
            "- would be a file named '-': tracknet writes its results to files, not to stdout; "
            "name a file (e.g. out.csv)"
        )
    kind = special_kind(path)
    if kind == "a folder":
        raise InputError(f"{path} is a folder; name a file")
    if kind is not None:
        raise InputError(
            f"{path} is {kind}, not a regular file: an output is written to a new file renamed over "
            "its name, which would replace it; name a regular file ({overwrite} replaces only those)",
            also=("overwrite",),
        )


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


def temp_prefix(path: Path, tag: str = "") -> str:
    """mkstemp/mkdtemp prefix for a temp file or folder that will become `path`: `.NAME.PID.`, or
    `.NAME.TAG-PID-` with a tag (folders: `importing`, `synth`, `old`)."""
    return f".{path.name}.{tag}-{os.getpid()}-" if tag else f".{path.name}.{os.getpid()}."


_RANDOM = r"[a-z0-9_]{8}"  # what mkstemp/mkdtemp insert


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process, or cannot tell: keep its files
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files and folders beside `path` that a writer of `path` which is no longer
    running left behind; returns what was removed. Names that do not follow `temp_prefix` are kept."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\.{_RANDOM}(?:\..+)?|[a-z]+-(\d+)-{_RANDOM})$")
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        pid = int(match.group(1) or match.group(2))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def first_overwritten_input(outputs, inputs) -> Path | None:
    """The first existing output that is the same file (device and inode) as one of `inputs`, or None.

    Compares files, not names, so a link or another spelling of an input's path is caught too;
    inputs that do not exist (or cannot be stat'ed) are skipped."""
    existing = [Path(p) for p in outputs if p is not None and Path(p).exists()]
    if not existing:
        return None
    identities: set[tuple[int, int]] = set()
    for path in inputs:
        if path is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        identities.add((st.st_dev, st.st_ino))
    for path in existing:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in identities:
            return path
    return None


def require_writable(out: Path, *, replaced: bool = False) -> None:
    """Before any work: the folder that will hold the output `out` (the first that exists on its way), and
    `out` itself when it exists and is written in or `replaced`, can be written by this user. Otherwise one
    line naming the user's path (never a temp name deep inside the work), exit 2."""
    out = Path(out)
    holder = out.parent if not out.is_dir() or replaced else out
    while not holder.exists() and holder != holder.parent:
        holder = holder.parent
    for folder in dict.fromkeys([holder, out] if out.is_dir() else [holder]):
        if not os.access(folder, os.W_OK | os.X_OK):
            try:
                read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            except OSError:
                read_only = False
            why = "is on a read-only file system" if read_only else "is not writable for you"
            raise InputError(f"cannot write {out}: {folder} {why}; choose a folder you can write to")


def _raise_naming(exc: BaseException, path: Path, tmp: str) -> None:
    """Re-raise an OSError of a write that names no file, or the temp file, as the same error naming
    `path`, the file the user asked for: a full disk's one line says which output failed (a write to a
    file object carries no name; an internal temp name means nothing to the user)."""
    unnamed = isinstance(exc, OSError) and (exc.filename is None or str(exc.filename) in (tmp, str(Path(tmp))))
    if unnamed and exc.errno is not None:
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _raise_naming(exc, path, tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path` for a library to write to; renamed over `path` on success."""
    refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _raise_naming(exc, path, tmp)
        raise
