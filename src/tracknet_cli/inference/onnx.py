"""ONNX: `tracknet export`, and the ONNX runtimes that `predict`, `eval` and `label --runtime` run the model in.

The graph (`export_onnx`): input ``frames`` uint8 (B, T, Hi, Wi, 3) at the model canvas (data.input_height x
input_width), B dynamic; inside it /255, the permute to (B, T, 3, Hi, Wi), the model's own normalisation and
forward; outputs ``logits`` float32 (B, T, Hh, Wh) and, for a model with a no-ball head, ``no_ball`` (B, T).
Written by torch's TorchScript exporter (``dynamo=False``, opset 17), which needs the ``onnx`` package (not
onnxscript). The checkpoint's ``tracknet.*`` metadata go unchanged into the model's metadata_props, so
``checkpoint.read_metadata`` reads a ``.onnx`` (through ``checkpoint.onnx_metadata``) as it reads a
``.safetensors`` (config, threshold, normalisation, loss, metrics, version) without torch weights.

Only the forward moves: the engine keeps the windows, padding, probabilities and decoding in torch and hands
an `OnnxModel` the uint8 windows as they are (`Engine.forward`). The runtimes run fp32 on the CPU.

`--runtime` (`choose_runtime`): ``torch``; ``onnxruntime`` or ``openvino`` (a ``.safetensors`` checkpoint is
exported in memory first, about a second for the quickstart model); ``auto`` on the CPU: openvino (a
dependency: benchmarks/predict_speed.py measured it fastest, 1.5x torch fp32 on a plain AVX2 CPU and ahead
of torch bf16 where bf16 is native), else onnxruntime when it is installed and torch would run fp32, else
torch; on a GPU torch. A ``.onnx`` file under ``auto`` runs in openvino, else onnxruntime. Training's
validation always runs torch.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from tracknet_cli.choices import EXPORT_FORMATS, RUNTIMES, check
from tracknet_cli.errors import InputError, RuntimeFailure, UsageError, first_line

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tracknet_cli.inference.checkpoint import CheckpointMeta

OPSET = 17
INPUT = "frames"
LOGITS, NO_BALL = "logits", "no_ball"
ONNX_RUNTIMES = ("onnxruntime", "openvino")
# What each ONNX runtime imports (`onnx` reads the metadata and lets torch export).
_NEEDS = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx"), "export": ("onnx",)}
# How to install each module: openvino and onnx are dependencies, onnxruntime the `onnxruntime` extra.
_INSTALL = {
    "onnxruntime": "pip install 'tracknet-cli[onnxruntime]'",
    "openvino": "pip install openvino",
    "onnx": "pip install onnx",
}


class ExportFailed(RuntimeFailure):
    """torch could not export this model to ONNX (exit 1)."""


def missing(what: str) -> str | None:
    """The first module ``what`` (onnxruntime, openvino, export) needs that is not installed, or None."""
    for module in _NEEDS[what]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def require(what: str, who: str, *, parameter: str | None = None) -> None:
    """`UsageError` (exit 2, one line saying what to pip install) when ``what`` is not installed; ``who``
    may name ``parameter`` as a placeholder (`errors`)."""
    module = missing(what)
    if module is not None:
        raise UsageError(f"{who} needs {module}, which is not installed: {_INSTALL[module]}", parameter=parameter)


# ---------------------------------------------------------------- export
def export_onnx(model: Any, metadata: dict[str, str]) -> bytes:
    """A `HeatmapModel` (fp32, CPU, eval) as ONNX bytes with ``metadata`` in its metadata_props (see the
    module docstring)."""
    import torch

    require("export", "ONNX export")
    import onnx

    class Graph(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, frames: torch.Tensor) -> Any:
            x = frames.permute(0, 1, 4, 2, 3).float() / 255.0
            return self.inner(x, with_no_ball=True) if self.inner.no_ball is not None else self.inner(x)

    hi, wi = model.input_size
    outputs = [LOGITS, NO_BALL] if model.no_ball is not None else [LOGITS]
    sample = torch.zeros((2, model.frames, hi, wi, 3), dtype=torch.uint8)  # batch 2: no size-1 broadcast baked in
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter(
                "ignore"
            )  # TracerWarnings on shape checks (the canvas is fixed) and the exporter's deprecation
            torch.onnx.export(
                Graph(model.float().eval()),
                (sample,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in [INPUT, *outputs]},
            )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; one line says which model failed
        raise ExportFailed(f"torch could not export this model to ONNX ({first_line(exc)})") from exc
    proto = onnx.load_model_from_string(buffer.getvalue())
    shapes = {LOGITS: ("batch", model.frames, *model.heatmap_size), NO_BALL: ("batch", model.frames)}
    for output in proto.graph.output:  # the exporter leaves the heatmap size symbolic after a resample; it is fixed
        for dim, size in zip(output.type.tensor_type.shape.dim, shapes[output.name]):
            if isinstance(size, int):
                dim.dim_value = size
            else:
                dim.dim_param = size
    from tracknet_cli import __version__

    proto.producer_name, proto.producer_version = "tracknet-cli", __version__
    proto.doc_string = (
        f"TrackNet heatmap model: {INPUT} uint8 (B, {model.frames}, {hi}, {wi}, 3) RGB -> "
        f"{', '.join(outputs)} float32; tracknet.* metadata as in the .safetensors checkpoint"
    )
    del proto.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


@dataclass(frozen=True)
class Exported:
    """What `export_checkpoint` wrote."""

    path: Path
    bytes: int
    input_shape: tuple[str | int, ...]  # ("B", T, Hi, Wi, 3)
    outputs: tuple[str, ...]


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, *, fmt: str = "onnx", overwrite: bool = False
) -> Exported:
    """Export a `.safetensors` checkpoint to ``out`` (atomically). Refused before any work, exit 2: an unknown
    format, an output not named .onnx, an existing output without ``overwrite``, the input itself (always)."""
    from tracknet_cli.atomic import atomic_write_bytes, first_overwritten_input, refuse_special
    from tracknet_cli.inference.checkpoint import is_onnx, load_model, raw_metadata

    check(fmt, EXPORT_FORMATS, "format", UsageError)
    checkpoint, out = Path(checkpoint), Path(out)
    if is_onnx(checkpoint):
        raise UsageError(f"{checkpoint} is already an ONNX model; export reads a .safetensors checkpoint")
    if not is_onnx(out):
        raise UsageError(
            f"{{out}} {out}: name the ONNX model NAME.onnx (tracknet runs a .onnx file in an ONNX runtime)",
            parameter="out",
            value=out,
        )
    if first_overwritten_input([out], [checkpoint]) is not None:
        raise UsageError(
            f"{out} is the checkpoint being exported; name another output ({{overwrite}} never replaces an input)",
            parameter="out",
            value=out,
            also=("overwrite",),
        )
    if out.is_dir():
        raise UsageError(f"{out} is a folder; name the .onnx file to write")
    refuse_special(out)  # a FIFO, a device, a link: never replaced
    if out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists; pass {{overwrite}} to replace it or choose another name", parameter="overwrite"
        )
    require("export", "tracknet export")
    model, meta = load_model(checkpoint, device="cpu")
    data = export_onnx(model, raw_metadata(checkpoint))
    atomic_write_bytes(out, data)
    outputs = (LOGITS, NO_BALL) if model.no_ball is not None else (LOGITS,)
    return Exported(
        out, len(data), ("B", model.frames, meta.config.data.input_height, meta.config.data.input_width, 3), outputs
    )


# ---------------------------------------------------------------- runtimes
@dataclass(frozen=True)
class RuntimeChoice:
    """Which runtime runs the forward, and why (printed by predict)."""

    name: str  # torch | onnxruntime | openvino
    reason: str


def choose_runtime(
    runtime: str, checkpoint: Path, *, device: str, precision: str, device_type: str, torch_precision: str
) -> RuntimeChoice:
    """The runtime ``--runtime`` means for ``checkpoint`` (see the module docstring). ``device`` and ``precision``
    are as asked; ``device_type`` and ``torch_precision`` what torch would use (`pick_device`, `resolve_precision`).
    A runtime that is not installed, or one asked for with a device or precision it cannot run, is a `UsageError`."""
    from tracknet_cli.inference.checkpoint import is_onnx

    check(runtime, RUNTIMES, "runtime", UsageError)
    onnx_file = is_onnx(checkpoint)
    if runtime == "torch":
        if onnx_file:
            raise UsageError(
                f"{checkpoint} is an ONNX model: run it with {{runtime}} onnxruntime, openvino or auto "
                "({runtime} torch needs the .safetensors checkpoint)",
                parameter="runtime",
                value=runtime,
            )
        return RuntimeChoice("torch", "asked for")
    if runtime == "auto" and not onnx_file:
        if device_type != "cpu":
            return RuntimeChoice("torch", f"auto: torch on {device_type}")
        if precision == "bf16":
            return RuntimeChoice("torch", "auto: bf16 precision runs in torch")
        if missing("openvino") is None:
            return RuntimeChoice("openvino", "auto: openvino on the CPU")
        if torch_precision != "fp32":
            return RuntimeChoice("torch", f"auto: torch runs {torch_precision} on this CPU")
        if missing("onnxruntime") is not None:
            return RuntimeChoice("torch", f"auto: neither openvino nor {missing('onnxruntime')} is installed")
        return RuntimeChoice("onnxruntime", "auto: onnxruntime on the CPU")
    if runtime == "auto":
        name = "openvino" if missing("openvino") is None or missing("onnxruntime") is not None else "onnxruntime"
        require(name, f"the ONNX model {checkpoint}")
    else:
        name = runtime
        require(name, f"{{runtime}} {name}", parameter="runtime")
    if device not in ("auto", "cpu"):
        raise UsageError(
            f"{{runtime}} {name} runs on the CPU here: use {{device}} cpu, or {{runtime}} torch on {device}",
            parameter="runtime",
            value=name,
            also=("device",),
        )
    if precision == "bf16":
        raise UsageError(
            f"{{precision}} bf16 needs {{runtime}} torch ({name} runs the model in fp32)",
            parameter="precision",
            value=precision,
            also=("runtime",),
        )
    return RuntimeChoice(name, "asked for" if runtime != "auto" else "auto: an ONNX model")


class OnnxModel:
    """An ONNX runtime session with the call contract `engine.forward_logits` uses: attributes ``frames`` and
    ``no_ball`` (not None when the graph has that output), called with float (B, T, 3, Hi, Wi) frames in [0, 1]
    (quantised back to uint8, exact for frames that came from uint8). ``run_uint8`` takes the uint8 (B, T, Hi, Wi, 3)
    windows as they are: what `Engine.forward` passes, with no float copy."""

    def __init__(
        self, run: Callable[[np.ndarray], list[np.ndarray]], *, runtime: str, frames: int, no_ball: bool
    ) -> None:
        self._run = run
        self.runtime = runtime
        self.frames = int(frames)
        self.no_ball: object | None = True if no_ball else None

    def run_uint8(self, windows: np.ndarray) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        import torch

        outputs = self._run(np.ascontiguousarray(windows, dtype=np.uint8))
        logits = torch.from_numpy(np.asarray(outputs[0], dtype=np.float32))
        return logits, torch.from_numpy(np.asarray(outputs[1], dtype=np.float32)) if self.no_ball is not None else None

    def __call__(self, frames: "torch.Tensor", *, with_no_ball: bool = False) -> Any:
        import torch

        x = frames.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
        logits, no_ball = self.run_uint8(x.cpu().numpy())
        if not with_no_ball:
            return logits
        if no_ball is None:
            raise ValueError("this model has no 'no ball' logit: build it with model.no_ball_logit=true")
        return logits, no_ball

    def eval(self) -> "OnnxModel":
        return self

    def train(self, mode: bool = True) -> "OnnxModel":
        if mode:
            raise ValueError(f"an ONNX model ({self.runtime}) runs inference only")
        return self


def load_onnx_model(checkpoint: Path, meta: "CheckpointMeta", runtime: str, *, threads: int | None = None) -> OnnxModel:
    """``checkpoint`` (a .onnx file, or a .safetensors exported in memory) in ``runtime`` on the CPU, ``threads``
    intra-op threads (None: torch's, `torch.get_num_threads()`)."""
    import torch

    from tracknet_cli.inference.checkpoint import is_onnx, load_model, raw_metadata

    require(runtime, f"{{runtime}} {runtime}", parameter="runtime")
    if is_onnx(checkpoint):
        source: bytes | Path = checkpoint
    else:
        model, _ = load_model(checkpoint, device="cpu")
        source = export_onnx(model, raw_metadata(checkpoint))
        del model
    threads = threads or torch.get_num_threads()
    try:
        run, inputs, outputs = (_onnxruntime if runtime == "onnxruntime" else _openvino)(source, threads)
    except Exception as exc:  # noqa: BLE001 - each runtime has its own error types
        raise InputError(f"{checkpoint}: {runtime} cannot load the ONNX model ({first_line(exc)})") from exc
    frames = inputs[1] if isinstance(inputs[1], int) else meta.config.data.sequence_length
    return OnnxModel(run, runtime=runtime, frames=frames, no_ball=NO_BALL in outputs)


def _onnxruntime(
    source: bytes | Path, threads: int
) -> tuple[Callable[[np.ndarray], list[np.ndarray]], list[Any], list[str]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(
        source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"]
    )
    outputs = [o.name for o in session.get_outputs()]
    return (lambda x: session.run(outputs, {INPUT: x})), list(session.get_inputs()[0].shape), outputs


@functools.lru_cache(maxsize=1)
def _openvino_core() -> Any:
    """One OpenVINO Core per process, as OpenVINO recommends: a process that made one per model (the
    tests, a script loading many trackers) crashed with SIGSEGV at a later fork."""
    import openvino as ov

    return ov.Core()


def _openvino(
    source: bytes | Path, threads: int
) -> tuple[Callable[[np.ndarray], list[np.ndarray]], list[Any], list[str]]:
    core = _openvino_core()
    model = core.read_model(source if isinstance(source, bytes) else str(source))
    # f32: OpenVINO would otherwise pick bf16 on CPUs that have it, and differ from torch's fp32.
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    ports = list(compiled.outputs)

    def run(x: np.ndarray) -> list[np.ndarray]:
        result = request.infer({0: x})
        return [np.array(result[p], copy=True) for p in ports]  # the request reuses its output buffers

    shape = [d.get_length() if d.is_static else None for d in compiled.inputs[0].get_partial_shape()]
    return run, shape, [p.get_any_name() for p in ports]
