"""The precision switch (inference/runtime.py) and bf16 vs fp32 agreement on the real quickstart model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tracknet_cli.config.load import Selection, resolve
from tracknet_cli.errors import ConfigError
from tracknet_cli.inference.runtime import (
    CpuBf16,
    cpu_bf16_support,
    kernels_below_avx512,
    prepare_model_precision,
    resolve_precision,
)
from tracknet_cli.models import build_model
from tracknet_cli.models.losses import build_loss

CPU = torch.device("cpu")
NATIVE = CpuBf16(True, "avx512_bf16")
NONE = CpuBf16(False, "none")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def quickstart(*sets: str):
    """The quickstart profile shrunk to a 64x32 input (still the tiny ConvNeXt + FPN)."""
    small = ("data.input_width=64", "data.input_height=32", "data.heatmap_width=32", "data.heatmap_height=16")
    return resolve(Selection(profile="quickstart", sets=small + sets)).config


# ---------------------------------------------------------------- the switch
def test_forced_values_on_cpu() -> None:
    fp32 = resolve_precision("fp32", CPU, cpu_bf16=NATIVE)
    assert (fp32.name, fp32.dtype, fp32.channels_last) == ("fp32", None, False)
    bf16 = resolve_precision("bf16", CPU, cpu_bf16=NATIVE)
    assert (bf16.name, bf16.dtype) == ("bf16", torch.bfloat16)
    emulated = resolve_precision("bf16", CPU, cpu_bf16=NONE)
    assert emulated.dtype == torch.bfloat16 and "no native bf16" in emulated.reason
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)


def test_auto_on_cpu_follows_capability_then_family_table() -> None:
    assert resolve_precision("auto", CPU, model_family="convnext", cpu_bf16=NONE).name == "fp32"
    picked = resolve_precision("auto", CPU, model_family="convnext", cpu_bf16=NATIVE)
    assert picked.name == "bf16" and "table" in picked.reason and "avx512_bf16" in picked.reason
    assert resolve_precision("auto", CPU, model_family="dinov3_convnext", cpu_bf16=True).name == "bf16"
    assert resolve_precision("auto", CPU, model_family="dinov3_vit", cpu_bf16=NATIVE).name == "fp32"
    unet = resolve_precision("auto", CPU, model_family="unet", cpu_bf16=NATIVE)
    assert (unet.name, unet.channels_last) == ("bf16", True) and "channels_last" in unet.describe()
    assert resolve_precision("auto", CPU, model_family="unet", cpu_bf16=NONE).channels_last is False
    assert resolve_precision("auto", CPU, model_family=None, cpu_bf16=NATIVE).name == "fp32"
    assert "auto: " in picked.describe() and picked.describe().startswith("bf16 (")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    support = cpu_bf16_support()
    assert support.feature in ("amx_bf16", "avx512_bf16", "none") and support.native == (support.feature != "none")
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse avx512f avx512_bf16\n")
    if kernels_below_avx512():  # an AVX2 CPU, or emulated: the flags do not count
        assert cpu_bf16_support(info) == CpuBf16(False, "none")
    elif not support.native:  # torch found nothing, so the flags decide
        assert cpu_bf16_support(info) == CpuBf16(True, "avx512_bf16")


def test_auto_in_training_follows_the_table_and_repeats() -> None:
    """`tracknet train` decides by the family table, so two runs with one seed compute alike."""
    config = quickstart("training.batch_size=2")
    first = prepare_model_precision(build_model(config), config, CPU, precision="auto")
    second = prepare_model_precision(build_model(config), config, CPU, precision="auto")
    assert first == second
    if not cpu_bf16_support().native:
        assert first.name == "fp32"
        return
    assert (first.name, first.channels_last) == ("bf16", False)
    assert "(table)" in first.reason


# ---------------------------------------------------------------- no loss of correctness
@pytest.mark.parametrize("loss_name", ["softmax", "focal", "wbce", "mse"])
def test_bf16_and_fp32_losses_agree_on_a_fixed_batch(loss_name: str) -> None:
    """The quickstart model (random weights) on one fixed batch: the bf16 forward changes the loss by < 1 %
    (measured: < 0.2 %)."""
    config = quickstart(f"training.loss={loss_name}")
    torch.manual_seed(0)
    model = build_model(config).eval()
    gen = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 3, 3, 32, 64, generator=gen)
    targets = torch.zeros(2, 3, 16, 32)
    targets[0, :, 5, 9] = 1.0  # a ball in the first window, the second has none
    targets[0, :, 5, 8] = targets[0, :, 5, 10] = 0.5
    mask = torch.tensor([[True, True, True], [True, False, True]])
    loss = build_loss(loss_name)
    with torch.no_grad():
        fp32 = loss(model(frames).float(), targets, mask).total
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(frames)
        bf16 = loss(logits.float(), targets, mask).total
    assert logits.dtype == torch.bfloat16  # autocast really ran the model in bf16
    assert fp32.dtype == bf16.dtype == torch.float32
    assert torch.isfinite(bf16) and fp32.item() > 0
    assert bf16.item() == pytest.approx(fp32.item(), rel=1e-2)


def test_channels_last_gives_the_same_logits() -> None:
    config = quickstart()
    torch.manual_seed(0)
    model = build_model(config).eval()
    frames = torch.rand(2, 3, 3, 32, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(frames)
        fast = model.to_channels_last()(frames)
    assert torch.allclose(plain, fast, atol=1e-4)


def test_training_channels_last_applies_whatever_precision_chose() -> None:
    """`training.channels_last: true` forces NHWC in training and dry-run alike, even in fp32."""
    config = quickstart("training.precision=fp32", "training.channels_last=true")
    model = build_model(config)
    choice = prepare_model_precision(model, config, CPU)
    assert (choice.name, choice.channels_last) == ("fp32", False)
    assert model._channels_last and model.head.logits.weight.is_contiguous(memory_format=torch.channels_last)
    plain = build_model(quickstart("training.precision=fp32"))
    prepare_model_precision(plain, quickstart("training.precision=fp32"), CPU)
    assert not plain._channels_last


def test_the_precision_choices_are_one_list() -> None:
    from typing import get_args

    from tracknet_cli.config.schema import TrainingConfig
    from tracknet_cli.inference.runtime import INFERENCE_PRECISIONS, PRECISIONS

    assert get_args(TrainingConfig.model_fields["precision"].annotation) == PRECISIONS
    assert set(INFERENCE_PRECISIONS) < set(PRECISIONS)


def test_kernels_capped_at_avx2_count_as_no_native_bf16() -> None:
    """ATEN_CPU_CAPABILITY=avx2 (how docs emulate a plain laptop CPU): auto must pick fp32 in train, eval, predict."""
    import os
    import subprocess
    import sys

    code = (
        "from tracknet_cli.inference.runtime import cpu_bf16_support, resolve_precision; import torch; "
        "c = resolve_precision('auto', torch.device('cpu'), model_family='unet'); "
        "print(cpu_bf16_support().native, c.name, c.reason)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "False fp32 auto: this CPU has no native bf16 (AVX512-BF16 / AMX)"
