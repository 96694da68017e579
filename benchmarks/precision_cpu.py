"""Training speed of a profile's model on this CPU under fp32, bf16 and channels_last, side by side.

    .venv/bin/python benchmarks/precision_cpu.py [--profile cpu_small] [--profile quickstart]
        [--batch-size N] [--threads 2] [--rounds 5]

For each profile: the real model (`build_model`) at the profile's input and heatmap size and batch,
one training step = forward under autocast + the softmax loss in fp32 + backward + AdamW step, on a
fixed random batch; and inference = the forward alone in eval mode without gradients (what `tracknet
predict` runs per batch of windows). Variants run interleaved (round-robin, `--rounds` times after one warm-up each),
so a load spike hits all alike; the fastest step of each is reported as samples/s with the ratio to
fp32. This is what the family table of `training.precision: auto` (docs/training/losses.md) rests on.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from typing import Any


def variants(model: Any) -> dict[str, tuple[Any, Any]]:
    import torch

    nhwc = copy.deepcopy(model).to_channels_last()
    return {
        "fp32": (model, None),
        "bf16": (model, torch.bfloat16),
        "fp32 + channels_last": (nhwc, None),
        "bf16 + channels_last": (nhwc, torch.bfloat16),
    }


def measure(profile: str, batch_size: int | None, rounds: int) -> list[tuple[str, float, float]]:
    import torch

    from tracknet_cli.config.load import Selection, resolve
    from tracknet_cli.models import build_model
    from tracknet_cli.models.losses import build_loss

    config = resolve(Selection(profile=profile)).config
    d = config.data
    batch = batch_size or config.training.batch_size
    torch.manual_seed(0)
    model = build_model(config).train()
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, d.sequence_length, 3, d.input_height, d.input_width, generator=gen)
    targets = torch.zeros(batch, d.sequence_length, d.heatmap_height, d.heatmap_width)
    targets[:, :, d.heatmap_height // 2, d.heatmap_width // 3] = 1.0
    mask = torch.ones(batch, d.sequence_length, dtype=torch.bool)
    loss = build_loss("softmax")
    cases = variants(model)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-6) for name, (m, _) in cases.items()}

    def step(name: str) -> float:
        m, dtype = cases[name]
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = m(frames)
        loss(logits.float(), targets, mask).total.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def infer(name: str) -> float:
        m, dtype = cases[name]
        m.eval()
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            m(frames).float().softmax(-1)
        m.train()
        return time.perf_counter() - start

    for name in cases:
        step(name)  # warm-up
        infer(name)
    best = {name: float("inf") for name in cases}
    best_infer = dict(best)
    for _ in range(rounds):
        for name in cases:
            best[name] = min(best[name], step(name))
            best_infer[name] = min(best_infer[name], infer(name))
    print(
        f"\n{profile}: {config.model.backbone.type} + {config.model.decoder}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, input {d.input_width}x{d.input_height}, "
        f"heatmap {d.heatmap_width}x{d.heatmap_height}, T={d.sequence_length}, batch {batch}",
        flush=True,
    )
    return [(name, batch / best[name], batch / best_infer[name]) for name in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="append", help="profiles to measure (default: cpu_small and quickstart)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the profile's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch

    from tracknet_cli.inference.runtime import cpu_bf16_support

    torch.set_num_threads(args.threads)
    print(
        f"{os.cpu_count()} CPUs, {args.threads} torch threads, native bf16: {cpu_bf16_support().feature}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for profile in args.profile or ["cpu_small", "quickstart"]:
        rows = measure(profile, args.batch_size, args.rounds)
        base = rows[0][1]
        base_infer = rows[0][2]
        print("| variant | training samples/s | vs fp32 | inference windows/s | vs fp32 |\n|---|---|---|---|---|")
        for name, rate, infer in rows:
            print(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {infer:.1f} | {infer / base_infer:.2f}x |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
