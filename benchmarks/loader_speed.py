"""Windows per second of the sequence dataset (cold, first epoch building the cache, cached) against
a naive decode-and-resize loader, side by side, on synthetic JPEG clips and (when present) the real
badminton videos.

    .venv/bin/python benchmarks/loader_speed.py [--input 512x288] [--synth-size 1280x720]
        [--synth-frames 100] [--real ../shared/realdata/badminton-train] [--real-clips 6] [--seconds 25]

Every mode goes through the same DataLoader (batch 8, T = 3, stride 1, shuffled, main process) and
builds the same heatmap targets; only frame access differs:
- naive: per window, per frame: ``PIL.Image.open`` + full decode + resize + pad (videos: open the
  file and decode from the first frame to the window's last, PIL-resize the window's frames, as
  loaders that "seek" by frame number do);
- cold: ``SequenceDataset`` with ``data.cache=off`` (JPEG draft, reformat, decodes shared in memory);
- first epoch: ``data.cache=auto`` on a training dataset, which decodes each clip once and writes it;
- cached: the next epochs (at least 3 s of them), reading the memory-mapped cache.
A mode stops after ``--seconds`` and reports the rate over the windows it loaded; "decoded" counts
frames decoded from JPEG or video during that mode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tracknet_cli.config.schema import DataConfig
from tracknet_cli.data.cache import FrameCache
from tracknet_cli.data.clips import discover_clips
from tracknet_cli.data.datasets import Sample, SequenceDataset, make_loader, window_indices


class NaiveDataset(SequenceDataset):
    """Decodes every frame of every window from scratch with PIL, like simple loaders do."""

    def __init__(self, clips, data: DataConfig) -> None:
        super().__init__(clips, data, cache=None)
        self.decoded = 0

    def __getitem__(self, item) -> Sample:
        from PIL import Image

        _, index = item if isinstance(item, tuple) else (0, item)
        ci = int(self._clip_index[index])
        clip, codec = self.clips[ci], self.codecs[ci]
        idx = window_indices(int(self._starts[index]), self.length, len(clip))
        if clip.frame_paths is not None:
            frames = []
            for i in idx:
                with Image.open(clip.frame_paths[i]) as img:
                    frames.append(codec.resize_frame(np.asarray(img.convert("RGB"))))
                self.decoded += 1
        else:
            frames = self._video_window(clip.video, idx, codec)
        xy = np.stack([clip.labels.x[idx], clip.labels.y[idx]], -1).astype(np.float64)
        state = clip.labels.state[idx]
        xy[state != 1] = np.nan
        return Sample(
            np.stack(frames),
            codec.encode(xy),
            state >= 0,
            xy.astype(np.float32),
            clip.labels.visibility[idx],
            clip.id,
            idx,
            (clip.width, clip.height),
        )

    def _video_window(self, path: Path, idx: np.ndarray, codec) -> list[np.ndarray]:
        import av

        wanted = set(int(i) for i in idx)
        found: dict[int, np.ndarray] = {}
        with av.open(str(path)) as container:
            for n, frame in enumerate(container.decode(video=0)):
                self.decoded += 1
                if n in wanted:
                    found[n] = codec.resize_frame(frame.to_ndarray(format="rgb24"))
                if n >= idx.max():
                    break
        return [found[int(i)] for i in idx]


def rate(ds: SequenceDataset, seconds: float, seed: int = 0, min_seconds: float = 0.0) -> tuple[float, int, float]:
    """(windows/s, windows loaded, elapsed s) over one shuffled epoch or ``seconds``; more epochs
    while under ``min_seconds`` (so a fast mode on a small set is not timed over a blink)."""
    loader = make_loader(ds, 8, shuffle=True, seed=seed)
    start = time.perf_counter()
    done = 0
    while True:
        for batch in loader:
            done += len(batch)
            if time.perf_counter() - start > seconds:
                break
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or elapsed > seconds:
            return done / elapsed, done, elapsed


def compare(name: str, root: Path, data: DataConfig, clips, seconds: float) -> list[str]:
    w, h = clips[0].width, clips[0].height
    frames = sum(len(c) for c in clips)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tracknet-bench-") as tmp:
        naive = NaiveDataset(clips, data)
        cold = SequenceDataset(clips, data, cache=None)
        cache = FrameCache(Path(tmp), (data.input_width, data.input_height))
        warm = SequenceDataset(clips, data, cache=cache)

        def measured(ds: SequenceDataset, seed: int = 0, min_seconds: float = 0.0) -> tuple[float, int, float, int]:
            count = (lambda: ds.decoded) if isinstance(ds, NaiveDataset) else (lambda: ds.decodes)
            before = count()
            return (*rate(ds, seconds, seed, min_seconds), count() - before)

        results = {
            "naive (PIL open + decode + resize per window)": measured(naive),
            "cold (data.cache=off)": measured(cold),
            "first epoch (data.cache=auto, builds cache)": measured(warm),
            "cached (memory-mapped uint8 cache)": measured(warm, seed=1, min_seconds=3.0),
        }
    base = results["naive (PIL open + decode + resize per window)"][0]
    rows.append(
        f"\n{name}: {len(clips)} clips, {frames} frames of {w}x{h} -> input {data.input_width}x"
        f"{data.input_height}, {len(cold)} windows of T={data.sequence_length}"
    )
    rows.append(f"{'mode':50s} {'windows/s':>10s} {'vs naive':>9s} {'windows':>8s} {'seconds':>8s} {'decoded':>8s}")
    for mode, (wps, done, elapsed, decodes) in results.items():
        rows.append(f"{mode:50s} {wps:10.1f} {wps / base:8.1f}x {done:8d} {elapsed:8.1f} {decodes:8d}")
    return rows


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="512x288", help="model input WxH")
    parser.add_argument("--synth-size", default="1280x720", help="synthetic frame size WxH")
    parser.add_argument("--synth-frames", type=int, default=100, help="frames per synthetic clip (2 clips)")
    parser.add_argument(
        "--real", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/realdata/badminton-train"
    )
    parser.add_argument("--real-clips", type=int, default=6, help="real clips to use (0: skip)")
    parser.add_argument("--seconds", type=float, default=25.0, help="time cap per mode")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    wi, hi = (int(v) for v in args.input.split("x"))
    sw, sh = (int(v) for v in args.synth_size.split("x"))

    def config(root: Path) -> DataConfig:
        return DataConfig(
            root=root,
            input_width=wi,
            input_height=hi,
            heatmap_width=wi // 4,
            heatmap_height=hi // 4,
            sequence_length=3,
            window_stride=1,
            cache="off",
        )

    from tracknet_cli.data.synth import synthesize

    lines = [f"loader speed, one process, torch threads 1, batch 8; python {sys.version.split()[0]}"]
    with tempfile.TemporaryDirectory(prefix="tracknet-synth-") as tmp:
        root = Path(tmp) / "synth"
        synthesize(root, games=1, clips=2, frames=args.synth_frames, size=(sw, sh), seed=0)
        clips = discover_clips(root)
        lines += compare("synthetic JPEG clips (tennis layout)", root, config(root), clips, args.seconds)
    if args.real_clips > 0 and args.real.is_dir():
        clips = discover_clips(args.real)[: args.real_clips]
        lines += compare(
            f"real videos ({args.real.name}, flat mp4 + csv)", args.real, config(args.real), clips, args.seconds
        )
    elif args.real_clips > 0:
        lines.append(f"\n(real data not found at {args.real}; skipped)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
