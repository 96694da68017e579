"""The streaming prediction pipeline: decode → windows → batched forward → averaged heatmaps →
codec decode → tracking → CSV + overlay.

Three threads overlap the work, joined by bounded queues (PyAV decoding, swscale resizing, torch
and libx264 all release the GIL, so on two cores the model is not kept waiting for I/O; with the
model on the CPU the decode thread yields to it, see ``_yield_to_model``):

- *decode*: ``FrameSource.frames`` at the model's resized size (plus the overlay frame), and the
  scene-cut thumbnail difference;
- *infer*: ``inference.Engine.run`` (windows, the forward pass, averaging, ``Codec.decode``) and
  ``OnlineTracker``;
- the caller's thread consumes ``stream(...)`` (``write_outputs`` writes CSV rows and encodes the
  overlay there).

Memory is bounded by the batch and window sizes: each queue holds about ``batch × stride + T``
frames, the scheduler and averager as many, the tracker ``TrackingConfig.max_delay`` rows; nothing
grows with the length of the input.

Frames are numbered internally in arrival order (a frame folder may skip an unreadable image); rows
carry the source's absolute frame numbers again on the way out.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import queue
import shutil
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from tracknet_cli import stopping
from tracknet_cli.errors import Interrupted, RuntimeFailure, UsageError
from tracknet_cli.inference.engine import Engine
from tracknet_cli.predict.sources import DEFAULT_FPS, DecodeReport, FrameSource, Size, SourceFrame, SourceInfo
from tracknet_cli.predict.tracking import (
    FrameResult,
    OnlineTracker,
    TrackingConfig,
    TrackRow,
    gray_thumbnail,
    scene_difference,
)

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.data.geometry import Codec
    from tracknet_cli.predict.writers import CsvFormat, CsvWriter, OverlayWriter

_POLL_S = 0.1  # how often a blocked thread looks at the stop flag


@dataclass(frozen=True)
class Prediction:
    """One frame's outcome: its row (absolute frame number), image name, and overlay frame if asked."""

    row: TrackRow
    name: str | None = None
    overlay: Any = None  # yuv420p av.VideoFrame or RGB array at the overlay size, when requested
    peak: FrameResult | None = None  # the decoded heatmap peak before tracking (absolute frame number)


# ---------------------------------------------------------------- the stream
@dataclass
class _Decoded:
    seq: int  # arrival number: consecutive from 0
    index: int  # absolute frame number in the source
    image: np.ndarray | None  # model-size RGB (resized, not yet padded); dropped once windowed
    name: str | None
    overlay: Any
    scene_diff: float
    peak: FrameResult | None = None  # set once the engine has decoded this frame


class _End:
    """Queue sentinel: the producer finished (``error`` set when it failed)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _put(q: "queue.Queue[Any]", item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: "queue.Queue[Any]", stop: threading.Event) -> Any:
    while True:
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            if stop.is_set():
                return _End()


def _yield_to_model() -> None:
    """Lower this thread's scheduling priority (Linux: nice is per thread, and FFmpeg's threads
    started from here inherit it).

    When the forward pass runs on the CPU it uses every core in an OpenMP team, and a decode thread
    that preempts one member stalls the others at the next barrier. At the lowest priority it runs
    in the gaps the team leaves (between batches, while the queue is short), and the bounded queue
    keeps it from falling behind: 1080p end-to-end medians went from 56 to 65 frames/s on 2 cores
    (benchmarks/predict_speed.py, docs/scripts/predict.md)."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError:  # not permitted in some sandboxes: the default priority only costs speed
        pass


def _decode_worker(
    source: FrameSource,
    size: Size,
    overlay_size: Size | None,
    out: "queue.Queue[Any]",
    stop: threading.Event,
    shares_cpu: bool,
) -> None:
    previous: np.ndarray | None = None
    seq = 0
    try:
        if shares_cpu:
            _yield_to_model()
        for frame in source.frames(sizes=[size], overlay_size=overlay_size, decoder_threads=not shares_cpu):
            thumb = gray_thumbnail(frame.images[0])
            item = _Decoded(
                seq, frame.index, frame.images[0], frame.name, frame.overlay, scene_difference(previous, thumb)
            )
            previous = thumb
            seq += 1
            if not _put(out, item, stop):
                return
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        _put(out, _End(exc), stop)
        return
    _put(out, _End(), stop)


class _Stopped(Exception):
    """The consumer closed the stream: leave without running the remaining windows."""


def _inbox_frames(
    inbox: "queue.Queue[Any]", stop: threading.Event, waiting: dict[int, _Decoded]
) -> Iterator[np.ndarray]:
    """The decoded frames, in arrival order, for the engine; a decode error is raised here."""
    while True:
        item = _get(inbox, stop)
        if stop.is_set():
            raise _Stopped
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return
        waiting[item.seq] = item
        image, item.image = item.image, None  # the engine's scheduler holds it as long as a window needs it
        yield image


def _infer_worker(
    engine: Engine,
    codec: "Codec",
    tracking: TrackingConfig,
    frame_size: Size,
    inbox: "queue.Queue[Any]",
    out: "queue.Queue[Any]",
    stop: threading.Event,
) -> None:
    tracker = OnlineTracker(tracking, frame_size)
    waiting: dict[int, _Decoded] = {}  # frames whose row has not left the tracker yet

    def emit(rows: Sequence[TrackRow]) -> bool:
        for row in rows:
            item = waiting.pop(row.frame)
            peak = dataclasses.replace(item.peak, frame=item.index) if item.peak is not None else None
            if not _put(
                out, Prediction(dataclasses.replace(row, frame=item.index), item.name, item.overlay, peak), stop
            ):
                return False
        return True

    try:
        for released in engine.run(_inbox_frames(inbox, stop, waiting), codec):
            for k, fid in enumerate(released.frame_ids):
                result = FrameResult(
                    fid,
                    float(released.xy[k, 0]),
                    float(released.xy[k, 1]),
                    float(released.score[k]),
                    waiting[fid].scene_diff,
                )
                waiting[fid].peak = result
                if not emit(tracker.push(result)):
                    return
        if emit(tracker.flush()):
            _put(out, _End(), stop)
    except _Stopped:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        _put(out, _End(exc), stop)


def stream(
    source: FrameSource, engine: Engine, tracking: TrackingConfig, *, overlay_size: Size | None = None
) -> Iterator[Prediction]:
    """Predictions for every frame of ``source`` in frame order, computed in background threads.

    Closing the generator early (``break``, an exception or Ctrl-C in the caller) stops and joins
    the threads. An error in a thread is raised here. ``source.report`` holds the decode counts
    once the generator is exhausted."""
    codec = engine.codec(source.info.size)
    depth = engine.batch_size * engine.stride + engine.window
    decoded: queue.Queue[Any] = queue.Queue(maxsize=depth)
    results: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_decode_worker,
            name="tracknet-decode",
            daemon=True,
            args=(source, codec.resized_size, overlay_size, decoded, stop, engine.device.type == "cpu"),
        ),
        threading.Thread(
            target=_infer_worker,
            name="tracknet-infer",
            daemon=True,
            args=(engine, codec, tracking, source.info.size, decoded, results, stop),
        ),
    ]
    for t in threads:
        t.start()
    try:
        while True:
            item = results.get()  # interruptible by Ctrl-C on POSIX
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        for t in threads:  # each checks `stop` between frames and batches: a forward pass at most
            t.join(timeout=120.0)


# ---------------------------------------------------------------- arrays as a source
class ArraySource(FrameSource):
    """Frames the caller already holds (uint8 RGB (H, W, 3), all one size), numbered from ``first``.

    The first frame is read up front to learn the size; the iterable is consumed once."""

    def __init__(
        self, frames: Iterable[np.ndarray], *, first: int = 0, fps: float = DEFAULT_FPS, name: str = "frames"
    ) -> None:
        super().__init__(0, None)
        from fractions import Fraction

        self._it = iter(frames)
        try:
            head = next(self._it)
        except StopIteration:
            raise UsageError("track_frames got no frames") from None
        self._head = _check_array(head, None)
        self._first = first
        h, w = self._head.shape[:2]
        rate = Fraction(fps).limit_denominator(1001)
        self.info = SourceInfo(Path(name), "frames", (w, h), float(fps), rate, None)
        self.report = DecodeReport(Path(name))

    def frames(
        self, sizes: Sequence[Size | None] = (None,), overlay_size: Size | None = None, *, decoder_threads: bool = True
    ) -> Iterator[SourceFrame]:
        full = self.info.size
        targets = [full if s is None else (int(s[0]), int(s[1])) for s in sizes]
        index = self._first
        for array in itertools.chain([self._head], self._it):
            array = _check_array(array, full)
            self.report.decoded += 1
            images = tuple(_resize(array, t) for t in targets)
            overlay = _resize(array, overlay_size) if overlay_size is not None else None
            self.report.yielded += 1
            yield SourceFrame(index, images, overlay=overlay)
            index += 1
        self.report.finished = True


def _check_array(array: Any, size: Size | None) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise UsageError(f"frames must be uint8 RGB arrays of shape (H, W, 3), got {a.dtype} {tuple(a.shape)}")
    if size is not None and (a.shape[1], a.shape[0]) != size:
        raise UsageError(f"every frame must be {size[0]}x{size[1]} like the first one, got {a.shape[1]}x{a.shape[0]}")
    return np.ascontiguousarray(a)


def _resize(array: np.ndarray, size: Size) -> np.ndarray:
    if (array.shape[1], array.shape[0]) == tuple(size):
        return array
    import av

    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
    return frame.reformat(width=int(size[0]), height=int(size[1]), format="rgb24").to_ndarray()


# ---------------------------------------------------------------- writing
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

    def add(self, row: TrackRow) -> None:
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
        f"(the unfinished files removed), {need} needed; free some space or write elsewhere (--out/--csv)"
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
