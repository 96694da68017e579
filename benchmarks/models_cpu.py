"""CPU cost of the heatmap models: parameters, seconds per 3-frame window, peak memory.

Random weights built from configs (no download): tiny / small / base of the DINOv3 ViT +
upsampling decoder and of the ConvNeXt + FPN, at 512×288 and 1280×720, batch 1, T = 3, early
fusion (one backbone pass per window), heatmap at stride 4 (72×128 and 180×320). Each case runs in
its own process so the peak resident memory is its own.

    python benchmarks/models_cpu.py            # 1 warm-up + the fastest of 5 timed windows per case
    python benchmarks/models_cpu.py --quick    # 1 warm-up + the fastest of 2
    python benchmarks/models_cpu.py --train    # also forward + backward (training step, no optimizer)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

VIT_TINY = dict(hidden_size=192, intermediate_size=768, num_hidden_layers=12, num_attention_heads=3)
CASES: dict[str, dict[str, dict[str, Any]]] = {
    "vit": {
        # ViT-Ti/16 shape with the DINOv3 layout (4 registers): no released DINOv3 weights at this size
        "tiny": {"name": "facebook/dinov3-vits16-pretrain-lvd1689m", "overrides": VIT_TINY},
        "small": {"name": "facebook/dinov3-vits16-pretrain-lvd1689m", "overrides": {}},
        "base": {"name": "facebook/dinov3-vitb16-pretrain-lvd1689m", "overrides": {}},
    },
    "convnext": {
        "tiny": {"name": "facebook/convnext-tiny-224", "overrides": {}},
        "small": {"name": "facebook/convnext-small-224", "overrides": {}},
        "base": {"name": "facebook/convnext-base-224", "overrides": {}},
    },
}
SIZES = [(512, 288), (1280, 720)]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _fastest(fn: Any, repeats: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the fastest of `repeats` runs.

    On a shared machine the minimum is the least disturbed figure, and CPU time of the process
    does not count the time other programs held the cores.
    """
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def run_one(family: str, size: str, width: int, height: int, repeats: int, train: bool, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)

    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.models import build_model

    case = CASES[family][size]
    backbone = {
        "type": "dinov3_vit" if family == "vit" else "convnext",
        "pretrained_model_name": case["name"],
        "pretrained": False,
        "config_overrides": case["overrides"],
    }
    config = TrackNetConfig(
        data={
            "input_width": width,
            "input_height": height,
            "heatmap_width": width // 4,
            "heatmap_height": height // 4,
            "sequence_length": 3,
        },
        model={"backbone": backbone, "decoder": "upsampling" if family == "vit" else "fpn", "temporal_fusion": "early"},
    )
    torch.manual_seed(0)
    base_rss = _rss_mb()
    model = build_model(config).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, 3, height, width)
    with torch.inference_mode():
        model(x)  # warm-up
        cpu, wall = _fastest(lambda: model(x), repeats)
    result = {
        "family": family,
        "size": size,
        "input": f"{width}x{height}",
        "params_m": params / 1e6,
        "cpu_sec_per_window": cpu,
        "wall_sec_per_window": wall,
        "peak_rss_mb": _rss_mb(),
        "import_rss_mb": base_rss,
        "threads": torch.get_num_threads(),
    }
    if train:
        model.train()
        model(x).mean().backward()  # warm-up

        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(x).mean().backward()

        result["train_cpu_sec_per_window"], result["train_wall_sec_per_window"] = _fastest(step, repeats)
        result["peak_rss_mb"] = _rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two timed windows per case instead of five")
    parser.add_argument("--train", action="store_true", help="also time forward + backward")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: CPU seconds then do not include threads spinning for a busy peer)",
    )
    parser.add_argument("--family", choices=sorted(CASES), action="append", help="only these families")
    parser.add_argument("--one", nargs=4, metavar=("FAMILY", "SIZE", "W", "H"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    if args.one:
        family, size, w, h = args.one
        print(json.dumps(run_one(family, size, int(w), int(h), repeats, args.train, args.threads)))
        return
    rows = []
    load_before = os.getloadavg()[0]
    header = (
        "| model | input | params (M) | CPU s / window | wall s / window |"
        + (" train CPU s / window |" if args.train else "")
        + " peak RSS (MB) |"
    )
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for family in args.family or sorted(CASES, reverse=True):
        for size in CASES[family]:
            for w, h in SIZES:
                cmd = [sys.executable, __file__, "--one", family, size, str(w), str(h), "--threads", str(args.threads)]
                cmd += (["--quick"] if args.quick else []) + (["--train"] if args.train else [])
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if proc.returncode != 0:
                    print(
                        f"| {family}-{size} | {w}x{h} | failed: {proc.stderr.strip().splitlines()[-1:]} |", flush=True
                    )
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(r)
                train = f" {r['train_cpu_sec_per_window']:.2f} |" if args.train else ""
                print(
                    f"| {family}-{size} | {r['input']} | {r['params_m']:.1f} | {r['cpu_sec_per_window']:.2f} | "
                    f"{r['wall_sec_per_window']:.2f} |{train} "
                    f"{r['peak_rss_mb']:.0f} |",
                    flush=True,
                )
    if rows:
        print(
            f"\ntorch threads: {rows[0]['threads']}; RSS after importing torch + transformers: "
            f"{min(r['import_rss_mb'] for r in rows):.0f} MB (included in the peaks); "
            f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after on {os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    main()
