"""Where `tracknet label` reads and writes: the label file, its sidecar, and the never-overwrite rule.

- The label file: `--labels`, or by default beside the input: `NAME.csv` (the TrackNetV2/V3
  dialect `Frame,Visibility,X,Y`) for `NAME.mp4`, `Label.csv` (the tennis dialect) inside a frame
  folder. These are the names `tracknet train` pairs with the frames.
- The sidecar `LABELS.label.json`: which frames a person confirmed here (and which of them were
  interpolated), the model's proposals (so reopening shows them without running the model again),
  the frame last shown, and the SHA-256 of the label file it belongs to. A label file is *ours*
  when its sidecar names its content; anything else (a dataset's own labels, a file edited by hand) is *foreign*.
- A foreign file is read (its labels are loaded) but never replaced without `--overwrite`: the
  labels go to `NAME.tracknet.csv` beside it instead, and the user is told where.
- One session per label file: it holds `.NAME.lock` beside it (`locks.hold`) while it runs, so a
  second `tracknet label` on the same file is refused naming the first. Before the page is served a
  file is created (and removed) beside it, which proves the folder takes new files: a lock file left
  by a killed session opens for writing in a folder that no longer does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracknet_cli.errors import InputError, Names, UsageError
from tracknet_cli.label.media import LabelMedia

SIDECAR_FORMAT = "tracknet-label/1"
SIDECAR_SUFFIX = ".label.json"
BESIDE_TAG = ".tracknet"


def sidecar_path(labels: Path) -> Path:
    return labels.with_name(labels.name + SIDECAR_SUFFIX)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_sidecar(labels: Path) -> dict[str, Any] | None:
    """The sidecar of `labels` when it belongs to the file as it is now on disk, else None."""
    try:
        side = json.loads(sidecar_path(labels).read_text(encoding="utf-8"))
        content = labels.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(side, dict) or side.get("format") != SIDECAR_FORMAT:
        return None
    # The sidecar is written first: after a crash between the two renames the label file is the previous one.
    if sha256(content) not in (side.get("labels_sha256"), side.get("previous_sha256")):
        return None
    return side


def claim(target: Path):  # -> locks.Lock
    """Hold the lock of the label file `target` for this session, once a file could be created beside
    it (see the module doc)."""
    from tracknet_cli.locks import Busy, hold

    lock = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = hold(target.with_name(f".{target.name}.lock"))
        _probe_folder(target)
        return lock
    except Busy as exc:
        raise UsageError(
            f"{target} is being labelled by another tracknet label ({exc}); stop that one "
            "(Ctrl-C) or label into another file with {labels}",
            parameter="labels",
            value=target,
        ) from None
    except OSError as exc:
        if lock is not None:
            lock.release()
        raise UsageError(
            f"cannot save labels in {target.parent}: {exc.strerror or exc}; make the folder "
            "writable or choose another file with {labels}",
            parameter="labels",
            value=target,
        ) from exc


def _probe_folder(target: Path) -> None:
    """Create and remove a file where every save creates its temp files: the lock file alone proves
    nothing when one is left from a killed session (it opens for writing in a folder that no longer
    takes new files)."""
    import os
    import tempfile

    from tracknet_cli.atomic import temp_prefix

    fd, probe = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(probe)


def default_labels(media: LabelMedia) -> Path:
    return media.path / "Label.csv" if media.kind == "frames" else media.path.with_suffix(".csv")


def beside(path: Path) -> Path:
    """`NAME.tracknet.csv` next to a foreign `NAME.csv` (`-2`, `-3`... when that one is foreign too)."""
    for k in range(1, 100):
        tag = BESIDE_TAG if k == 1 else f"{BESIDE_TAG}-{k}"
        candidate = path.with_name(f"{path.stem}{tag}{path.suffix or '.csv'}")
        if not candidate.exists() or read_sidecar(candidate) is not None:
            return candidate
    raise InputError(f"{path}: 99 label files beside it already; pass {{labels}} to choose one", parameter="labels")


@dataclass(frozen=True)
class LabelFiles:
    """The file labels are written to, the file they are first read from, and what to tell the user."""

    target: Path
    load_from: Path | None  # None: start empty
    sidecar: dict[str, Any] | None  # the target's own sidecar when resuming
    notice: str | None = None  # a foreign file left alone: where the labels go instead

    @property
    def resuming(self) -> bool:
        return self.sidecar is not None


def plan(media: LabelMedia, labels: Path | None, overwrite: bool, names: Names = str) -> LabelFiles:
    """Decide target and source (see the module doc); refuses an input as the target, folders, and
    what is not a regular file (a FIFO, a device; a link as the target). `names` names parameters in
    the notice (`errors`)."""
    from tracknet_cli.atomic import first_overwritten_input, refuse_special, special_kind
    from tracknet_cli.data.clips import label_file_for

    wanted = Path(labels).expanduser() if labels is not None else default_labels(media)
    if wanted.is_dir():
        raise UsageError(f"{{labels}} {wanted} is a folder; name a .csv file", parameter="labels", value=wanted)
    kind = special_kind(wanted, follow=True)
    if kind is not None:  # reading a FIFO would wait for a writer forever
        raise UsageError(
            f"{wanted} is {kind}, not a regular file; name a .csv file ({{labels}})", parameter="labels", value=wanted
        )
    inputs = [media.path, *(media.frame_paths or ())]
    if first_overwritten_input([wanted], inputs) is not None:
        raise UsageError(
            f"{{labels}} {wanted} is one of the inputs; name a .csv file that is not a frame or the video",
            parameter="labels",
            value=wanted,
        )
    paired = label_file_for(media.path)
    if wanted.exists() and read_sidecar(wanted) is None and not overwrite:
        target = beside(wanted)
        notice = (
            f"{wanted} was not written by tracknet label, so it is left as it is: its labels are loaded and "
            f"saved to {target} ({names('overwrite')} replaces {wanted.name} instead)"
        )
    else:
        target, notice = wanted, None
    refuse_special(target)  # a link would be replaced by the first save
    side = read_sidecar(target) if target.exists() else None
    if side is not None:
        return LabelFiles(target, target, side, notice)
    source = wanted if wanted.exists() else paired if paired is not None and paired.exists() else None
    return LabelFiles(target, source, None, notice)
