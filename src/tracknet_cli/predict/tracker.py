"""The Python API of prediction: one checkpoint in, per-frame ball positions out.

    from tracknet_cli.predict.tracker import Tracker

    tracker = Tracker.from_pretrained("tennis")     # or "runs/quickstart/exp1", a .safetensors file, a hub id
    for row in tracker.track_video("match.mp4"):          # a BallPoint per decoded frame, in order
        if row.visible and not row.interpolated:
            print(row.frame, row.x, row.y, row.score)

``track_video`` and ``track_frames`` are generators: frames are decoded, batched and tracked while
you iterate, in background threads, with memory bounded by the batch and window size (an hour-long
video never sits in memory). Rows come out in frame order, a few frames behind the decoder (the
window overlap and the tracker's lookahead). ``tracknet predict`` is built on ``Tracker.stream``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from tracknet_cli.errors import UsageError
from tracknet_cli.inference.engine import Engine
from tracknet_cli.predict.pipeline import Prediction, stream
from tracknet_cli.predict.sources import DEFAULT_FPS, ArraySource, FrameSource, Size, open_source
from tracknet_cli.predict.tracking import BallPoint, TrackingConfig

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.inference.checkpoint import CheckpointMeta
    from tracknet_cli.pretrained.resolve import ResolvedCheckpoint


@dataclass
class Tracker:
    """A loaded model plus tracking settings. Build it with ``from_pretrained``."""

    engine: Engine
    tracking: TrackingConfig
    meta: "CheckpointMeta"

    @classmethod
    def from_pretrained(
        cls,
        name: "str | os.PathLike[str] | ResolvedCheckpoint | None" = None,
        device: str = "auto",
        batch_size: int | None = None,
        threshold: float | None = None,
        *,
        max_gap: int = 5,
        max_jump: float | None = None,
        track: bool = True,
        precision: str = "auto",
        window_stride: int | None = None,
        runtime: str = "auto",
    ) -> "Tracker":
        """Rebuild the model from the checkpoint alone (config, normalisation and threshold embedded).

        ``name``: a ready model (``tracknet models`` lists them: bundled, or from a ``$TRACKNET_MODELS_DIR``
        folder), a .safetensors (or exported .onnx) file, a run directory (its best weights), a runs folder
        (the newest run), or a Hugging Face repo id ``org/name[/file.safetensors][@revision]`` (fetched into
        the HF cache; offline it must be there); ``None``: the default model. It is resolved here, once
        (``pretrained.resolve.resolve_checkpoint``); a ``ResolvedCheckpoint`` (what the CLI resolved) is used as is.

        ``device``: auto | cpu | cuda | mps. ``batch_size``: windows per forward pass (None: 8 on a
        GPU, on a CPU 2 at 256x144 and 1 at 512x288: `default_batch`). ``threshold``: detection score (default: the
        checkpoint's, chosen on validation). ``max_gap``: longest run of frames filled in between
        detections; ``max_jump``: gate in source px per frame (default 10 % of the diagonal);
        ``track=False``: raw thresholded peaks. ``precision``: auto (bf16/fp16 on GPUs; on CPUs with
        native bf16 the family table training uses, e.g. bf16 + channels_last for the unet), fp32 or
        bf16. ``window_stride``: None follows the model (its ``data.inference_stride``); 1 averages
        every frame over the T windows that cover it, T predicts each frame once (T times cheaper).
        ``runtime``: torch, onnxruntime, openvino or auto (openvino on a CPU, torch on a GPU; a ``.onnx``
        file from ``tracknet export`` runs in an ONNX runtime): only the model's
        forward changes (docs/scripts/predict.md, "Runtimes and export").

        A missing, corrupt or incompatible checkpoint, or an unknown name (with suggestions), raises
        ``InputError``; an unavailable device ``ConfigError``; a runtime that is not installed ``UsageError``."""
        from tracknet_cli.inference.engine import load_engine
        from tracknet_cli.pretrained.resolve import ResolvedCheckpoint, default_checkpoint, resolve_checkpoint

        TrackingConfig.check_options(threshold, max_gap, max_jump)  # before the model loads
        if not isinstance(name, ResolvedCheckpoint):
            name = default_checkpoint() if name is None else resolve_checkpoint(name, parameter="model")
        engine, meta = load_engine(
            name.path, device=device, precision=precision, batch_size=batch_size, stride=window_stride, runtime=runtime
        )
        tracking = TrackingConfig(
            threshold=meta.threshold if threshold is None else float(threshold),
            max_gap=max_gap,
            max_jump=max_jump,
            enabled=track,
        )
        return cls(engine, tracking, meta)

    @property
    def threshold(self) -> float:
        return self.tracking.threshold

    @property
    def input_size(self) -> Size:
        return self.engine.input_size

    def stream(self, source: FrameSource, *, overlay_size: Size | None = None) -> Iterator[Prediction]:
        """``Prediction``s (row, image name, overlay frame at ``overlay_size`` if asked) for every frame
        ``source`` decodes; its ``report`` holds the decode counts afterwards."""
        return stream(source, self.engine, self.tracking, overlay_size=overlay_size)

    def track_video(self, path: str | Path, start: int = 0, end: int | None = None) -> Iterator[BallPoint]:
        """One row (``BallPoint``) per decoded frame of a video (also a frame folder or an image): absolute
        0-based frame numbers, ``end`` exclusive. Raises ``InputError`` for an unreadable input;
        a truncated file yields what decodes."""
        sources = open_source(path, start, end)
        if len(sources) != 1:
            raise UsageError(f"{path} is a folder of {len(sources)} videos; call track_video on each")
        return self._rows(sources[0])

    def track_frames(
        self, frames: Iterable[np.ndarray], *, first_frame: int = 0, fps: float = DEFAULT_FPS
    ) -> Iterator[BallPoint]:
        """One row (``BallPoint``) per frame of ``frames`` (uint8 RGB (H, W, 3), all one size), numbered from
        ``first_frame``. Any iterable works (a list, a generator reading a camera); it is consumed
        lazily, in a background thread."""
        return self._rows(ArraySource(frames, first=first_frame, fps=fps))

    def _rows(self, source: FrameSource) -> Iterator[BallPoint]:
        for prediction in self.stream(source):
            yield prediction.row
