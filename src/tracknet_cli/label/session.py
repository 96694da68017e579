"""One labelling session: the frames, a person's labels, the model's proposals, saved as they change.

`LabelSession` is what the web server calls (from several threads: requests, the proposal thread,
the saver), so every read and write of the state holds one lock. Saving is debounced: a change
wakes the saver, which writes once the page has been quiet for `QUIET_S` or `LATEST_S` after the
first unsaved change, so labels reach the disk within a second however fast a person works.

A label file changed by another program while the session runs (rows a script appended) is never
written over: the next save finds it differs from what the session last read or wrote, keeps it,
writes the session's labels beside it as `NAME.conflict-TIME.csv`, and stops saving; from then on
a change from the page is answered 409 with that message, and the warning is given once. A save
that fails (a full disk) is retried every second and reported once per distinct failure.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tracknet_cli.atomic import atomic_write_bytes
from tracknet_cli.errors import Names, RuntimeFailure, TrackNetError
from tracknet_cli.label.files import SIDECAR_FORMAT, LabelFiles, claim, plan, read_sidecar, sha256, sidecar_path
from tracknet_cli.label.media import LabelMedia, open_media
from tracknet_cli.label.state import (
    Label,
    LabelConflict,
    LabelRequestError,
    Proposal,
    Reason,
    State,
    frame_state,
    next_needing,
    parse_change,
    reasons,
    rounded,
)

QUIET_S = 0.25  # save once no change came for this long...
LATEST_S = 0.8  # ...or this long after the first unsaved change, whichever is first
MAX_CHANGES = 100_000


@dataclass
class ModelInfo:
    """The model proposing labels and how far it got (shown on the page)."""

    name: str = ""
    short: str = ""  # the name the page shows: `tennis`, a hub repo, a file name
    default: bool = False  # the default model (no --checkpoint)
    key: str = ""  # identifies model + settings: cached proposals are reused only for the same key
    status: str = "off"  # off | loading | running | done | failed
    done: int = 0
    message: str = ""


@dataclass
class LabelSession:
    media: LabelMedia
    files: LabelFiles
    labels: list[Label | None]
    confirmed: set[int]  # frames a person labelled or confirmed in this tool
    proposals: list[Proposal | None]
    position: int = 0
    notes: list[str] = field(default_factory=list)  # warnings about what was loaded
    model: ModelInfo = field(default_factory=ModelInfo)
    interpolated: set[int] = field(default_factory=set)  # balls placed by `i`, not by hand (drawn apart)
    revision: int = 0  # bumped by every change (labels or proposals): the page polls it
    saved_revision: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _wake: threading.Condition = field(init=False, repr=False)
    _first_unsaved: float | None = field(default=None, repr=False)
    _last_change: float = field(default=0.0, repr=False)
    _saver: threading.Thread | None = field(default=None, repr=False)
    _closing: bool = field(default=False, repr=False)
    _written_sha: str | None = field(default=None, repr=False)  # of the label file this session last wrote
    _disk_sha: str | None = field(default=None, repr=False)  # of the label file as this session last read or wrote it
    _held: Any = field(default=None, repr=False)  # the label file's lock (files.claim)
    _on_error: Callable[[str], None] | None = field(default=None, repr=False)
    _reported: str | None = field(default=None, repr=False)
    save_error: str | None = None
    conflict: str | None = None  # set when another program changed the label file: saving stopped

    def __post_init__(self) -> None:
        self._wake = threading.Condition(self._lock)

    # ------------------------------------------------------------ reading
    @property
    def frames(self) -> int:
        return self.media.frames

    def reasons(self) -> list[Reason]:
        with self._lock:
            return reasons(self.labels, self.proposals, self.media.width, self.media.height)

    def states(self) -> list[State]:
        with self._lock:
            return [frame_state(lab, prop, why) for lab, prop, why in zip(self.labels, self.proposals, self.reasons())]

    def next_needing(self, after: int, step: int = 1) -> int | None:
        return next_needing(self.states(), after, step)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, as JSON: one entry per frame."""
        with self._lock:
            why = self.reasons()
            return {
                "revision": self.revision,
                "position": self.position,
                "labels": [self._label_json(i, lab) for i, lab in enumerate(self.labels)],
                "proposals": [p.to_json(why[i]) if p is not None else None for i, p in enumerate(self.proposals)],
                "states": self.states(),
                "confirmed_here": sorted(self.confirmed),
            }

    def _label_json(self, frame: int, label: Label | None) -> dict[str, Any] | None:
        if label is None:
            return None
        return {**label.to_json(), "interpolated": True} if frame in self.interpolated else label.to_json()

    def counts(self) -> dict[str, int]:
        states = self.states()
        return {s: states.count(s) for s in ("confirmed", "proposed", "uncertain", "empty")}

    # ------------------------------------------------------------ changes
    def apply(self, changes: Any, position: Any = None) -> list[int]:
        """Validate every change, then apply them all (or none); returns the frames changed."""
        if not isinstance(changes, list):
            raise LabelRequestError("changes must be a list")
        if len(changes) > MAX_CHANGES:
            raise LabelRequestError(f"at most {MAX_CHANGES} changes per request")
        if self.conflict is not None:
            raise LabelConflict(self.conflict)
        parsed = [parse_change(c, self.frames, self.media.width, self.media.height) for c in changes]
        interpolated = {
            f
            for (f, lab), c in zip(parsed, changes)
            if lab is not None and lab.visibility > 0 and c.get("interpolated") is True
        }
        if position is not None and (
            isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < self.frames
        ):
            raise LabelRequestError(f"position must be a frame number 0..{self.frames - 1}, got {position!r}"[:200])
        with self._lock:
            for frame, label in parsed:
                old = self.labels[frame]
                if label is not None and old is not None:
                    label = Label(label.visibility, label.x, label.y, old.status)  # keep the file's status
                self.labels[frame] = label
                if label is None:
                    self.confirmed.discard(frame)
                else:
                    self.confirmed.add(frame)
                if frame in interpolated:
                    self.interpolated.add(frame)
                else:
                    self.interpolated.discard(frame)
            if position is not None:
                self.position = position
            self._changed(bump=bool(parsed))  # a new position alone is saved, but the page need not refetch
        return [f for f, _ in parsed]

    def set_proposals(self, items: Sequence[tuple[int, Proposal | None]]) -> None:
        with self._lock:
            for frame, proposal in items:
                if 0 <= frame < self.frames:
                    self.proposals[frame] = proposal
            self._changed()

    def _changed(self, bump: bool = True) -> None:
        now = time.monotonic()
        self.revision += bump
        self._last_change = now
        if self._first_unsaved is None:
            self._first_unsaved = now
        self._wake.notify_all()

    # ------------------------------------------------------------ saving
    def label_text(self) -> str:
        from tracknet_cli.data.labels import LabelTable, tennis_text, tracknetv2_text

        with self._lock:
            rows = self.labels
            table = LabelTable.from_arrays(
                [lab.visibility if lab is not None else -1 for lab in rows],
                [lab.x if lab is not None and lab.x is not None else np.nan for lab in rows],
                [lab.y if lab is not None and lab.y is not None else np.nan for lab in rows],
                status=[lab.status if lab is not None else -1 for lab in rows],
                width=self.media.width,
                height=self.media.height,
                dialect="label",
            )
        names = self.media.frame_names
        return tennis_text(table, names) if names is not None else tracknetv2_text(table)

    def save(self) -> None:
        """Write the sidecar, then the label file (both atomically). The sidecar names the new and
        the previous content, so a crash between the two renames still resumes. A label file changed
        by another program is kept: `LabelConflict` (see the module doc)."""
        with self._lock:
            if self.conflict is not None:
                self._first_unsaved = None
                return
            revision = self.revision
            text = self.label_text().encode("utf-8")
            target = self.files.target
            on_disk = _sha_of(target)
            if on_disk is not None and on_disk != self._disk_sha:
                self._first_unsaved = None
                self._keep_both(target, text)
            previous = self._written_sha  # read from disk only before this session's first save
            if previous is None and on_disk is not None and read_sidecar(target) is not None:
                previous = on_disk
            written = sha256(text)
            side = {
                "format": SIDECAR_FORMAT,
                "input": str(self.media.path.resolve()),
                "frames": self.frames,
                "width": self.media.width,
                "height": self.media.height,
                "labels_sha256": written,
                "previous_sha256": previous,
                "confirmed": sorted(self.confirmed),
                "interpolated": sorted(self.interpolated),
                "position": self.position,
                "model": {
                    "name": self.model.name,
                    "key": self.model.key,
                    "complete": self.model.status in ("done", "cached"),
                },
                "proposals": [p.to_json() if p is not None else None for p in self.proposals],
            }
            self._first_unsaved = None
        atomic_write_bytes(sidecar_path(target), json.dumps(side, separators=(",", ":")).encode("utf-8"))
        atomic_write_bytes(target, text)
        with self._lock:
            self._written_sha = self._disk_sha = written
            self.saved_revision = max(self.saved_revision, revision)

    def _keep_both(self, target: Path, text: bytes) -> None:
        """Another program changed `target`: leave it, write ours beside it, stop saving."""
        copy = target.with_name(f"{target.stem}.conflict-{time.strftime('%Y%m%d-%H%M%S')}{target.suffix or '.csv'}")
        atomic_write_bytes(copy, text)
        self.conflict = self.save_error = (
            f"{target} was changed by another program while tracknet label had it open: it is left as it is, and "
            f"this session's labels were saved to {copy}; saving has stopped (stop the server, merge the two "
            "files, then label again)"
        )
        raise LabelConflict(self.conflict)

    def _report(self, message: str) -> None:
        """Tell the user about a save problem once, not at every retry."""
        if message != self._reported and self._on_error is not None:
            self._on_error(message)
        self._reported = message

    def start_saver(self, on_error: Callable[[str], None] | None = None) -> None:
        """A daemon thread that saves within a second of each change (see the module doc)."""
        self._on_error = on_error

        def loop() -> None:
            while True:
                with self._lock:
                    while not self._closing and self._first_unsaved is None:
                        self._wake.wait()
                    if self._closing:
                        return
                    now = time.monotonic()
                    due = min(self._last_change + QUIET_S, self._first_unsaved + LATEST_S)
                    if now < due:
                        self._wake.wait(due - now)
                        continue
                try:
                    self.save()
                    if self.conflict is None:
                        self.save_error = self._reported = None
                except LabelConflict as exc:
                    self._report(str(exc))
                except (OSError, TrackNetError) as exc:  # a full disk; a link or folder put where we write
                    with self._lock:
                        self._first_unsaved = self._first_unsaved or time.monotonic()  # still to be saved
                    self.save_error = f"cannot save {self.files.target}: {_why(exc)}"
                    self._report(self.save_error)
                    time.sleep(1.0)

        self._saver = threading.Thread(target=loop, name="tracknet-label-saver", daemon=True)
        self._saver.start()

    def close(self) -> None:
        """Stop the saver and write whatever is not on disk yet; a failure is a RuntimeFailure."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        if self._saver is not None:
            self._saver.join(timeout=10)
        try:
            if self._first_unsaved is not None:
                self.save()
        except LabelConflict as exc:
            self._report(str(exc))
        except (OSError, TrackNetError) as exc:
            raise RuntimeFailure(
                f"cannot save the labels to {self.files.target}: {_why(exc)}; the last save that worked is kept"
            ) from exc
        finally:
            if self._held is not None:
                self._held.release()


# ---------------------------------------------------------------- opening
def open_session(
    input_path: Path, labels: Path | None = None, *, overwrite: bool = False, names: Names = str
) -> LabelSession:
    """The session for INPUT: existing labels loaded (any dialect), resumed from our own sidecar. `names`
    names parameters in its notes (`errors`: the CLI passes its flags)."""
    media = open_media(input_path)
    files = plan(media, labels, overwrite, names)
    held = claim(files.target)  # before reading it: a second session is refused here
    try:
        rows, notes = _load_labels(media, files.load_from)
        disk_sha = _sha_of(files.target)
    except BaseException:
        held.release()
        raise
    n = media.frames
    confirmed = {i for i, lab in enumerate(rows) if lab is not None}
    proposals: list[Proposal | None] = [None] * n
    position = 0
    side, model_key, model_complete, model_name = files.sidecar, "", False, ""
    if side is not None and side.get("frames") == n:
        try:
            position = int(side.get("position") or 0)
            position = position if 0 <= position < n else 0
            proposals = _proposals_from(side.get("proposals"), n)
            here = {int(i) for i in side.get("confirmed") or [] if isinstance(i, int)}
            model = side.get("model") or {}
            model_key, model_complete = str(model.get("key") or ""), bool(model.get("complete"))
            model_name = str(model.get("name") or "")
        except (TypeError, ValueError, AttributeError) as exc:  # a sidecar edited by hand: the labels still count
            notes.append(
                f"{sidecar_path(files.target)} is garbled ({type(exc).__name__}: {exc}), so it is ignored: "
                f"the labels in {files.target} are kept, the model's proposals and the position are not"
            )
            position, proposals, here, model_key, model_complete = 0, [None] * n, set(), "", False
        confirmed = {i for i in confirmed if i in here}
    elif files.load_from is not None:
        confirmed = set()  # labels from someone else's file: nobody confirmed them here
    if files.notice:
        notes.insert(0, files.notice)
    session = LabelSession(media, files, rows, confirmed, proposals, position, notes, _disk_sha=disk_sha, _held=held)
    if side is not None and side.get("frames") == n:
        session.interpolated = {
            i
            for i in side.get("interpolated") or []
            if isinstance(i, int) and i in confirmed and rows[i] is not None and rows[i].visibility > 0
        }  # type: ignore[union-attr]
    if side is not None:
        session.model.key = model_key
        session.model.status = "cached" if model_complete else "off"  # cached: no model runs (--no-model)
        if model_complete:  # the Proposer names its own model
            session.model.name, session.model.short = model_name, model_name.split(" (")[0]
    return session


def _why(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _sha_of(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except FileNotFoundError:
        return None


def _load_labels(media: LabelMedia, path: Path | None) -> tuple[list[Label | None], list[str]]:
    """Labels on the input's frames; rows that cannot be a label (visible without coordinates,
    outside the image, past the last frame) are left out and counted in one note."""
    from tracknet_cli.data.labels import FRAME_WITHOUT_LABEL, read_labels

    rows: list[Label | None] = [None] * media.frames
    if path is None:
        return rows, []
    table = read_labels(
        path, width=media.width, height=media.height, num_frames=media.frames, frame_names=media.frame_names
    )
    for i in range(media.frames):
        v = int(table.visibility[i])
        if v == 0:
            rows[i] = Label(0, status=int(table.status[i]))
        elif v > 0 and table.state[i] == 1:
            rows[i] = Label(v, rounded(float(table.x[i])), rounded(float(table.y[i])), int(table.status[i]))
    problems = [p for p in table.problems if p.kind != FRAME_WITHOUT_LABEL]
    notes = []
    if problems:
        first = problems[0]
        where = f"{first.file}:{first.row}" if first.row is not None else first.file
        notes.append(
            f"{len(problems)} rows of {path} are not usable labels and were left out "
            f"(first: {where} {first.kind}: {first.message}); those frames need a label"
        )
    return rows, notes


def _proposals_from(items: Any, n: int) -> list[Proposal | None]:
    out: list[Proposal | None] = [None] * n
    if not isinstance(items, list) or len(items) != n:
        return out
    for i, item in enumerate(items):
        if item is not None:
            try:
                out[i] = Proposal.from_json(item)
            except (TypeError, ValueError):
                out[i] = None
    return out
