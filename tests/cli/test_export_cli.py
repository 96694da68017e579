"""`tracknet export` and `predict --runtime` end to end, as real subprocesses: the same CSV rows from torch, from
onnxruntime (the .safetensors exported in memory), from the exported .onnx given to --checkpoint, and from
openvino: the same visibility and interpolation flags on every frame, x and y within 0.05 source px, scores
within 1e-3 (the CSV rounds x, y to 0.01 px and scores to 1e-4). Torch runs fp32 (`auto` would pick bf16 on a
CPU with native bf16); the ONNX runtimes always run fp32. And the refusals: exit 2 with one line."""

from __future__ import annotations

import csv
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.helpers import TINY, invoke, tracknet
from tracknet_cli.inference.onnx import missing

XY_TOL = 0.05  # source pixels
pytestmark = pytest.mark.skipif(
    missing("onnxruntime") is not None,
    reason="onnxruntime is not installed (pip install 'tracknet-cli[onnxruntime]'; the dev extra has it)",
)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def video(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import av

    path = tmp_path_factory.mktemp("video") / "rally.mp4"
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((synth_root / "game1" / "Clip1").glob("*.jpg"))]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(25), options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def checkpoint(video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TINY model with a no-ball head, random weights, saved with a threshold in the widest gap between the
    middle scores torch gives on the video: frames on both sides, none near the cut."""
    import torch

    from tracknet_cli.config.load import Selection, resolve
    from tracknet_cli.inference.checkpoint import save_checkpoint
    from tracknet_cli.models import build_model
    from tracknet_cli.predict.tracker import Tracker

    torch.set_num_threads(1)
    sets = tuple(TINY[i + 1] for i in range(len(TINY) - 1) if TINY[i] == "--set") + ("model.no_ball_logit=true",)
    config = resolve(Selection(profile="quickstart", sets=sets), environ={}).config
    torch.manual_seed(0)
    model = build_model(config)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, model, config, threshold=0.5, loss="softmax", metrics={})
    tracker = Tracker.from_pretrained(path, device="cpu", precision="fp32", runtime="torch", threshold=0.0, track=False)
    scores = np.sort([row.score for row in tracker.track_video(video)])
    middle = scores[len(scores) // 4 : 3 * len(scores) // 4 + 1]
    k = int(np.argmax(np.diff(middle)))
    return save_checkpoint(path, model, config, threshold=float(middle[k : k + 2].mean()), loss="softmax", metrics={})


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_then_predict_gives_the_same_rows_in_every_runtime(
    checkpoint: Path, video: Path, tmp_path: Path
) -> None:
    model = tmp_path / "tiny.onnx"
    proc = tracknet("export", "-c", str(checkpoint), "--format", "onnx", "-o", str(model))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"{checkpoint} → {model} (onnx, {model.stat().st_size / 1e6:.1f} MB): "
        "frames uint8 (B, 3, 72, 128, 3) → logits, no_ball"
    )
    runs = {
        "torch": ["-c", str(checkpoint), "--runtime", "torch", "--precision", "fp32"],
        "onnxruntime": ["-c", str(checkpoint), "--runtime", "onnxruntime"],
        "exported": ["-c", str(model), "--runtime", "onnxruntime"],
    }
    if missing("openvino") is None:
        runs["openvino"] = ["-c", str(model), "--runtime", "openvino"]
        runs["auto"] = ["-c", str(checkpoint)]  # a .safetensors on a CPU: openvino, exported in memory
    rows = {}
    for name, args in runs.items():
        out = tmp_path / f"{name}.csv"
        proc = tracknet("predict", str(video), "--no-video", "--csv", str(out), *args)
        assert proc.returncode == 0, proc.stderr
        runtime = {"exported": "onnxruntime", "auto": "openvino"}.get(name, name)
        assert f"(fp32, {runtime})" in proc.stderr, proc.stderr
        rows[name] = read_rows(out)
    ref = rows.pop("torch")
    visible = [r["Visibility"] == "1" and r["Interpolated"] == "0" for r in ref]
    assert len(ref) == 24 and 0 < sum(visible) < 24, "the threshold should leave detections and misses to compare"
    for name, got in rows.items():
        assert [r["Frame"] for r in got] == [r["Frame"] for r in ref], name
        for a, b in zip(ref, got):
            assert (a["Visibility"], a["Interpolated"]) == (b["Visibility"], b["Interpolated"]), (name, a, b)
            assert abs(float(a["X"]) - float(b["X"])) <= XY_TOL and abs(float(a["Y"]) - float(b["Y"])) <= XY_TOL, (
                name,
                a,
                b,
            )
            assert abs(float(a["Score"]) - float(b["Score"])) <= 1e-3, (name, a, b)


def test_export_refuses_an_existing_output_another_format_and_the_input(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    result = invoke("export", "-c", str(checkpoint), "-o", str(out))
    assert result.exit_code == 2
    assert (
        _one_line(result.stderr)
        == f"error: {out} already exists; pass --overwrite to replace it or choose another name"
    )
    assert out.read_bytes() == b"keep"
    result = invoke("export", "-c", str(checkpoint), "-o", str(tmp_path / "m.tflite"), "--format", "tflite")
    assert result.exit_code == 2 and "'tflite' is not one of onnx" in _one_line(result.stderr)
    alias = tmp_path / "alias.onnx"
    alias.symlink_to(checkpoint)
    result = invoke("export", "-c", str(checkpoint), "-o", str(alias), "--overwrite")
    assert result.exit_code == 2 and "is the checkpoint being exported" in _one_line(result.stderr)
    assert invoke("export", "-c", str(checkpoint), "-o", str(out), "--overwrite").exit_code == 0
    assert out.stat().st_size > 1000


def test_a_missing_runtime_is_exit_2_naming_the_extra(
    checkpoint: Path, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    result = invoke(
        "predict",
        str(video),
        "-c",
        str(checkpoint),
        "--no-video",
        "--csv",
        str(tmp_path / "a.csv"),
        "--runtime",
        "openvino",
    )
    assert result.exit_code == 2
    assert _one_line(result.stderr) == (
        "error: --runtime openvino needs openvino, which is not installed: pip install openvino"
    )
    assert not (tmp_path / "a.csv").exists()
    result = invoke("label", str(video), "-c", str(checkpoint), "--runtime", "openvino")
    assert result.exit_code == 2 and _one_line(result.stderr).endswith("pip install openvino")


def test_an_onnx_model_cannot_run_in_torch(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    assert invoke("export", "-c", str(checkpoint), "-o", str(model)).exit_code == 0
    result = invoke(
        "predict", str(video), "-c", str(model), "--no-video", "--csv", str(tmp_path / "a.csv"), "--runtime", "torch"
    )
    assert result.exit_code == 2 and "is an ONNX model: run it with --runtime onnxruntime" in _one_line(result.stderr)
    result = invoke(
        "predict",
        str(video),
        "-c",
        str(checkpoint),
        "--no-video",
        "--csv",
        str(tmp_path / "a.csv"),
        "--runtime",
        "tensorrt",
    )
    assert result.exit_code == 2 and "'tensorrt' is not one of auto, torch, onnxruntime, openvino" in _one_line(
        result.stderr
    )
