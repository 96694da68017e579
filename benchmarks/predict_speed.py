"""`tracknet predict` speed and memory, side by side in one run, on one input and one batch size:

- model only: forward + probabilities on preloaded float tensors, as many windows as the video needs;
- end to end, ``--no-video``: the real command (decode → windows → forward → average → decode → track → CSV);
- end to end with the overlay (``--out``);
- the encoder alone: PyAV decode + resize to the overlay size + libx264 (the writer's settings), no model;
- peak RSS of the end-to-end runs on the video and on the same video five times longer (flat = streaming).

Every measurement runs in its own process (peak RSS from ``os.wait4``); end-to-end rates are the
command's own summary (frames/s from the first frame requested to the files closed, startup excluded).

    .venv/bin/python benchmarks/predict_speed.py [--size 256x144] [--frames 120] [--batch 8]
        [--checkpoint W.safetensors] [--device cpu] [--long-factor 5] [--overlay-scale 1.0] [--repeats 3]

Without ``--checkpoint`` the quickstart architecture is built with random weights (speed does not
depend on the weights) at its input size, 256x144. The input is a ``data synth`` clip at ``--size``
encoded as H.264; the long video repeats it ``--long-factor`` times.
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


# ---------------------------------------------------------------- inputs
def make_checkpoint(folder: Path) -> Path:
    import torch

    from tracknet_cli.config.load import resolve, selection_from
    from tracknet_cli.models.registry import build_model
    from tracknet_cli.inference.checkpoint import save_checkpoint

    config = resolve(selection_from("quickstart", None, None, None, [])).config
    torch.manual_seed(0)
    return save_checkpoint(folder / "quickstart_random.safetensors", build_model(config), config,
                           threshold=0.5, loss="softmax", metrics={})


def make_videos(folder: Path, size: tuple[int, int], frames: int, factor: int) -> tuple[Path, Path]:
    """A synth clip as H.264 (30 fps), and the same clip ``factor`` times in a row."""
    import av
    import numpy as np
    from PIL import Image

    from tracknet_cli.data.synth import synthesize

    synthesize(folder / "synth", games=1, clips=1, frames=frames, size=size, seed=0)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((folder / "synth" / "game1" / "Clip1").glob("*.jpg"))]
    paths = []
    for name, repeat in (("short.mp4", 1), ("long.mp4", factor)):
        path = folder / name
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            for _ in range(repeat):
                for img in images:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        paths.append(path)
    return paths[0], paths[1]


# ---------------------------------------------------------------- measurements (child processes)
def child_model_only(checkpoint: str, frames: int, batch: int, device: str) -> dict[str, float]:
    """Windows the pipeline would run for ``frames`` frames (stride 1: one per frame), from a pool of
    preloaded float batches on the device; timed in the main thread and in a worker thread (as the
    pipeline runs it), alternately, and the faster reported.

    Why both: with libgomp, a process whose only OpenMP team is the main thread's spin-waits at full
    count (GOMP_SPINCOUNT), which on a loaded machine made the same forward 4-7x slower than in a
    second thread (the extra team makes libgomp throttle its spinning). Taking the best keeps the
    ratio to end to end conservative."""
    import threading

    import torch

    from tracknet_cli.predict.tracker import Tracker
    from tracknet_cli.inference.engine import probabilities

    engine = Tracker.from_checkpoint(checkpoint, device=device, batch_size=batch).engine
    wi, hi = engine.input_size
    g = torch.Generator().manual_seed(0)
    pool = [torch.rand(batch, engine.window, 3, hi, wi, generator=g).to(engine.device) for _ in range(4)]
    batches = -(-frames // batch)
    rates: dict[str, list[float]] = {"main": [], "worker": []}

    def timed(where: str) -> None:
        with torch.inference_mode(), torch.autocast(engine.device.type, dtype=engine.amp, enabled=engine.amp is not None):
            for x in pool[:2]:  # warm-up
                probabilities(engine.model(x).float(), engine.loss)
            began = time.perf_counter()
            for i in range(batches):
                probs = probabilities(engine.model(pool[i % len(pool)]).float(), engine.loss)
            float(probs.sum())  # wait for the device
            rates[where].append(frames / (time.perf_counter() - began))

    for _ in range(2):
        timed("main")
        worker = threading.Thread(target=timed, args=("worker",))
        worker.start()
        worker.join()
    fps = max(max(v) for v in rates.values())
    return {"frames": frames, "seconds": frames / fps, "fps": fps,
            "fps_main_thread": max(rates["main"]), "fps_worker_thread": max(rates["worker"])}


def child_encoder(video: str, scale: float) -> dict[str, float]:
    """Decode + resize to the overlay size + libx264 with the overlay writer's settings, no model."""
    import av

    from tracknet_cli.predict.writers import even_size

    out_path = Path(tempfile.mkdtemp()) / "enc.mp4"
    began = time.perf_counter()
    n = 0
    with av.open(video) as src, av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        vs = src.streams.video[0]
        w, h = even_size((vs.width, vs.height), scale)
        stream = out.add_stream("libx264", rate=vs.average_rate, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in src.decode(vs):
            f = frame.reformat(width=w, height=h, format="yuv420p")
            f.pts, f.time_base = n, 1 / vs.average_rate
            f.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(f):
                out.mux(packet)
            n += 1
        for packet in stream.encode(None):
            out.mux(packet)
    seconds = time.perf_counter() - began
    return {"frames": n, "seconds": seconds, "fps": n / seconds}


def run_child(args: list[str], timeout: float = 3600) -> tuple[str, float, float]:
    """Run a process; (stdout, wall seconds, peak RSS in MiB of that process).

    Linux starts an exec'd child's ``ru_maxrss`` at the RSS its parent had at fork time, so the
    parent of the measurements stays small: it never imports torch and builds no inputs itself."""
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{stderr}")
    return stdout, wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def end_to_end(video: Path, checkpoint: Path, batch: int, device: str, work: Path, overlay: bool,
               scale: float) -> dict[str, float]:
    stem = f"{video.stem}_{'overlay' if overlay else 'csv'}"
    args = [sys.executable, "-m", "tracknet_cli", "predict", str(video), "-c", str(checkpoint), "--batch", str(batch),
            "--device", device, "--csv", str(work / f"{stem}.csv"), "--overwrite"]
    args += ["--out", str(work / f"{stem}.mp4"), "--overlay-scale", str(scale)] if overlay else ["--no-video"]
    stdout, wall, rss = run_child(args)
    m = re.search(r": (\d+) frames, .*?, ([\d.]+) s, ([\d.]+) frames/s", stdout)
    if m is None:
        raise SystemExit(f"no summary line in: {stdout}")
    return {"frames": int(m.group(1)), "seconds": float(m.group(2)), "fps": float(m.group(3)), "rss": rss, "wall": wall}


def measure_child(kind: str, *args: str) -> dict[str, float]:
    stdout, wall, rss = run_child([sys.executable, __file__, "--child", kind, *args])
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "rss": rss, "wall": wall}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256x144", help="source video size WxH (default: the quickstart input size)")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--long-factor", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="rounds of the short measurements (best one reported)")
    p.add_argument("--overlay-scale", type=float, default=1.0)
    p.add_argument("--work", type=Path, help="keep inputs and outputs here (default: a temp folder)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "model":
            print(json.dumps(child_model_only(rest[0], int(rest[1]), int(rest[2]), rest[3])))
        elif kind == "encoder":
            print(json.dumps(child_encoder(rest[0], float(rest[1]))))
        else:  # prepare: WORK WxH FRAMES FACTOR [CHECKPOINT]
            import torch

            work, (w, h) = Path(rest[0]), (int(v) for v in rest[1].split("x"))
            ckpt = Path(rest[4]) if len(rest) > 4 else make_checkpoint(work)
            short, long = make_videos(work, (w, h), int(rest[2]), int(rest[3]))
            print(json.dumps({"checkpoint": str(ckpt), "short": str(short), "long": str(long),
                              "threads": torch.get_num_threads()}))
        return

    size = a.size.lower()
    work = a.work or Path(tempfile.mkdtemp(prefix="predict_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    stdout, _, _ = run_child([sys.executable, __file__, "--child", "prepare", str(work), size, str(a.frames),
                              str(a.long_factor), *([str(a.checkpoint)] if a.checkpoint else [])])
    prep = json.loads(stdout.strip().splitlines()[-1])
    checkpoint, short, long = Path(prep["checkpoint"]), Path(prep["short"]), Path(prep["long"])
    print(f"input {size}, {a.frames} frames (long: x{a.long_factor}), batch {a.batch}, device {a.device}, "
          f"torch threads {prep['threads']}, {os.cpu_count()} CPUs, load average before: {loadavg()}")
    print(f"checkpoint {checkpoint}")

    def record(name: str, result: dict[str, float]) -> dict[str, float]:
        extra = (f"  [main thread {result['fps_main_thread']:.2f}, worker thread {result['fps_worker_thread']:.2f}]"
                 if "fps_main_thread" in result else "")
        print(f"  {name:<34} {result['fps']:8.2f} frames/s  {result['frames']:6d} frames  "
              f"peak RSS {result['rss']:7.0f} MiB   (load {loadavg()}){extra}", flush=True)
        return result

    # The short runs alternate, round after round, so a burst of load from other processes hits every
    # kind alike; each kind reports its best round (the least disturbed).
    kinds = {
        "model only (preloaded tensors)": lambda: measure_child("model", str(checkpoint), str(a.frames), str(a.batch), a.device),
        "end to end, --no-video": lambda: end_to_end(short, checkpoint, a.batch, a.device, work, False, a.overlay_scale),
        "end to end, with overlay": lambda: end_to_end(short, checkpoint, a.batch, a.device, work, True, a.overlay_scale),
        "encoder alone (decode+resize+x264)": lambda: measure_child("encoder", str(short), str(a.overlay_scale)),
    }
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in kinds}
    for r in range(a.repeats):
        print(f"round {r + 1}/{a.repeats}")
        for name, fn in kinds.items():
            rounds[name].append(record(name, fn()))
    best = {name: max(results, key=lambda x: x["fps"]) for name, results in rounds.items()}
    model, csv_only, overlay, encoder = best.values()
    print(f"x{a.long_factor} long video")
    long_csv = record(f"end to end, --no-video, x{a.long_factor} long", end_to_end(long, checkpoint, a.batch, a.device, work, False, a.overlay_scale))
    long_overlay = record(f"end to end, overlay, x{a.long_factor} long", end_to_end(long, checkpoint, a.batch, a.device, work, True, a.overlay_scale))

    print()
    print(f"best of {a.repeats} rounds (frames/s; median in brackets):")
    for name, results in rounds.items():
        fps = sorted(x["fps"] for x in results)
        print(f"  {name:<34} {best[name]['fps']:8.2f}  ({fps[len(fps) // 2]:.2f})  peak RSS {max(x['rss'] for x in results):.0f} MiB")
    print()
    print(f"--no-video / model only:             {csv_only['fps'] / model['fps']:.2f}  (goal >= 0.9)")
    bound = min(model["fps"], encoder["fps"])
    shared = 1.0 / (1.0 / model["fps"] + 1.0 / encoder["fps"])  # both stages on the same cores, no overhead
    print(f"overlay / min(model, encoder alone): {overlay['fps'] / bound:.2f}; "
          f"overlay / (1/(1/model + 1/encoder)) = {overlay['fps']:.1f} / {shared:.1f}: {overlay['fps'] / shared:.2f}")
    short_rss = {name: max(x["rss"] for x in results) for name, results in rounds.items()}
    print(f"peak RSS x{a.long_factor} long / short: "
          f"--no-video {long_csv['rss']:.0f} / {short_rss['end to end, --no-video']:.0f} MiB = "
          f"{long_csv['rss'] / short_rss['end to end, --no-video']:.2f}, "
          f"overlay {long_overlay['rss']:.0f} / {short_rss['end to end, with overlay']:.0f} MiB = "
          f"{long_overlay['rss'] / short_rss['end to end, with overlay']:.2f}  (flat = 1.0)")
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
