"""Model proposals for every frame, computed in a background thread by predict's streaming pipeline.

`tracknet predict`'s `Tracker.stream` runs the model (the same engine, windows and tracking), so a
proposal is what predict would write for that frame. A proposal is *uncertain* (it comes first in
Shift+→) when:

- `score`: the heatmap peak is within `SCORE_MARGIN` of the detection threshold either way;
- `jump`: the peak passed the threshold but tracking rejected it (a jump beyond the gate that no
  later detections confirmed);
- `gap`: tracking filled the frame in between two detections (no detection of its own).

The session adds `track` (`state.reasons`): a ball far from where the frames around it put the ball.
"""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from tracknet_cli.label.state import Proposal, rounded

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.errors import Names
    from tracknet_cli.label.session import LabelSession
    from tracknet_cli.predict.pipeline import Prediction
    from tracknet_cli.predict.tracker import Tracker

SCORE_MARGIN = 0.15
BATCH_FRAMES = 8  # proposals handed to the session together (one revision for the page to fetch)


def classify(prediction: "Prediction", threshold: float, width: int, height: int) -> Proposal:
    """The proposal for one frame from predict's row and the raw peak behind it (see the module doc)."""
    row, peak = prediction.row, prediction.peak
    score = peak.score if peak is not None and math.isfinite(peak.score) else 0.0
    detected = peak is not None and math.isfinite(peak.x) and math.isfinite(peak.y) and score >= threshold
    reason = ""
    if row.visible and row.interpolated:
        reason = "gap"
    elif detected and not row.visible:
        reason = "jump"
    elif abs(score - threshold) < SCORE_MARGIN:
        reason = "score"
    if row.visible:
        x = rounded(min(max(row.x, 0.0), float(width)))
        y = rounded(min(max(row.y, 0.0), float(height)))
        return Proposal(1, x, y, score, reason)  # type: ignore[arg-type]
    return Proposal(0, None, None, score, reason)  # type: ignore[arg-type]


def model_key(path: Path) -> str:
    """Which weights made a set of proposals (their threshold is inside): cached ones are reused only
    for the same file content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def _source(session: "LabelSession"):  # -> FrameSource
    """Frames in the data layer's order and orientation (both readers share `media.video`)."""
    from tracknet_cli.predict.sources import ImageFolderSource, VideoSource

    media = session.media
    if media.kind == "frames":
        assert media.frame_paths is not None
        return ImageFolderSource(list(media.frame_paths), media.path, "frames")
    return VideoSource(media.path)


class Proposer:
    """Loads the model and runs it over INPUT once, in a thread, handing proposals to the session as
    they come (the page is up meanwhile: loading torch and the weights can take seconds)."""

    def __init__(
        self,
        session: "LabelSession",
        load: Callable[[], "Tracker"],
        name: str,
        key: str,
        on_failure: Callable[[str], None] | None = None,
        short: str = "",
        default: bool = False,
        names: "Names" = str,
    ) -> None:
        self.session, self.load, self.on_failure, self.names = session, load, on_failure, names
        self.name, self.key, self.short, self.default = name, key, short or name, default
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracknet-label-model", daemon=True)

    def start(self) -> None:
        info = self.session.model
        cached = info.status == "cached" and info.key == self.key
        info.name, info.key, info.short, info.default = self.name, self.key, self.short, self.default
        if cached and any(p is not None for p in self.session.proposals):
            info.status, info.done = "done", self.session.frames  # the sidecar holds this model's proposals
            return
        self.session.set_proposals([(i, None) for i in range(self.session.frames)])  # another model's: gone
        info.status, info.done = "loading", 0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        session, info = self.session, self.session.model
        media = session.media
        batch: list[tuple[int, Proposal | None]] = []
        try:
            tracker = self.load()
            threshold = tracker.threshold
            info.status = "running"
            stream: Iterator["Prediction"] = tracker.stream(_source(session))
            try:
                for prediction in stream:
                    batch.append((prediction.row.frame, classify(prediction, threshold, media.width, media.height)))
                    info.done += 1
                    if len(batch) >= BATCH_FRAMES:
                        session.set_proposals(batch)
                        batch = []
                    if self._stop.is_set():
                        return
            finally:
                stream.close()  # type: ignore[attr-defined]
            info.status = "done"  # before the last hand-over, whose save records the set as complete
            session.set_proposals(batch)
        except Exception as exc:  # noqa: BLE001 - shown on the page and on stderr; labelling goes on
            from tracknet_cli.errors import TrackNetError, first_line

            info.status = "failed"
            info.message = exc.line(self.names) if isinstance(exc, TrackNetError) else first_line(exc)
            if self.on_failure is not None:
                self.on_failure(info.message)
