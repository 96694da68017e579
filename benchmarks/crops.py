"""Whole frames vs training crops: samples/s of the model's training step and of the data loader, side by side.

For each profile (quickstart, cpu_small) and each training-sample shape (the whole input, the crops
of docs/training/crops.md), times forward + backward + AdamW step of the real model on random input,
and the training dataset's `__getitem__` (augmentation included) on synthetic clips. One run, one
table of ratios. `--plain-cpu` emulates a CPU without native bf16 (set before torch loads).

    .venv/bin/python benchmarks/crops.py [--plain-cpu] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PLAIN_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
CASES = {"quickstart": [None, (96, 96), (64, 64)], "cpu_small": [None, (128, 128), (96, 96)]}


def model_rate(config, shape: tuple[int, ...], steps: int) -> float:
    import torch

    from tracknet_cli.models import build_model

    model = build_model(config).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.rand(shape)
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        model(x).float().mean().backward()
        opt.step()
        opt.zero_grad()
    return shape[0] * steps / (time.perf_counter() - start)


def data_rate(config, samples: int) -> float:
    from tracknet_cli.data.datasets import build_datasets

    train, _, _ = build_datasets(config)
    for i in range(8):
        train[(0, i)]  # decode / cache warm-up
    start = time.perf_counter()
    for i in range(samples):
        train[(1, (i * 7919) % len(train))]
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain-cpu", action="store_true", help="AVX2 kernels, fp32 (a CPU without native bf16)")
    parser.add_argument("--steps", type=int, default=5)
    opts = parser.parse_args()
    if opts.plain_cpu and any(os.environ.get(k) != v for k, v in PLAIN_CPU.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **PLAIN_CPU})

    import torch

    from tracknet_cli.config.load import Selection, resolve
    from tracknet_cli.data.synth import synthesize

    root = Path(tempfile.mkdtemp(prefix="tracknet-crops-")) / "synth"
    synthesize(root, games=2, clips=3, frames=40, size=(512, 288), seed=0)
    print(
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, fp32, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'profile':<11} {'samples':<12} {'model samples/s':>16} {'ratio':>6} {'data samples/s':>15} {'ratio':>6}")
    for profile, crops in CASES.items():
        base_model = base_data = None
        for crop in crops:
            sets = [f"data.root={root}", "data.cache=off", "data.split.val_ratio=0.0"]
            sets += (
                [f"data.augment.crop_width={crop[0]}", f"data.augment.crop_height={crop[1]}"]
                if crop
                else ["data.augment.crop_width=null", "data.augment.crop_height=null"]
            )
            config = resolve(Selection(profile=profile, sets=tuple(sets)), environ={}).config
            d = config.data
            w, h = crop or (d.input_width, d.input_height)
            m = model_rate(config, (config.training.batch_size, d.sequence_length, 3, h, w), opts.steps)
            r = data_rate(config, 64)
            base_model, base_data = base_model or m, base_data or r
            label = f"{w}x{h}" + ("" if crop else " whole")
            print(f"{profile:<11} {label:<12} {m:>16.1f} {m / base_model:>5.1f}x {r:>15.1f} {r / base_data:>5.1f}x")


if __name__ == "__main__":
    main()
