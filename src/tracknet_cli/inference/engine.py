"""The one place a trained model runs: uint8 frames in, per-frame probabilities and points out.

frames → windows of T frames every ``stride`` frames (``WindowScheduler``) → /255, pad to the
canvas, forward under the chosen autocast → probabilities (the training loss's ``Loss.probabilities``,
the no-ball logit applied) → every frame's maps averaged over the windows that covered it
(``HeatmapAverager``) → ``Codec.decode``.
What leaves it is ``Released``, a batch: its maps on the device (validation's overlays) and its decoded
points as arrays (evaluation scores them so; predict makes each frame a ``predict.tracking.BallPoint``).

Training's validation (which calibrates the threshold stored in a checkpoint), ``tracknet eval``,
``tracknet predict`` and the Python API all run this code with the same defaults
(the model's ``data.inference_stride``: 1 averages every frame over the T windows that cover it, T
runs each frame once), so the threshold and the F1 a checkpoint reports are those of what predict writes.
``--runtime onnxruntime|openvino`` (and ``auto`` on a CPU, `inference.onnx`) swaps only the model's forward
for an ONNX runtime session; validation always runs torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from tracknet_cli.choices import INFERENCE_PRECISIONS, RUNTIMES, check
from tracknet_cli.errors import UsageError
from tracknet_cli.inference.windows import HeatmapAverager, WindowBatch, WindowScheduler
from tracknet_cli.models.losses import loss_class

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tracknet_cli.config.schema import DataConfig
    from tracknet_cli.data.geometry import Codec
    from tracknet_cli.inference.checkpoint import CheckpointMeta

Size = tuple[int, int]
DEFAULT_BATCH = 8  # windows per forward pass on a GPU (and MPS)
# On a CPU, as many windows per pass as fit in this many input pixels (2 at 256x144, 1 at 512x288):
# larger batches allocate activations above glibc's mmap threshold, which come back from the kernel as
# fresh zeroed pages on every pass; at 512x288, batch 8 ran at 0.48x the frames/s of batch 1 on a
# 2-core AVX2 CPU, at 256x144 batch 2 was fastest (benchmarks/cpu_batch.py, docs/scripts/predict.md).
CPU_PIXELS_PER_PASS = 2 * 256 * 144

OnBatch = Callable[[WindowBatch, "torch.Tensor", "torch.Tensor | None"], None]


def default_batch(device: Any, input_size: Size, accelerator: int = DEFAULT_BATCH) -> int:
    """Windows per forward pass when none is asked for: ``accelerator`` on a GPU, on a CPU the most
    that keep one pass within ``CPU_PIXELS_PER_PASS`` input pixels (at least 1)."""
    import torch

    if torch.device(device).type != "cpu":
        return accelerator
    return max(1, CPU_PIXELS_PER_PASS // (input_size[0] * input_size[1]))


def forward_logits(model: Any, frames: Any) -> tuple[Any, Any]:
    """(logits, no_ball_logit or None) as float32: models built with `model.no_ball_logit` return both."""
    core = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if getattr(core, "no_ball", None) is not None:
        logits, no_ball = model(frames, with_no_ball=True)
        return logits.float(), no_ball.float()
    return model(frames).float(), None


@dataclass
class Released:
    """Frames whose every window has run, in order: averaged maps and decoded points."""

    frame_ids: list[int]  # 0-based arrival numbers
    maps: "torch.Tensor"  # (k, Hh, Wh) float32 probabilities on the engine's device
    xy: np.ndarray  # (k, 2) float64 source pixels
    score: np.ndarray  # (k,) float64 peak probability


@dataclass
class Engine:
    """A loaded model and how to run it: windows of uint8 frames in, per-cell probabilities out."""

    model: Any  # HeatmapModel in eval mode, on ``device``
    loss_name: str  # the loss that trained the model (`training.loss`): its `probabilities` map the logits
    input_size: Size  # (Wi, Hi) model canvas
    heatmap_size: Size  # (Wh, Hh)
    sigma: float  # the codec's Gaussian sigma in heatmap cells (its soft-argmax window)
    window: int  # T frames per window
    device: Any
    autocast_dtype: Any = None  # the dtype the forward runs under autocast in; None: fp32
    batch_size: int = DEFAULT_BATCH
    stride: int = 1  # frames between window starts
    no_ball: bool = False  # the model has a "no ball" logit (used by the softmax probabilities)
    runtime: str = "torch"  # what runs the forward: torch, or an ONNX runtime (`inference.onnx.OnnxModel`)
    runtime_note: str = ""  # why, when the user should know (auto fell back to torch)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(
                f"{{batch_size}} {self.batch_size} must be at least 1", parameter="batch_size", value=self.batch_size
            )
        if not 1 <= self.stride <= self.window:
            raise UsageError(f"window stride {self.stride} must be between 1 and the window length {self.window}")

    @classmethod
    def for_model(
        cls,
        model: Any,
        data: "DataConfig",
        *,
        loss_name: str,
        device: Any,
        autocast_dtype: Any = None,
        batch_size: int | None = None,
        accelerator_batch: int = DEFAULT_BATCH,
        stride: int | None = None,
    ) -> "Engine":
        """An engine for a model built from ``data`` (canvas, heatmap size, sigma, T); ``batch_size``
        None: ``default_batch`` for ``device``, ``accelerator_batch`` on a GPU; ``stride`` None: the
        model's ``data.inference_stride``."""
        core = getattr(model, "module", model)
        size = (data.input_width, data.input_height)
        if batch_size is None:
            batch_size = default_batch(device, size, accelerator_batch)
        return cls(
            model=model,
            loss_name=loss_name,
            input_size=size,
            heatmap_size=(data.heatmap_width, data.heatmap_height),
            sigma=data.sigma,
            window=int(getattr(core, "frames", data.sequence_length)),
            device=device,
            autocast_dtype=autocast_dtype,
            batch_size=batch_size,
            stride=data.inference_stride if stride is None else stride,
            no_ball=getattr(core, "no_ball", None) is not None,
            runtime=getattr(core, "runtime", "torch"),
        )

    def codec(self, source_size: Size) -> "Codec":
        """The geometry between a source of ``source_size`` and this model's canvas and heatmaps."""
        from tracknet_cli.data.geometry import Codec

        return Codec(
            source_size=source_size, input_size=self.input_size, heatmap_size=self.heatmap_size, sigma=self.sigma
        )

    def forward(self, windows: np.ndarray) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """uint8 (B, T, h, w, 3) frames no larger than the canvas (padded right/bottom with black, as
        in training) → float32 (logits, no-ball logit or None) on ``device``. An ONNX runtime's model
        (``run_uint8``) takes the padded uint8 windows as they are: its graph does the /255 and the permute."""
        import torch

        h, w = windows.shape[2:4]
        wi, hi = self.input_size
        if (w, h) != (wi, hi):  # black, as training pads: 0 after /255, for torch and the ONNX graph alike
            windows = np.pad(windows, ((0, 0), (0, 0), (0, hi - h), (0, wi - w), (0, 0)))
        run_uint8 = getattr(self.model, "run_uint8", None)
        if run_uint8 is not None:
            return run_uint8(windows)
        x = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device, non_blocking=True)
        x = x.permute(0, 1, 4, 2, 3).float().div_(255.0).contiguous()
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
            ),
        ):
            return forward_logits(self.model, x)

    def probabilities(self, windows: np.ndarray) -> "torch.Tensor":
        """uint8 (B, T, h, w, 3) → float32 (B, T, Hh, Wh) probabilities on ``device``."""
        logits, no_ball = self.forward(windows)
        return self._probabilities(logits, no_ball)

    def _probabilities(self, logits: "torch.Tensor", no_ball: "torch.Tensor | None") -> "torch.Tensor":
        """Per-cell probabilities `(…,Hh,Wh)` of logits, as the loss that trained the model maps them
        (`models.losses.Loss.probabilities`; an unknown loss name is a `ConfigError`)."""
        import torch

        with torch.inference_mode():
            return loss_class(self.loss_name).probabilities(logits, no_ball)

    def run(
        self, frames: Iterable[np.ndarray], codec: "Codec", *, on_batch: OnBatch | None = None
    ) -> Iterator[Released]:
        """Every frame of ``frames`` (uint8 (h, w, 3), numbered from 0) once, in order, as soon as no
        later window can cover it. ``on_batch(batch, logits, no_ball)`` sees each forward pass (the
        validation loss). Memory: about ``batch_size * stride + T`` frames and maps."""
        scheduler = WindowScheduler(self.window, self.batch_size, self.stride)
        averager = HeatmapAverager()

        def forward(batches: list[WindowBatch]) -> Iterator[Released]:
            for batch in batches:
                logits, no_ball = self.forward(batch.frames)
                if on_batch is not None:
                    on_batch(batch, logits, no_ball)
                done = averager.add(batch, self._probabilities(logits, no_ball))
                if done:
                    yield self._decode(done, codec)

        for i, frame in enumerate(frames):
            yield from forward(scheduler.push(i, frame))
        yield from forward(scheduler.flush())
        rest = averager.flush()
        if rest:
            yield self._decode(rest, codec)

    def _decode(self, done: list[tuple[int, Any]], codec: "Codec") -> Released:
        import torch

        maps = torch.stack([hm for _, hm in done])
        xy, score = codec.decode(maps)
        return Released([fid for fid, _ in done], maps, xy.double().cpu().numpy(), score.double().cpu().numpy())


def load_engine(
    path: str | Path,
    *,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int | None = None,
    stride: int | None = None,
    runtime: str = "auto",
) -> tuple[Engine, "CheckpointMeta"]:
    """A checkpoint file (.safetensors, or .onnx from `tracknet export`) on ``device`` under ``precision``
    in ``runtime``, ready to run. ``path`` is a file: a model name, run directory or hub id is resolved
    once, by the caller, with ``pretrained.resolve.resolve_checkpoint``.

    ``precision`` ``auto`` follows the family table, as training does: on a CPU with native bf16 the U-Net runs
    3.5x and the quickstart ConvNeXt 1.2x faster per window (benchmarks/precision_cpu.py). ``runtime``: torch,
    onnxruntime, openvino or auto (`inference.onnx.choose_runtime`); only the model's forward changes.
    A Ctrl-C or SIGTERM while it loads is acted on once it has loaded (``stopping.held``)."""
    from tracknet_cli import stopping

    with stopping.held():
        return _load_engine(Path(path), device, precision, batch_size, stride, runtime)


def _load_engine(
    path: Path, device: str, precision: str, batch_size: int | None, stride: int | None, runtime: str
) -> tuple[Engine, "CheckpointMeta"]:
    from tracknet_cli.inference.checkpoint import load_model, read_metadata
    from tracknet_cli.inference.onnx import choose_runtime
    from tracknet_cli.inference.runtime import pick_device, resolve_precision

    check(precision, INFERENCE_PRECISIONS, "precision", UsageError)
    check(runtime, RUNTIMES, "runtime", UsageError)
    meta = read_metadata(path)
    dev = pick_device(device)
    choice = resolve_precision(precision, dev, model_family=meta.config.model.backbone.type)
    plan = choose_runtime(
        runtime, path, device=device, precision=precision, device_type=dev.type, torch_precision=choice.name
    )
    settings = dict(loss_name=meta.loss, batch_size=batch_size, stride=stride)
    note = ""
    if plan.name != "torch":
        from tracknet_cli.inference.onnx import ExportFailed, load_onnx_model

        try:
            onnx_model = load_onnx_model(path, meta, plan.name)
        except ExportFailed as exc:
            if runtime != "auto":
                raise ExportFailed(
                    f"{exc.message}; run it with {{runtime}} torch", parameter="runtime", also=exc.parameters
                ) from exc
            note = f"runtime auto: {exc.render()}; running it in torch"
        else:
            import torch

            return Engine.for_model(onnx_model, meta.config.data, device=torch.device("cpu"), **settings), meta
    model, meta = load_model(path, device=dev)
    if choice.channels_last:
        model.to_channels_last()
    engine = Engine.for_model(model, meta.config.data, device=dev, autocast_dtype=choice.dtype, **settings)
    engine.runtime_note = note
    return engine, meta
