"""How the real-time family was chosen: FLOPs and frames/s of candidate U-Nets, side by side in one run.

Each candidate takes one window (batch 1) at 512x288 and returns one heatmap per frame; "frames/s"
is windows/s times the frames each window adds when windows do not overlap (T at inference stride T,
1 at stride 1, the old default's TrackNetV3-style averaging). Measured model-only, fp32, random
weights (speed does not depend on them), in torch and, exported to ONNX, in OpenVINO and onnxruntime,
with the thread count torch uses. Candidates:

- ``fullres T3 s1``: the model bundled until 2026-12-04 (unet_heatmap: widths 16/32/64/128, 2 convs per
  stage, heatmap 512x288), windows at every frame;
- ``stride2 T3`` (the shape shipped as model/unet_fast): the same U-Net with a stride-2 first
  convolution (stages and heatmap at half resolution), windows every 3 frames (the shipped model adds
  the heatmap head's 3x3 block; benchmarks/predict_speed.py measures it as users run it);
- ``stride2 T5``: 5 RGB frames in, 5 maps out, windows every 5 frames;
- ``stride2 9grey T9``: 9 grey frames in one window (VballNet's input), 9 maps out;
- ``stride2 9grey T9 3 stages``: widths 16/32/64;
- ``unshuffle2 9grey T9``: a lossless 2x2 pixel unshuffle instead of the strided convolution;
- ``unshuffle4 9grey T9 w32``: a 4x4 unshuffle, widths 32/48/64/128, heatmap at a quarter.

To see a CPU without native bf16 on any machine, cap oneDNN and torch's kernels at AVX2 (OpenVINO's
convolutions obey the oneDNN cap, onnxruntime's own kernels do not: its column then shows the CPU's
native ISA, which the header says):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/realtime_candidates.py
"""

from __future__ import annotations

import argparse
import io
import os
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn


def cbr(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class Candidate(nn.Module):
    """A TrackNetV2-shaped U-Net over ``cin`` stacked channels with one of three input stems."""

    def __init__(self, cin: int, maps: int, widths: tuple[int, ...] = (16, 32, 64, 128), stem: str = "conv1") -> None:
        super().__init__()
        first = widths[0]
        self.stem = {
            "conv1": nn.Identity(),
            "conv2": cbr(cin, first, 2),
            "unshuffle2": nn.Sequential(nn.PixelUnshuffle(2), cbr(cin * 4, first)),
            "unshuffle4": nn.Sequential(nn.PixelUnshuffle(4), cbr(cin * 16, first, k=1)),
        }[stem]
        c = cin if stem == "conv1" else first
        self.enc = nn.ModuleList()
        for i, w in enumerate(widths):
            convs = 1 if (i == 0 and stem != "conv1") else 2
            self.enc.append(nn.Sequential(*(cbr(c if j == 0 else w, w) for j in range(convs))))
            c = w
        self.dec = nn.ModuleList(
            nn.Sequential(cbr(widths[i] + widths[i + 1], widths[i]), cbr(widths[i], widths[i]))
            for i in range(len(widths) - 1)
        )
        self.head = nn.Conv2d(first, maps, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, maps = self.stem(x), []
        for i, stage in enumerate(self.enc):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            maps.append(x)
        x = maps[-1]
        for i in range(len(maps) - 2, -1, -1):
            x = self.dec[i](torch.cat([maps[i], F.interpolate(x, size=maps[i].shape[-2:], mode="bilinear")], 1))
        return self.head(x)


CANDIDATES = {  # name: (module, input channels, frames added per window)
    "fullres T3 s1 (old default)": (lambda: Candidate(9, 3), 9, 1),
    "stride2 T3 (shipped)": (lambda: Candidate(9, 3, stem="conv2"), 9, 3),
    "stride2 T5": (lambda: Candidate(15, 5, stem="conv2"), 15, 5),
    "stride2 9grey T9": (lambda: Candidate(9, 9, stem="conv2"), 9, 9),
    "stride2 9grey T9 3 stages": (lambda: Candidate(9, 9, (16, 32, 64), stem="conv2"), 9, 9),
    "unshuffle2 9grey T9": (lambda: Candidate(9, 9, stem="unshuffle2"), 9, 9),
    "unshuffle4 9grey T9 w32": (lambda: Candidate(9, 9, (32, 48, 64, 128), stem="unshuffle4"), 9, 9),
}


def gflop(model: nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


def seconds(run, n: int) -> float:
    for _ in range(3):
        run()
    began = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - began) / n


def onnx_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
    return buffer.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=20, help="timed windows per measurement (after 3 warm-up)")
    a = p.parse_args()
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, kernels {torch.backends.cpu.get_cpu_capability()}, oneDNN cap "
        f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '-')}, {threads} threads; onnxruntime uses the CPU's native ISA"
    )
    print(
        f"{'candidate':<28} {'GFLOP/win':>9} {'GFLOP/frame':>11} {'torch':>8} {'openvino':>9} {'onnxrt':>8}  frames/s"
    )
    base = None
    for name, (make, cin, per_window) in CANDIDATES.items():
        torch.manual_seed(0)
        model, x = make().eval(), torch.rand(1, cin, 288, 512)
        g = gflop(model, x)
        with torch.inference_mode():
            fps = {"torch": per_window / seconds(lambda model=model, x=x: model(x), a.windows)}
        graph, xi = onnx_bytes(model, x), x.numpy()
        try:
            import openvino as ov

            core = ov.Core()
            request = core.compile_model(
                core.read_model(graph), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
            ).create_infer_request()
            fps["openvino"] = per_window / seconds(lambda request=request, xi=xi: request.infer([xi]), a.windows)
        except ImportError:
            fps["openvino"] = float("nan")
        try:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            fps["onnxrt"] = per_window / seconds(
                lambda session=session, xi=xi: session.run(None, {session.get_inputs()[0].name: xi}), a.windows
            )
        except ImportError:
            fps["onnxrt"] = float("nan")
        base = base or fps
        print(
            f"{name:<28} {g:9.2f} {g / per_window:11.2f} "
            f"{fps['torch']:8.1f} {fps['openvino']:9.1f} {fps['onnxrt']:8.1f}"
            f"  (torch x{fps['torch'] / base['torch']:.1f}, "
            f"openvino x{fps['openvino'] / base['torch']:.1f} the old torch)",
            flush=True,
        )


if __name__ == "__main__":
    main()
