"""Inference speed on a CPU by batch size (windows per forward pass), side by side in one run.

    .venv/bin/python benchmarks/cpu_batch.py [--model tennis] [--profile quickstart] [--batch 1 --batch 8 ...]
        [--frames 48] [--rounds 3] [--threads 2]

For each model (a bundled model or checkpoint by ``--model``; a profile's architecture with random
weights by ``--profile``: speed does not depend on the weights) the inference engine that `predict`,
`eval` and validation share (`Engine.run`: stride-1 windows averaged over T, decode) runs over
``--frames`` random frames at the model's input size, once per batch size, interleaved over
``--rounds`` rounds after a warm-up; the fastest round is reported as frames/s with its ratio to the
first batch size, beside the minor page faults per frame (`getrusage`), under the precision `auto`
picks on this CPU. Large batches on a CPU allocate activations above glibc's mmap threshold (32 MiB
at most), which come back as fresh zeroed pages from the kernel on every forward pass: the page-fault
column shows that cost, which is why the CPU default is one window per pass (docs/scripts/predict.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any


def engine_for(model: str | None, profile: str | None, batch: int) -> tuple[Any, str]:
    import torch

    from tracknet_cli.inference.engine import Engine, load_engine
    from tracknet_cli.inference.runtime import pick_device, resolve_precision

    if model is not None:
        from tracknet_cli.pretrained.resolve import resolve_checkpoint

        engine, _ = load_engine(resolve_checkpoint(model).path, device="cpu", batch_size=batch)
        return engine, model
    from tracknet_cli.config.load import Selection, resolve
    from tracknet_cli.models import build_model

    config = resolve(Selection(profile=profile)).config
    torch.manual_seed(0)
    net = build_model(config).eval()
    dev = pick_device("cpu")
    choice = resolve_precision("auto", dev, model_family=config.model.backbone.type)
    if choice.channels_last:
        net.to_channels_last()
    return Engine.for_model(
        net, config.data, loss_name=config.training.loss, device=dev, autocast_dtype=choice.dtype, batch_size=batch
    ), f"{profile} (random weights)"


def one_pass(engine: Any, frames: list[Any]) -> tuple[float, float]:
    """Seconds and minor page faults of one engine pass over ``frames``."""
    codec = engine.codec(engine.input_size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in engine.run(iter(frames), codec):
        pass
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="bundled model name or checkpoint (repeatable)")
    parser.add_argument("--profile", action="append", help="profile whose architecture to build (repeatable)")
    parser.add_argument("--batch", action="append", type=int, help="batch sizes (default 1, 2, 8, 32)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    batches = args.batch or [1, 2, 8, 32]
    targets = [(m, None) for m in args.model or []] + [(None, p) for p in args.profile or []]
    targets = targets or [("tennis", None), (None, "quickstart"), (None, "cpu_small")]
    print(
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, "
        f"{args.frames} frames per pass, best of {args.rounds} rounds"
    )
    for model, profile in targets:
        engines = {}
        for b in batches:
            engines[b], label = engine_for(model, profile, b)
        w, h = engines[batches[0]].input_size
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.frames)]
        best: dict[int, tuple[float, float]] = {}
        for b in batches:
            one_pass(engines[b], frames[: max(4, 2 * b)])  # warm-up
        for _ in range(args.rounds):
            for b in batches:
                seconds, faults = one_pass(engines[b], frames)
                if b not in best or seconds < best[b][0]:
                    best[b] = (seconds, faults)
        autocast_dtype = engines[batches[0]].autocast_dtype
        print(
            f"\n{label}: input {w}x{h}, {engines[batches[0]].window}-frame windows, "
            f"{'fp32' if autocast_dtype is None else str(autocast_dtype).replace('torch.', '')}"
        )
        print(f"{'batch':>6} {'frames/s':>9} {'ratio':>6} {'page faults/frame':>18}")
        base = args.frames / best[batches[0]][0]
        for b in batches:
            seconds, faults = best[b]
            rate = args.frames / seconds
            print(f"{b:>6} {rate:>9.2f} {rate / base:>6.2f} {faults / args.frames:>18,.0f}")
    print(f"\n(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")


if __name__ == "__main__":
    main()
