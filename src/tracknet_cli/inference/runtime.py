"""Where and in which precision a model runs: `pick_device`, and the autocast dtype (and memory
format) of `training.precision`, `eval --precision` and `predict --precision`.

- `fp32`: no autocast.
- `bf16`: bf16 autocast on any device. On a CPU without native bf16 (no AVX512-BF16 / AMX) it is
  emulated and slow, and the reason says so.
- `fp16`: CUDA only (a `ConfigError` elsewhere).
- `auto`: CUDA → bf16 when the GPU supports it, else fp16; MPS → fp32; CPU → fp32 unless the CPU
  has native bf16 *and* the model family runs faster in bf16, by the table in `models.registry.BACKBONES` (measured,
  docs/training/losses.md), not by timing the model: a timing probe answers differently under different
  load, and a seed must repeat a run exactly.

Only the model's forward runs under autocast: losses cast logits to fp32 and metrics run in numpy,
so bf16 changes the rounding inside the network, never how a result is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracknet_cli.choices import DEVICES, INFERENCE_PRECISIONS, PRECISIONS, check  # noqa: F401 (the precision lists, re-exported)
from tracknet_cli.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tracknet_cli.config.schema import TrackNetConfig

PrecisionName = Literal["fp32", "bf16", "fp16"]  # what a choice resolves to


def pick_device(name: str) -> "torch.device":
    """`auto`: CUDA, then MPS, then CPU. Asking for a device that is not there is a config error."""
    import torch

    check(name, DEVICES, "device")
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for but no CUDA device is available (use auto or cpu)")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError("device mps asked for but MPS is not available (use auto or cpu)")
    return torch.device(name)


@dataclass(frozen=True)
class CpuBf16:
    """Whether this CPU computes bf16 natively, and which feature says so."""

    native: bool
    feature: str  # "amx_bf16", "avx512_bf16" or "none"


@dataclass(frozen=True)
class PrecisionChoice:
    """What a run uses, and why (the reason goes to the log)."""

    name: PrecisionName
    channels_last: bool
    reason: str

    @property
    def dtype(self) -> "torch.dtype | None":
        """The autocast dtype, None for fp32."""
        import torch

        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    def describe(self) -> str:
        return f"{self.name}{' + channels_last' if self.channels_last else ''} ({self.reason})"


def kernels_below_avx512() -> bool:
    """torch's CPU kernels stop below AVX-512: an AVX2 CPU, or ``ATEN_CPU_CAPABILITY=avx2``."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability()).upper() in ("AVX2", "DEFAULT", "AVX", "SSE")


def cpu_bf16_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuBf16:
    """Native bf16 from torch's CPU feature checks, else the kernel's CPU flags (Linux).

    None when torch's kernels are capped below AVX-512 on x86 (``ATEN_CPU_CAPABILITY=avx2``, how a CPU
    without native bf16 is emulated): the hardware has bf16, but the kernels torch runs do not use it."""
    import torch

    if kernels_below_avx512():
        return CpuBf16(False, "none")
    checks = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for feature, fn in checks:
        check = getattr(torch.cpu, fn, None)
        try:
            if check is not None and check():
                return CpuBf16(True, feature)
        except RuntimeError:  # pragma: no cover - torch built without the check
            pass
    try:
        flags = set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        flags = set()
    for feature in ("amx_bf16", "avx512_bf16"):
        if feature in flags:
            return CpuBf16(True, feature)
    return CpuBf16(False, "none")


def resolve_precision(
    precision: str,
    device: Any,
    *,
    model_family: str | None = None,
    cpu_bf16: CpuBf16 | bool | None = None,
) -> PrecisionChoice:
    """The precision `precision` means on `device` (see the module docstring).

    `cpu_bf16` overrides the CPU check (tests, or a user who knows better).
    """
    import torch

    kind = getattr(device, "type", str(device))
    if precision == "fp32":
        return PrecisionChoice("fp32", False, "asked for")
    if precision == "fp16":
        if kind != "cuda":
            raise ConfigError("training.precision=fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        return PrecisionChoice("fp16", False, "asked for")
    check(precision, PRECISIONS, "precision")
    support = None
    if kind == "cpu":
        support = (
            cpu_bf16
            if isinstance(cpu_bf16, CpuBf16)
            else (CpuBf16(bool(cpu_bf16), "given") if cpu_bf16 is not None else cpu_bf16_support())
        )
    if precision == "bf16":
        if support is not None and not support.native:
            return PrecisionChoice("bf16", False, "asked for; this CPU has no native bf16, so it is emulated and slow")
        return PrecisionChoice("bf16", False, "asked for")
    # auto
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", False, "auto: the GPU supports bf16")
        return PrecisionChoice("fp16", False, "auto: the GPU has no bf16")
    if kind != "cpu":
        return PrecisionChoice("fp32", False, f"auto: fp32 on {kind}")
    assert support is not None
    if not support.native:
        return PrecisionChoice("fp32", False, "auto: this CPU has no native bf16 (AVX512-BF16 / AMX)")
    from tracknet_cli.models.registry import BACKBONES

    family = model_family or "unknown"
    traits = BACKBONES.get(family)
    if traits is not None and traits.bf16_on_cpu:
        cl = traits.channels_last_on_cpu
        return PrecisionChoice(
            "bf16",
            cl,
            f"auto: {support.feature} CPU and {family} runs faster in bf16{' + channels_last' if cl else ''} (table)",
        )
    return PrecisionChoice("fp32", False, f"auto: {family} stays fp32 on CPU (table)")


def prepare_model_precision(
    model: Any, config: "TrackNetConfig", device: Any, *, precision: str | None = None
) -> PrecisionChoice:
    """Resolve the precision for `model` on `device` (`auto`: the family table) and apply channels_last if chosen
    or configured.

    Call after the model is on its device and before the optimizer sees its parameters' layout.
    """
    choice = resolve_precision(precision or config.training.precision, device, model_family=config.model.backbone.type)
    use_channels_last(model, config, choice)
    return choice


def use_channels_last(model: Any, config: "TrackNetConfig", choice: PrecisionChoice) -> None:
    """NHWC when the precision choice or `training.channels_last` asks for it (once; calling again is a no-op)."""
    if (choice.channels_last or config.training.channels_last) and not model._channels_last:
        model.to_channels_last()
