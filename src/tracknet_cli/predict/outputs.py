"""Writing a prediction stream: the CSV and the overlay video as rows arrive, the summary line.

`write_outputs` consumes `pipeline.stream(...)` in the caller's thread. Ctrl-C or SIGTERM ends both
files on the same frame and keeps them; any other failure removes the unfinished files, and a full
disk is named with the space each output needed.
"""

from __future__ import annotations

import errno
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from tracknet_cli import stopping
from tracknet_cli.errors import Interrupted, RuntimeFailure
from tracknet_cli.predict.pipeline import Prediction
from tracknet_cli.predict.sources import FrameSource, Size
from tracknet_cli.predict.tracking import BallPoint

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.predict.writers import CsvFormat, CsvWriter, OverlayWriter


@dataclass
class PredictionSummary:
    """Counts for the final line: frames, detections, interpolated points, time."""

    frames: int = 0
    detections: int = 0
    interpolated: int = 0
    seconds: float = 0.0
    csv_path: Path | None = None
    video_path: Path | None = None
    warning: str | None = None  # the source's decode warning (truncated file, corrupt frames)

    def add(self, row: BallPoint) -> None:
        self.frames += 1
        if row.visible:
            if row.interpolated:
                self.interpolated += 1
            else:
                self.detections += 1

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.frames} frames, {self.detections} detections, {self.interpolated} interpolated, "
            f"{self.seconds:.1f} s, {self.fps:.1f} frames/s"
        )


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def _discard_all(exc: BaseException, writers: Sequence[Any], frames: int, source: FrameSource) -> RuntimeFailure | None:
    """Remove every unfinished file; for a full disk (or quota, or file size limit) also the one
    line naming the file, the free space and about how much the outputs need (None otherwise)."""
    written = sum(w.bytes_written for w in writers)  # before the temp files go
    for w in writers:
        w.discard()
    err = getattr(exc, "errno", None)
    if not isinstance(exc, OSError) or err not in _NO_SPACE:
        return None
    name = getattr(exc, "filename", None)
    target = next((w.path for w in writers if name is not None and str(getattr(w, "_tmp", "")) == str(name)), None)
    target = target or writers[-1].path
    total = source.expected_frames
    needed = written * (total / frames) if total and frames else written
    needed *= 2 if len(writers) > 1 else 1  # the overlay's index is moved to the front: a second copy
    try:
        free = shutil.disk_usage(Path(target).parent).free
    except OSError:
        free = 0
    what = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file size limit reached",
    }[err]
    # Part way through, the rate so far extrapolates; failing as the files close, only a bound is known.
    midway = bool(total) and frames < (total or 0)
    need = f"about {_size(needed)}" if midway and needed > free * 1.1 else f"more than {_size(max(free, written))}"
    return RuntimeFailure(
        f"{what} while writing {target} after {frames} frames: {_size(free)} free there "
        f"(the unfinished files removed), {need} needed; free some space or write elsewhere "
        "({video_path}/{csv_path})",
        also=("video_path", "csv_path"),
    )


def _finish(csv_writer: Any, video: Any, summary: PredictionSummary, source: FrameSource) -> None:
    """Move both files into place (the overlay first: draining the encoder and moving its index to
    the front need the most space; a CSV is only moved into place once its overlay is). On failure
    neither is kept."""
    writers = [w for w in (csv_writer, video) if w is not None]
    try:
        summary.video_path = video.close() if video is not None else None
        summary.csv_path = csv_writer.close()
    except BaseException as exc:
        failure = _discard_all(exc, writers, summary.frames, source)
        if summary.video_path is not None and summary.csv_path is None:
            Path(summary.video_path).unlink(missing_ok=True)  # no overlay without its CSV
        if failure is not None:
            raise failure from exc
        raise


def _open_writers(
    source: FrameSource,
    csv_path: Path,
    video_path: Path | None,
    *,
    csv_format: "CsvFormat",
    trail: int,
    scale: float,
    overwrite: bool,
) -> tuple["CsvWriter", "OverlayWriter | None"]:
    """The CSV writer and, with ``video_path``, the overlay writer; when the second cannot start, the
    first's temp file goes too."""
    from tracknet_cli.predict.writers import CsvWriter, OverlayWriter

    with ExitStack() as setup:
        csv_writer = CsvWriter(csv_path, fmt=csv_format, overwrite=overwrite)
        setup.callback(csv_writer.discard)
        video = None
        if video_path is not None:
            video = OverlayWriter(
                video_path,
                fps=source.info.rate,
                source_size=source.info.size,
                scale=scale,
                trail=trail,
                overwrite=overwrite,
            )
            setup.callback(video.discard)
        setup.pop_all()  # from here on the outcome decides: close (done or interrupted) or discard (failed)
    return csv_writer, video


def _write_rows(
    rows: Iterator[Prediction],
    csv_writer: "CsvWriter",
    video: "OverlayWriter | None",
    summary: PredictionSummary,
    stop: stopping.Stop,
    *,
    began: float,
    on_row: Callable[[PredictionSummary], None] | None,
) -> None:
    """Each prediction's CSV row and overlay frame, until the stream ends or a stop is asked for
    (checked between frames); the stream is closed either way."""
    try:
        for p in rows if not stop.requested else ():
            csv_writer.write(p.row, p.name)
            if video is not None:
                # Draw in place on frames nobody else holds (decoded RGB arrays are ours);
                # Pillow's read-only arrays are copied.
                in_place = isinstance(p.overlay, np.ndarray) and p.overlay.flags.writeable
                video.write(p.overlay, p.row, copy=not in_place)
            summary.add(p.row)
            if on_row is not None:
                summary.seconds = time.perf_counter() - began
                on_row(summary)
            if stop.requested:
                break
    finally:
        rows.close()  # type: ignore[attr-defined]


def write_outputs(
    predictions: Callable[[Size | None], Iterator[Prediction]],
    source: FrameSource,
    *,
    csv_path: Path,
    video_path: Path | None,
    csv_format: "CsvFormat" = "default",
    trail: int = 10,
    overlay_scale: float = 1.0,
    overwrite: bool = False,
    on_row: Callable[[PredictionSummary], None] | None = None,
) -> PredictionSummary:
    """Write the CSV (and the overlay when ``video_path``) as predictions arrive.

    ``predictions(overlay_size)`` starts the stream (``Tracker.stream`` bound to ``source``), asked
    for overlay frames at the writer's size. Ctrl-C stops after the current frame, finalises both
    files (same number of rows and frames) and raises ``Interrupted``; any other failure removes
    the unfinished files. An existing output is refused unless ``overwrite``."""
    from tracknet_cli.predict.writers import refuse_existing

    refuse_existing((csv_path, video_path), overwrite)  # both, before either writer makes a temp file
    summary = PredictionSummary()
    began = time.perf_counter()
    interrupted = False
    # Ctrl-C, or SIGTERM (`kill PID`, `timeout 600 tracknet predict ...`), is checked between frames,
    # so the CSV and the overlay end on the same frame and both are kept. Deferred from before the
    # writers claim their files until both are final and the threads joined: never raised while a
    # writer is being set up or in the middle of the cleanup (that left temp files behind, or
    # PyAV/torch threads running and the process aborted).
    with stopping.deferred(stopping.Stop()) as stop:
        csv_writer, video = _open_writers(
            source, csv_path, video_path, csv_format=csv_format, trail=trail, scale=overlay_scale, overwrite=overwrite
        )
        writers = [w for w in (csv_writer, video) if w is not None]
        try:
            rows = predictions(video.frame_size if video is not None else None)
            _write_rows(rows, csv_writer, video, summary, stop, began=began, on_row=on_row)
        except KeyboardInterrupt:  # outside the main thread no handler defers it
            interrupted = True
        except BaseException as exc:
            failure = _discard_all(exc, writers, summary.frames, source)
            if failure is not None:
                raise failure from exc
            raise
        summary.seconds = time.perf_counter() - began
        _finish(csv_writer, video, summary, source)
        interrupted = interrupted or stop.requested
    if interrupted:
        kept = " and ".join(str(p) for p in (summary.csv_path, summary.video_path) if p is not None)
        raise Interrupted(f"interrupted after {summary.frames} frames of {source.info.path}; kept {kept}")
    summary.warning = source.report.warning()
    return summary
