"""What users run, side by side in one run: the shipped default model against the model it replaced,
on a real rally at 720p and at 1080p, with the held-out F1 of each beside its speed.

For each model (``--new``, default ``tennis``; ``--old``, default ``unet-fullres``, the full-resolution
U-Net that was the default until 2026-12-04) and each video:

- model only: the forward passes and probabilities the engine runs for that many frames (one window
  every ``data.inference_stride`` frames), on preloaded tensors, no decoding;
- end to end ``--no-video``: the real command (decode → resize → windows → forward → decode → track → CSV);
- end to end with the overlay (``--out``, encoded at the source size);
and for each video, decode + resize to the model's 512x288 alone (the project's own reader, no model).
Then peak RSS of ``--no-video`` on the 720p video and on the same video four times longer (flat = streaming).

Inputs: ``../shared/realdata/badminton-train/00001.mp4`` (a real 640x360 broadcast rally, 317 frames,
or ``$TRACKNET_REALDATA``) re-encoded at 1280x720 and 1920x1080 (H.264, CRF 20, bicubic upscale), or
your own files with ``--video720`` / ``--video1080``. Every measurement runs in its own process;
end-to-end rates are the command's own summary (first frame requested to files closed, start-up
excluded). The figures in docs/scripts/predict.md come from this script; run it on an idle machine.

    .venv/bin/python benchmarks/predict_speed.py [--repeats 2] [--runtime torch] \
        [--old-runtime torch] [--old-frames 120]

To see what a CPU without native bf16 does on any machine (docs/scripts/predict.md):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/predict_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # issue 28: end-to-end frames/s on 2 cores without native bf16
    ("720p", "--no-video"): 60,
    ("1080p", "--no-video"): 45,
    ("720p", "overlay"): 30,
    ("1080p", "overlay"): 25,
}


# ---------------------------------------------------------------- inputs
def realdata() -> Path:
    env = os.environ.get("TRACKNET_REALDATA")
    return Path(env) if env else ROOT.parent / "shared" / "realdata"


def upscale(source: Path, out: Path, size: tuple[int, int], repeat: int = 1) -> Path:
    """``source`` re-encoded at ``size`` (H.264, CRF 20, yuv420p, its frame rate), ``repeat`` times in a row."""
    import av

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        rate = stream.average_rate
        frames = [
            f.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BICUBIC")
            for f in src.decode(stream)
        ]
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        enc = dst.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "20"})
        enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
        n = 0
        for _ in range(repeat):
            for f in frames:
                f.pts, f.time_base = n, 1 / rate
                f.pict_type = av.video.frame.PictureType.NONE
                for packet in enc.encode(f):
                    dst.mux(packet)
                n += 1
        for packet in enc.encode(None):
            dst.mux(packet)
    return out


# ---------------------------------------------------------------- measurements (child processes)
def child_model_only(checkpoint: str, frames: int, runtime: str | None) -> dict[str, float]:
    """The forward passes (and probabilities) the engine runs for ``frames`` frames, on preloaded
    uint8 windows, in a worker thread as the pipeline runs it (best of two rounds)."""
    import threading

    import numpy as np

    from tracknet_cli.predict.tracker import Tracker

    kwargs = {"runtime": runtime} if runtime else {}
    engine = Tracker.from_pretrained(checkpoint, device="cpu", **kwargs).engine
    wi, hi = engine.input_size
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, (engine.batch_size, engine.window, hi, wi, 3), dtype=np.uint8) for _ in range(4)]
    passes = -(-frames // (engine.batch_size * engine.stride))
    rates: list[float] = []

    def timed() -> None:
        for x in pool[:2]:  # warm-up: kernel selection
            engine.probabilities(x)
        began = time.perf_counter()
        for i in range(passes):
            probs = engine.probabilities(pool[i % len(pool)])
        float(probs.sum())
        rates.append(frames / (time.perf_counter() - began))

    for _ in range(2):
        worker = threading.Thread(target=timed)
        worker.start()
        worker.join()
    return {"frames": frames, "fps": max(rates), "stride": engine.stride, "batch": engine.batch_size}


def child_decode(video: str, size: str) -> dict[str, float]:
    """Decode + resize to the model input with the project's reader (as predict's decode thread does)."""
    from tracknet_cli.predict.sources import VideoSource

    w, h = (int(v) for v in size.split("x"))
    began = time.perf_counter()
    n = sum(1 for _ in VideoSource(video).frames([(w, h)], decoder_threads=False))
    return {"frames": n, "fps": n / (time.perf_counter() - began)}


def child_prepare(work: str, video720: str | None, video1080: str | None, long_factor: int) -> dict[str, str]:
    rally = realdata() / "badminton-train" / "00001.mp4"
    folder = Path(work)
    if (video720 is None or video1080 is None) and not rally.is_file():
        raise SystemExit(f"{rally} not found: pass --video720 and --video1080, or set TRACKNET_REALDATA")
    v720 = Path(video720) if video720 else upscale(rally, folder / "rally_720p.mp4", (1280, 720))
    v1080 = Path(video1080) if video1080 else upscale(rally, folder / "rally_1080p.mp4", (1920, 1080))
    long = upscale(v720, folder / f"rally_720p_x{long_factor}.mp4", (1280, 720), repeat=long_factor)
    return {"720p": str(v720), "1080p": str(v1080), "long": str(long)}


def run_child(args: list[str]) -> tuple[str, float]:
    """Run a process; (stdout, peak RSS in MiB). The parent never imports torch, so its RSS at fork
    time (where Linux starts the child's ``ru_maxrss``) stays small."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(args)}\n{stderr}")
    return stdout, usage.ru_maxrss / 1024


def end_to_end(
    video: str, model: str, work: Path, overlay: bool, runtime: str | None, frames: int | None
) -> dict[str, float]:
    stem = f"{Path(video).stem}_{model}_{'overlay' if overlay else 'csv'}"
    args = [
        sys.executable,
        "-m",
        "tracknet_cli",
        "predict",
        video,
        "-c",
        model,
        "--device",
        "cpu",
        "--csv",
        str(work / f"{stem}.csv"),
        "--overwrite",
    ]
    args += ["--out", str(work / f"{stem}.mp4")] if overlay else ["--no-video"]
    args += ["--runtime", runtime] if runtime else []
    args += ["--end", str(frames)] if frames else []
    stdout, rss = run_child(args)
    m = re.search(r": (\d+) frames, .*?, ([\d.]+) s, ([\d.]+) frames/s", stdout)
    if m is None:
        raise SystemExit(f"no summary line in: {stdout}")
    return {"frames": int(m.group(1)), "fps": float(m.group(3)), "rss": rss}


def measure_child(kind: str, *args: str) -> dict[str, float]:
    stdout, rss = run_child([sys.executable, __file__, "--child", kind, *args])
    return {**json.loads(stdout.strip().splitlines()[-1]), "rss": rss}


def held_out() -> dict[str, str]:
    """`tracknet models --json`: each model's held-out F1 and protocol, as printed beside its speed."""
    stdout, _ = run_child([sys.executable, "-m", "tracknet_cli", "models", "--json"])
    out = {}
    for m in json.loads(stdout)["models"]:
        h = m.get("held_out") or {}
        out[m["name"]] = f"{h.get('f1', float('nan')):.3f} {h.get('protocol', '?')} ({h.get('split', '?')})"
    return out


def cpu_line() -> str:
    stdout, _ = run_child(
        [
            sys.executable,
            "-c",
            "import torch, os; print(torch.backends.cpu.get_cpu_capability(), "
            "torch.get_num_threads(), os.environ.get('ONEDNN_MAX_CPU_ISA', '-'))",
        ]
    )
    capability, threads, isa = stdout.split()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = [f for f in ("avx512_bf16", "amx_bf16", "avx_vnni") if f in flags]
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    return (
        f"CPU {model}, {os.cpu_count()} cores, flags {'/'.join(native) or 'no native bf16/VNNI'}; torch kernels "
        f"{capability}, oneDNN ISA cap {isa}, {threads} torch threads"
    )


# ---------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--new", default="tennis", help="the shipped default model (name, file or run)")
    p.add_argument("--old", default="unet-fullres", help="the model it replaced")
    p.add_argument("--runtime", help="the new model's predict --runtime (default: predict's own, auto)")
    p.add_argument("--old-runtime", default="torch", help="the old model's runtime (default torch: how it ran before)")
    p.add_argument("--video720", help="a 1280x720 video (default: the real rally upscaled)")
    p.add_argument("--video1080", help="a 1920x1080 video (default: the real rally upscaled)")
    p.add_argument("--old-frames", type=int, default=120, help="frames the old model runs end to end (it is slow)")
    p.add_argument("--long-factor", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2, help="rounds of the new model's runs (best reported)")
    p.add_argument("--work", type=Path, help="keep inputs and outputs here (default: a temp folder)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "model":
            print(json.dumps(child_model_only(rest[0], int(rest[1]), rest[2] if len(rest) > 2 else None)))
        elif kind == "decode":
            print(json.dumps(child_decode(rest[0], rest[1])))
        else:  # prepare WORK 720|- 1080|- FACTOR
            print(
                json.dumps(
                    child_prepare(
                        rest[0], None if rest[1] == "-" else rest[1], None if rest[2] == "-" else rest[2], int(rest[3])
                    )
                )
            )
        return

    work = a.work or Path(tempfile.mkdtemp(prefix="predict_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    stdout, _ = run_child(
        [
            sys.executable,
            __file__,
            "--child",
            "prepare",
            str(work),
            a.video720 or "-",
            a.video1080 or "-",
            str(a.long_factor),
        ]
    )
    videos = json.loads(stdout.strip().splitlines()[-1])
    print(cpu_line())
    print(
        f"videos: {videos['720p']}, {videos['1080p']}; runtime: new {a.runtime or 'auto'}, old {a.old_runtime}; "
        f"old model end to end on its first {a.old_frames} frames"
    )
    f1 = held_out()

    results: dict[tuple[str, str, str], float] = {}
    for res in ("720p", "1080p"):
        results[("decode + resize to 512x288", res, "")] = max(
            measure_child("decode", videos[res], "512x288")["fps"] for _ in range(a.repeats)
        )
    for model, repeats, frames, runtime in (
        (a.new, a.repeats, None, a.runtime),
        (a.old, 1, a.old_frames, a.old_runtime),
    ):
        for res in ("720p", "1080p"):
            fps = [
                measure_child("model", model, str(frames or 317), *([runtime] if runtime else []))["fps"]
                for _ in range(repeats)
            ]
            results[("model only", res, model)] = max(fps)
            for overlay, name in ((False, "end to end, --no-video"), (True, "end to end, overlay")):
                runs = [end_to_end(videos[res], model, work, overlay, runtime, frames)["fps"] for _ in range(repeats)]
                results[(name, res, model)] = max(runs)
            print(f"  {model} {res}: done", flush=True)

    print()
    print(f"{'frames/s':<30} {'video':<6} {a.old:>14} {a.new:>14} {'new/old':>8} {'target':>7}")
    for name in ("model only", "end to end, --no-video", "end to end, overlay"):
        for res in ("720p", "1080p"):
            old, new = results[(name, res, a.old)], results[(name, res, a.new)]
            key = (res, "overlay" if "overlay" in name else "--no-video") if name != "model only" else None
            target = f">= {TARGETS[key]}" if key else ""
            met = "" if key is None else ("  met" if new >= TARGETS[key] else "  NOT met")
            print(f"{name:<30} {res:<6} {old:14.1f} {new:14.1f} {new / old:8.1f} {target:>7}{met}")
    for res in ("720p", "1080p"):
        print(f"{'decode + resize alone':<30} {res:<6} {results[('decode + resize to 512x288', res, '')]:14.1f}")
    print(f"held-out F1: {a.old} {f1.get(a.old, '?')}; {a.new} {f1.get(a.new, '?')}")
    if "badminton" in f1:
        print(f"             badminton {f1['badminton']}")

    short = end_to_end(videos["720p"], a.new, work, False, a.runtime, None)
    long = end_to_end(videos["long"], a.new, work, False, a.runtime, None)
    print(
        f"peak RSS --no-video, {a.new}: {short['frames']} frames {short['rss']:.0f} MiB, "
        f"{long['frames']} frames {long['rss']:.0f} MiB: x{long['rss'] / short['rss']:.2f} (flat = 1.0)"
    )


if __name__ == "__main__":
    main()
