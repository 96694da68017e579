"""One self-contained `.safetensors` checkpoint: weights plus everything needed to rebuild and use them.

Metadata (all strings, safetensors only stores strings):
  format                  "pt" (the safetensors convention for torch tensors)
  tracknet.format         FORMAT_VERSION; a reader refuses newer formats
  tracknet.version        package version that wrote it
  tracknet.config         the resolved TrackNetConfig as JSON
  tracknet.backbone_config  the transformers config of the backbone as JSON (rebuild needs no hub/folder)
  tracknet.normalization  {"mean": [...], "std": [...]} (non-persistent buffers are not in the state dict)
  tracknet.threshold      decode threshold chosen on validation
  tracknet.loss           name of the loss that trained it (decides logits → probabilities)
  tracknet.metrics        validation metrics as JSON
  tracknet.extra          caller's extra strings as JSON

`tracknet export` copies these `tracknet.*` strings unchanged into an ONNX model's metadata_props, so
`read_metadata` reads a `.onnx` file too (`load_model` refuses one: it holds an ONNX graph, no torch weights).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracknet_cli.atomic import atomic_path
from tracknet_cli.errors import ConfigError, InputError, UsageError, first_line

if TYPE_CHECKING:
    import torch

    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.models.heatmap_model import HeatmapModel
    from tracknet_cli.models.weights import Normalization

FORMAT_VERSION = 1
_PREFIX = "tracknet."


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about itself, without loading its weights."""

    config: "TrackNetConfig"
    normalization: "Normalization"
    threshold: float
    loss: str
    metrics: dict[str, float]
    version: str
    format_version: int
    backbone_config: dict[str, Any]
    extra: dict[str, str] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: "HeatmapModel",
    config: "TrackNetConfig",
    *,
    threshold: float,
    loss: str,
    metrics: dict[str, float],
    extra: dict[str, str] | None = None,
) -> Path:
    """Write the model and its metadata atomically (temp file in the same folder, then a rename)."""
    from safetensors.torch import save_file

    from tracknet_cli import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    metadata = {
        "format": "pt",
        f"{_PREFIX}format": str(FORMAT_VERSION),
        f"{_PREFIX}version": __version__,
        f"{_PREFIX}config": config.model_dump_json(),
        f"{_PREFIX}backbone_config": json.dumps(model.backbone.source_config, default=str),
        f"{_PREFIX}normalization": model.normalization.to_json(),
        f"{_PREFIX}threshold": repr(float(threshold)),
        f"{_PREFIX}loss": str(loss),
        f"{_PREFIX}metrics": json.dumps({k: float(v) for k, v in metrics.items()}),
        f"{_PREFIX}extra": json.dumps({str(k): str(v) for k, v in (extra or {}).items()}),
    }
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except Exception as exc:  # safetensors' own error type: the OS error is only in its text
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from exc
    return path


def is_onnx(path: str | Path) -> bool:
    """An ONNX model (`tracknet export`), run by an ONNX runtime, rather than a .safetensors checkpoint."""
    return Path(path).suffix.lower() == ".onnx"


def raw_metadata(path: str | Path) -> dict[str, str]:
    """The checkpoint's `tracknet.*` strings as written: what `tracknet export` copies into an ONNX model."""
    return {k: v for k, v in _raw_metadata(Path(path)).items() if k.startswith(_PREFIX)}


def _raw_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    if is_onnx(path):  # the same strings, in the ONNX model's metadata_props
        return onnx_metadata(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled headers
        raise InputError(f"{path} is not a readable .safetensors checkpoint ({first_line(exc)})") from exc


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX model's metadata_props (`read_metadata` parses the ``tracknet.*`` ones). Here rather than in
    inference/onnx.py, which imports this module: reading a checkpoint needs the `onnx` package only."""
    if importlib.util.find_spec("onnx") is None:
        raise UsageError(f"reading the ONNX model {path} needs onnx, which is not installed: pip install onnx")
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors
        raise InputError(f"{path} is not a readable ONNX model ({first_line(exc)})") from exc
    return {p.key: p.value for p in proto.metadata_props}


def _json_object(raw: dict[str, str], name: str, default: str | None = "{}") -> dict[str, Any]:
    """`tracknet.NAME` as the JSON object it must be (TypeError for a list, a number, ...)."""
    text = raw[f"{_PREFIX}{name}"] if default is None else raw.get(f"{_PREFIX}{name}", default)
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"{_PREFIX}{name} is a JSON {type(value).__name__}, not an object")
    return value


def read_metadata(path: str | Path) -> CheckpointMeta:
    """Parse and check a checkpoint's metadata; a missing, corrupt or incompatible file is an `InputError`."""
    from tracknet_cli.config.load import from_mapping
    from tracknet_cli.models.weights import Normalization

    path = Path(path)
    raw = _raw_metadata(path)
    if f"{_PREFIX}format" not in raw:
        kind = "an ONNX model" if is_onnx(path) else "a safetensors file"
        raise InputError(f"{path} is {kind} but not a TrackNet checkpoint (no tracknet metadata)")
    try:
        fmt = int(raw[f"{_PREFIX}format"])
    except ValueError as exc:
        raise InputError(f"{path}: unreadable checkpoint format {raw[f'{_PREFIX}format']!r}") from exc
    version = raw.get(f"{_PREFIX}version", "?")
    if fmt > FORMAT_VERSION:
        raise InputError(
            f"{path} was written by tracknet {version} in checkpoint format {fmt}; this version reads "
            f"up to format {FORMAT_VERSION}: upgrade tracknet-cli"
        )
    try:
        config = from_mapping(json.loads(raw[f"{_PREFIX}config"]))
        meta = CheckpointMeta(
            config=config,
            normalization=Normalization.from_json(raw[f"{_PREFIX}normalization"]),
            threshold=float(raw[f"{_PREFIX}threshold"]),
            loss=raw[f"{_PREFIX}loss"],
            metrics={k: float(v) for k, v in _json_object(raw, "metrics").items()},
            version=version,
            format_version=fmt,
            backbone_config=_json_object(raw, "backbone_config", None),
            extra=_json_object(raw, "extra"),
        )
    except ConfigError as exc:
        raise InputError(f"{path}: its embedded config does not fit this version of tracknet ({exc.line()})") from exc
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise InputError(f"{path}: incomplete or garbled TrackNet metadata ({type(exc).__name__}: {exc})") from exc
    if not 0.0 <= meta.threshold <= 1.0:  # NaN too: its own line, not one blaming a --threshold nobody passed
        raise InputError(
            f"{path}: the threshold in its metadata, {meta.threshold}, is not between 0 and 1 "
            "(the file is damaged or was edited)"
        )
    return meta


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape as the safetensors header states it (no tensor data is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except Exception as exc:
        raise InputError(f"{path}: cannot read the weights ({first_line(exc)})") from exc


def _fp32_size(shapes: "Any") -> str:
    size = sum(math.prod(s) for s in shapes) * 4
    return f"{size / 1e9:,.1f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"


def check_architecture(path: Path, config: "TrackNetConfig", backbone_config: dict[str, Any]) -> None:
    """The architecture the metadata describes, built on torch's meta device (shapes, no memory), against
    the tensors the header holds: a file whose metadata asks for a bigger (or another) model than its
    weights is refused before anything is allocated, so what a checkpoint can ask for is its own size."""
    import torch

    from tracknet_cli.models.registry import build_model

    try:
        with torch.device("meta"):
            built = build_model(config, backbone_config=backbone_config)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise InputError(
            f"{path}: its metadata describes no model this version can build ({type(exc).__name__}: {first_line(exc)})"
        ) from exc
    expected = {name: tuple(t.shape) for name, t in built.state_dict().items()}
    stored = _header_shapes(path)
    if expected == stored:
        return
    name = next(n for n in [*expected, *stored] if expected.get(n) != stored.get(n))
    raise InputError(
        f"{path}: the weights do not match the architecture in its own metadata (that asks for "
        f"{_fp32_size(expected.values())} of weights, the file holds {_fp32_size(stored.values())}; "
        f"first difference: {name} {expected.get(name, 'absent')} in the metadata, "
        f"{stored.get(name, 'absent')} in the file): it was not written by tracknet, or was edited"
    )


def load_model(path: str | Path, device: "str | torch.device" = "cpu") -> tuple["HeatmapModel", CheckpointMeta]:
    """Rebuild the architecture from the embedded configs (random init, never the hub), then load the
    weights strictly."""
    from tracknet_cli.models.registry import build_model

    path = Path(path)
    if is_onnx(path):
        raise InputError(
            f"{path} is an ONNX model: it holds no torch weights (run it with {{runtime}} onnxruntime "
            "or openvino, or give the .safetensors checkpoint it was exported from)",
            also=("runtime",),
        )
    meta = read_metadata(path)
    config = meta.config.model_copy(deep=True)
    config.model.backbone.pretrained = False
    check_architecture(path, config, meta.backbone_config)
    model = build_model(config, backbone_config=meta.backbone_config)
    load_weights(
        model,
        path,
        refuse=lambda first: InputError(
            f"{path}: the weights do not match the architecture in its own config (first mismatch: {first})"
        ),
    )
    model.set_normalization(meta.normalization)
    model.eval()
    return model.to(device), meta


def load_weights(model: "torch.nn.Module", path: Path, *, refuse: "Callable[[str], Exception]") -> None:
    """The one place a checkpoint's tensors go into a model: every name and shape must match (strict).
    An unreadable file is an `InputError`; a mismatch raises `refuse(first mismatching name)`."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors' own error types for a truncated or garbled file
        raise InputError(f"{path}: cannot read the weights ({first_line(exc)})") from exc
    own = model.state_dict()
    mismatched = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    mismatched += [k for k in state if k not in own]
    if mismatched:
        raise refuse(mismatched[0])
    model.load_state_dict(state, strict=True)


# ---------------------------------------------------------------- another model's weights (--init-from)
ARCHITECTURE_KEYS = ("data.sequence_length",)  # besides model.*: settings that change parameter shapes


def architecture_differences(ours: "TrackNetConfig", theirs: "TrackNetConfig") -> list[str]:
    """`key: theirs -> ours` for every model setting (and frames per window) that differs."""
    from tracknet_cli.config.load import flatten

    def shape_settings(config: "TrackNetConfig") -> dict[str, Any]:
        flat = {f"model.{k}": v for k, v in flatten(config.model.model_dump(mode="json")).items()}
        flat.pop("model.backbone.pretrained", None)  # where the weights came from, not their shapes
        flat.pop("model.backbone.freeze", None)
        # The scale the first convolution samples at, not a shape: a full-resolution model's weights
        # start a stride-2 one (how the real-time models were trained, docs/models/pretrained.md).
        flat.pop("model.unet.input_stride", None)
        flat.update({key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in ARCHITECTURE_KEYS})
        return flat

    a, b = shape_settings(theirs), shape_settings(ours)
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_init_from(config: "TrackNetConfig", path: Path, given: str | None = None) -> None:
    """Refuse `--init-from` weights of another architecture before a run directory is made. `given`: what
    the user typed (a model name such as `tennis`), named in the messages rather than the file it resolved to."""
    shown = given or path
    if is_onnx(path):
        raise InputError(
            f"{{init_from}} {shown} is an ONNX model: it holds no torch weights "
            "(give the .safetensors checkpoint it was exported from)",
            parameter="init_from",
            value=shown,
        )
    diffs = architecture_differences(config, read_metadata(path).config)
    if diffs:
        raise ConfigError(
            f"{{init_from}} {shown} was trained with other model settings ({'; '.join(diffs[:3])}): "
            f"use the same settings (e.g. --set {diffs[0].split(':')[0]}=...) or train from scratch",
            parameter="init_from",
            value=shown,
        )


def load_init_weights(model: "HeatmapModel", path: Path) -> None:
    """`--init-from`: copy a trained model's weights into this architecture (shapes checked again here)."""
    load_weights(
        model,
        path,
        refuse=lambda first: ConfigError(
            f"{{init_from}} {path} does not fit this model (first mismatch: {first})", parameter="init_from", value=path
        ),
    )
