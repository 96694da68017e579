"""The streaming pipeline and the Python API on real files and a real (randomly initialised) quickstart
model: results equal a straightforward offline computation, memory stays bounded, threads stop,
errors surface, Ctrl-C keeps matching CSV and overlay.

Speed and placement do not depend on the weights, and a model trained for the few seconds a test may
take learns nothing yet, so these tests compare with an independent reference instead of labels."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tracknet_cli.errors import Interrupted, UsageError
from tracknet_cli.predict.outputs import write_outputs
from tracknet_cli.predict.sources import ArraySource, open_source
from tracknet_cli.predict.tracker import Tracker

TINY = ["data.input_width=128", "data.input_height=72", "data.heatmap_width=64", "data.heatmap_height=36"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart architecture at 128x72 with seeded random weights, saved as `tracknet train` does."""
    from tracknet_cli.config.load import resolve, selection_from
    from tracknet_cli.inference.checkpoint import save_checkpoint
    from tracknet_cli.models.registry import build_model

    config = resolve(selection_from("quickstart", None, None, None, TINY)).config
    torch.manual_seed(0)
    model = build_model(config)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "best.safetensors", model, config, threshold=0.5, loss="softmax", metrics={}
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracknet_cli.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize(root, games=1, clips=1, frames=30, size=(256, 144), seed=1)
    return root / "game1" / "Clip1"


def reference(
    tracker: Tracker, frames: list[np.ndarray], source_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Every window of T consecutive frames run alone, the heatmaps of each frame averaged, then decoded:
    the computation the pipeline streams, written plainly (short clips pad the tail like it does)."""
    from tracknet_cli.data.geometry import Codec
    from tracknet_cli.models.losses import LOSSES

    e = tracker.engine
    codec = Codec(source_size, e.input_size, e.heatmap_size, e.sigma)
    canvas = [codec.resize_frame(f) for f in frames]
    n, t = len(canvas), e.window
    sums = np.zeros((n, e.heatmap_size[1], e.heatmap_size[0]), np.float64)
    counts = np.zeros(n)
    for s in range(max(1, n - t + 1)):
        ids = [min(s + k, n - 1) for k in range(t)]
        x = torch.from_numpy(np.stack([canvas[i] for i in ids])).permute(0, 3, 1, 2)[None].float() / 255
        with torch.no_grad():
            probs = LOSSES[e.loss_name].probabilities(e.model(x))[0].numpy()
        for k, i in enumerate(ids):
            if s + k < n:
                sums[i] += probs[k]
                counts[i] += 1
    xy, score = codec.decode((sums / counts[:, None, None]).astype(np.float32))
    return np.asarray(xy), np.asarray(score)


def test_video_stream_equals_offline_reference(checkpoint: Path, clip: Path, tmp_path: Path) -> None:
    """Frame folder through the pipeline (batches of 5 windows, raw detections) vs the plain computation."""
    tracker = Tracker.from_pretrained(
        checkpoint, device="cpu", batch_size=5, threshold=0.0, track=False, precision="fp32"
    )
    assert tracker.engine.window == 3 and tracker.input_size == (128, 72)
    source = open_source(clip)[0]
    frames = [f.images[0] for f in source.frames([(128, 72)])]  # what the pipeline decodes (JPEG draft)
    xy, score = reference(tracker, frames, (256, 144))
    rows = list(tracker.track_video(clip))
    assert [r.frame for r in rows] == list(range(30))
    got = np.array([[r.x, r.y] for r in rows])
    np.testing.assert_allclose(got, xy, atol=1e-2)
    np.testing.assert_allclose([r.score for r in rows], score, atol=1e-4)
    assert all(r.visible and not r.interpolated for r in rows)  # threshold 0: every peak is a detection
    assert ((got >= 0) & (got <= [256, 144])).all()


def test_track_frames_numbers_from_first_frame_and_matches_reference(checkpoint: Path, clip: Path) -> None:
    tracker = Tracker.from_pretrained(
        checkpoint, device="cpu", batch_size=2, threshold=0.0, track=False, precision="fp32"
    )
    frames = [f.images[0] for f in open_source(clip)[0].frames([(128, 72)])][:7]
    rows = list(tracker.track_frames(iter(frames), first_frame=100))
    assert [r.frame for r in rows] == list(range(100, 107))
    xy, _ = reference(tracker, frames, (128, 72))
    np.testing.assert_allclose([[r.x, r.y] for r in rows], xy, atol=1e-2)
    # Shorter than one window: one padded window, one row per frame.
    assert [r.frame for r in tracker.track_frames(frames[:2])] == [0, 1]


def test_memory_is_bounded_by_batch_and_window(checkpoint: Path) -> None:
    """A slow consumer of a long stream: frames taken from the input never run far ahead of rows out."""
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=2)
    produced = 0
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (72, 128, 3), dtype=np.uint8)

    def frames():
        nonlocal produced
        for _ in range(240):
            produced += 1
            yield image

    ahead = []
    for i, row in enumerate(tracker.track_frames(frames())):
        assert row.frame == i
        ahead.append(produced - i)
        if i % 40 == 0:
            time.sleep(0.05)  # the producer fills every queue meanwhile
    depth = 2 * 1 + 3  # batch x stride + T
    bound = 4 * depth + tracker.tracking.max_delay + 4  # two queues, scheduler, averager, tracker lookahead
    assert len(ahead) == 240
    assert max(ahead) <= bound < 240


def test_breaking_out_stops_the_threads(checkpoint: Path, clip: Path) -> None:
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=1)
    gen = tracker.track_video(clip)
    first = [next(gen) for _ in range(3)]
    assert [r.frame for r in first] == [0, 1, 2]
    gen.close()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("tracknet-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("tracknet-")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_with_the_model_on_the_cpu_decoding_runs_at_the_lowest_priority(checkpoint: Path) -> None:
    """The decode thread yields the cores to the forward pass's OpenMP team (docs/scripts/predict.md);
    the caller's own thread keeps its priority."""
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=1)
    seen: list[int] = []

    def frames():
        for _ in range(4):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            yield np.zeros((72, 128, 3), np.uint8)

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert len(list(tracker.track_frames(frames()))) == 4
    assert seen[1:] == [19] * 3  # the first frame is taken in the caller's thread, for the source's size
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_an_error_in_the_decode_thread_reaches_the_caller(checkpoint: Path) -> None:
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=1)
    good = np.zeros((72, 128, 3), np.uint8)
    with pytest.raises(UsageError, match="like the first one"):
        list(tracker.track_frames([good] * 6 + [np.zeros((40, 40, 3), np.uint8)]))
    with pytest.raises(UsageError, match="uint8 RGB"):
        list(tracker.track_frames([np.zeros((72, 128), np.uint8)]))


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def test_ctrl_c_closes_csv_and_overlay_on_the_same_frame(checkpoint: Path, tmp_path: Path) -> None:
    """A real SIGINT mid-run: both files are finalised with the same frames, and Interrupted is raised."""
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=1)
    image = np.random.default_rng(1).integers(0, 255, (72, 130, 3), dtype=np.uint8)  # 130 wide: cropped overlay
    source = ArraySource([image] * 200)

    def on_row(summary) -> None:
        if summary.frames == 20:
            signal.raise_signal(signal.SIGINT)

    csv_path, video_path = tmp_path / "o.csv", tmp_path / "o.mp4"
    with pytest.raises(Interrupted, match="interrupted after 20 frames"):
        write_outputs(
            lambda size: tracker.stream(source, overlay_size=size),
            source,
            csv_path=csv_path,
            video_path=video_path,
            on_row=on_row,
        )
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "Frame,Visibility,X,Y,Score,Interpolated" and len(lines) == 21
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(20))
    assert _decoded_frames(video_path) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "o.mp4"]  # no temp files left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored


def test_a_failure_mid_run_leaves_no_files(checkpoint: Path, tmp_path: Path) -> None:
    tracker = Tracker.from_pretrained(checkpoint, device="cpu", batch_size=1)
    good = np.zeros((72, 128, 3), np.uint8)
    source = ArraySource([good] * 30 + [np.zeros((10, 10, 3), np.uint8)])
    with pytest.raises(UsageError):
        write_outputs(
            lambda size: tracker.stream(source, overlay_size=size),
            source,
            csv_path=tmp_path / "o.csv",
            video_path=tmp_path / "o.mp4",
        )
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs_are_refused_before_any_work(checkpoint: Path, tmp_path: Path) -> None:
    tracker = Tracker.from_pretrained(checkpoint, device="cpu")
    (tmp_path / "o.mp4").write_bytes(b"keep")
    source = ArraySource([np.zeros((72, 128, 3), np.uint8)] * 4)
    with pytest.raises(UsageError, match="already exists"):
        write_outputs(
            lambda size: tracker.stream(source, overlay_size=size),
            source,
            csv_path=tmp_path / "o.csv",
            video_path=tmp_path / "o.mp4",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    assert (tmp_path / "o.mp4").read_bytes() == b"keep"
    summary = write_outputs(
        lambda size: tracker.stream(source, overlay_size=size),
        source,
        csv_path=tmp_path / "o.csv",
        video_path=tmp_path / "o.mp4",
        overwrite=True,
    )
    assert summary.frames == 4 and _decoded_frames(tmp_path / "o.mp4") == 4


def test_from_pretrained_rejects_bad_settings(checkpoint: Path, tmp_path: Path) -> None:
    from tracknet_cli.errors import InputError

    with pytest.raises(UsageError, match="precision"):
        Tracker.from_pretrained(checkpoint, device="cpu", precision="fp8")
    # Tracking settings are checked before anything is read: a bad one wins over a missing checkpoint.
    for kwargs, needle in (
        ({"threshold": 1.5}, "threshold 1.5 must be between 0 and 1"),
        ({"max_jump": 0.0}, "max jump 0 must be positive"),
        ({"max_gap": -1}, "max gap -1 must be >= 0"),
    ):
        with pytest.raises(UsageError, match=needle):
            Tracker.from_pretrained(tmp_path / "missing.safetensors", device="cpu", **kwargs)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InputError, match="not a readable"):
        Tracker.from_pretrained(bad, device="cpu")
    t = Tracker.from_pretrained(checkpoint, device="cpu", precision="bf16", threshold=0.2, window_stride=3)
    assert t.engine.autocast_dtype == torch.bfloat16 and t.threshold == 0.2 and t.engine.stride == 3
    rows = list(t.track_frames([np.zeros((72, 128, 3), np.uint8)] * 5))
    assert [r.frame for r in rows] == [0, 1, 2, 3, 4]


def test_a_resolved_checkpoint_is_resolved_once(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI resolves `--checkpoint` and hands the result on: neither the Tracker nor the engine loader
    resolves it again, and the loader takes a file (a folder is not a checkpoint file to it)."""
    from tracknet_cli.errors import InputError
    from tracknet_cli.inference.checkpoint import read_metadata
    from tracknet_cli.inference.engine import load_engine
    from tracknet_cli.pretrained import resolve

    resolved = resolve.resolve_checkpoint(checkpoint)
    monkeypatch.setattr(resolve, "resolve_checkpoint", lambda *a, **k: pytest.fail("resolved a second time"))
    tracker = Tracker.from_pretrained(resolved, device="cpu", precision="fp32")
    assert tracker.threshold == read_metadata(checkpoint).threshold
    with pytest.raises(InputError, match="checkpoint not found"):
        load_engine(tmp_path, device="cpu")
