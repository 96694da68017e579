"""The streaming prediction pipeline: decode → windows → batched forward → averaged heatmaps →
codec decode → tracking (predict.outputs writes the CSV and the overlay).

Three threads overlap the work, joined by bounded queues (PyAV decoding, swscale resizing, torch
and libx264 all release the GIL, so on two cores the model is not kept waiting for I/O; with the
model on the CPU the decode thread yields to it, see ``_yield_to_model``):

- *decode*: ``FrameSource.frames`` at the model's resized size (plus the overlay frame), and the
  scene-cut thumbnail difference;
- *infer*: ``inference.Engine.run`` (windows, the forward pass, averaging, ``Codec.decode``) and
  ``OnlineTracker``;
- the caller's thread consumes ``stream(...)`` (``predict.outputs.write_outputs`` writes CSV rows and encodes the
  overlay there).

Memory is bounded by the batch and window sizes: each queue holds about ``batch × stride + T``
frames, the scheduler and averager as many, the tracker ``TrackingConfig.max_delay`` rows; nothing
grows with the length of the input.

Frames are numbered internally in arrival order (a frame folder may skip an unreadable image); rows
carry the source's absolute frame numbers again on the way out.

Per frame, the engine's decoded peak and the tracker's row are both a ``tracking.BallPoint``; a
``Prediction`` adds what only the stream has: the image name, the overlay frame, and the peak beside the row.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from tracknet_cli.inference.engine import Engine
from tracknet_cli.predict.sources import FrameSource, Size
from tracknet_cli.predict.tracking import BallPoint, OnlineTracker, TrackingConfig, gray_thumbnail, scene_difference

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.data.geometry import Codec

_POLL_S = 0.1  # how often a blocked thread looks at the stop flag


@dataclass(frozen=True)
class Prediction:
    """One frame's outcome: its row (absolute frame number), image name, and overlay frame if asked."""

    row: BallPoint
    name: str | None = None
    overlay: Any = None  # yuv420p av.VideoFrame or RGB array at the overlay size, when requested
    peak: BallPoint | None = None  # the decoded heatmap peak before tracking (absolute frame number)


# ---------------------------------------------------------------- the stream
@dataclass
class _Decoded:
    seq: int  # arrival number: consecutive from 0
    index: int  # absolute frame number in the source
    image: np.ndarray | None  # model-size RGB (resized, not yet padded); dropped once windowed
    name: str | None
    overlay: Any
    scene_diff: float
    peak: BallPoint | None = None  # set once the engine has decoded this frame


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

    def emit(rows: Sequence[BallPoint]) -> bool:
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
                peak = BallPoint.from_peak(
                    fid, float(released.xy[k, 0]), float(released.xy[k, 1]), float(released.score[k])
                )
                waiting[fid].peak = peak
                if not emit(tracker.push(peak, waiting[fid].scene_diff)):
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
