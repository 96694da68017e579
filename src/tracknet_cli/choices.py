"""Every closed set of names a user chooses from, written once: one `Literal` per kind.

The config schema annotates its fields with these Literals (so pydantic validates a profile or
`--set` value, and `config.load` suggests the closest name); the owners key their registries on them
(`training.metrics.PROTOCOLS`, `models.losses.LOSSES`, `models.registry.BACKBONES` and `DECODERS`,
checked by `registry`); the CLI builds its help text and checks its options from the same tuples
(`cli.options.choice`). Adding a protocol, loss or backbone is one name here and one registry entry
beside the code that implements it; `registry` refuses a mismatch when the owner's module is imported.

Pure Python: `tracknet --help` and the schema import it without torch or numpy.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, get_args

from tracknet_cli.errors import ConfigError, TrackNetError

ProtocolName = Literal["tracknet", "v2", "wasb"]
"""How a frame is scored (training.metrics.PROTOCOLS; docs/training/metrics.md)."""
LossName = Literal["mse", "focal", "wbce", "softmax"]
"""models.losses.LOSSES (each loss also maps its logits to probabilities: `Loss.probabilities`)."""
BackboneName = Literal["dinov3_vit", "convnext", "dinov3_convnext", "unet"]
"""models.registry.BACKBONES (each entry carries its family's traits)."""
DecoderName = Literal["upsampling", "fpn", "unet"]
"""models.registry.DECODERS."""
PrecisionSetting = Literal["auto", "fp32", "bf16", "fp16"]
"""training.precision (inference.runtime.resolve_precision)."""
InferencePrecision = Literal["auto", "fp32", "bf16"]
"""eval / predict --precision and the Python API: fp16 comes only from `auto` on GPUs."""
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
"""training.device, eval / predict --device (inference.runtime.pick_device)."""
CsvFormat = Literal["default", "tracknet"]
"""predict --csv-format (predict.writers.CsvWriter)."""
RuntimeName = Literal["auto", "torch", "onnxruntime", "openvino"]
"""predict / eval / label --runtime: what runs the model's forward (inference.onnx.choose_runtime)."""
ExportFormat = Literal["onnx"]
"""export --format (inference.onnx.export_checkpoint)."""
SchedulerName = Literal["cosine", "plateau", "none"]
"""training.scheduler (training.callbacks.build_schedule)."""
BestMetric = Literal["f1", "precision", "recall", "accuracy", "ap", "val_loss", "l2_median", "l2_mean", "rmse"]
"""training.best_metric (training.callbacks.BestCheckpoint; losses and errors: lower is better)."""

PROTOCOL_NAMES: tuple[str, ...] = get_args(ProtocolName)
LOSS_NAMES: tuple[str, ...] = get_args(LossName)
BACKBONE_NAMES: tuple[str, ...] = get_args(BackboneName)
DECODER_NAMES: tuple[str, ...] = get_args(DecoderName)
PRECISIONS: tuple[str, ...] = get_args(PrecisionSetting)
INFERENCE_PRECISIONS: tuple[str, ...] = get_args(InferencePrecision)
DEVICES: tuple[str, ...] = get_args(DeviceName)
CSV_FORMATS: tuple[str, ...] = get_args(CsvFormat)
RUNTIMES: tuple[str, ...] = get_args(RuntimeName)
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

V = TypeVar("V")


def near(value: object, names: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The names closest to a mistyped `value` (difflib), best first: every "did you mean" asks here."""
    return difflib.get_close_matches(str(value), list(names), n=n, cutoff=cutoff)


def not_one_of(what: str, value: object, names: tuple[str, ...] | list[str]) -> str:
    """The one message every bad choice gets: `protocol 'v3' is not one of tracknet, v2, wasb; did you mean 'v2'?`."""
    close = near(value, names)
    tail = f"; did you mean '{close[0]}'?" if close else ""
    return f"{what} {value!r} is not one of {', '.join(names)}{tail}"


def check(value: str, names: tuple[str, ...], what: str, error: type[TrackNetError] = ConfigError) -> str:
    """`value` when it is one of `names`, else `error` with `not_one_of`'s message."""
    if value not in names:
        raise error(not_one_of(what, value, names))
    return value


def listed(names: tuple[str, ...]) -> str:
    """`a | b | c` for help text."""
    return " | ".join(names)


def registry(entries: Mapping[str, V], kind: Any) -> dict[str, V]:
    """A registry keyed by exactly the names of the Literal `kind`, in its order (refused otherwise,
    when the owner's module is imported: a name added to one place only never ships)."""
    names = get_args(kind)
    if set(entries) != set(names):
        raise RuntimeError(
            f"registry keys {sorted(entries)} differ from the choices {sorted(names)} (tracknet_cli.choices)"
        )
    return {name: entries[name] for name in names}
