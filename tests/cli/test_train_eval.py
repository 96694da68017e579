"""`tracknet train` and `tracknet eval` end to end on a tiny synthetic set, through the real CLI."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, TINY, invoke, tracknet


@pytest.fixture(scope="module")
def trained_run(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    proc = tracknet(
        "train",
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "data.split.val=[game1/Clip3]",
        "--out",
        str(run_dir),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 6 and summary["stopped_because"] == "max_steps"
    return run_dir


def test_run_directory_holds_every_file(trained_run: Path) -> None:
    import torch

    for rel in [
        "config.yaml",
        "train.log",
        "metrics.csv",
        "steps.csv",
        "overlays/epoch_000.png",
        "curves.png",
        "weights/best.safetensors",
        "weights/last.safetensors",
        "state/last.pt",
    ]:
        assert (trained_run / rel).is_file(), rel
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [3, 6]
    steps = list(csv.DictReader((trained_run / "steps.csv").open()))  # every logging step, not only validations
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4, 5, 6]
    assert all(float(r["loss"]) > 0 and float(r["lr"]) >= 0 and int(r["epoch"]) >= 0 for r in steps)
    assert float(rows[0]["train_loss"]) == pytest.approx(sum(float(r["loss"]) for r in steps[:3]) / 3, rel=1e-4)
    for column in [
        "epoch",
        "step",
        "train_loss",
        "val_loss",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "l2_median",
        "lr",
        "data_wait",
        "seconds",
    ]:
        assert column in rows[0]
    from tracknet_cli import __version__
    from tracknet_cli.inference.checkpoint import read_metadata

    meta = read_metadata(trained_run / "weights" / "best.safetensors")
    assert meta.config.data.input_width == 128
    assert meta.loss == "softmax" and meta.version == __version__ and 0 <= meta.threshold <= 1
    assert "f1" in meta.metrics
    state = torch.load(trained_run / "state" / "last.pt", weights_only=True)
    assert state["step"] == 6 and {"optimizer", "schedule", "best", "early_stopping", "rng", "model"} <= set(state)
    assert not list(trained_run.rglob("*.tmp")), "temp files left behind"
    from PIL import Image

    assert Image.open(trained_run / "curves.png").size[0] > 100


def test_second_run_never_overwrites(trained_run: Path, synth_root: Path) -> None:
    result = invoke("train", *TINY, "--set", f"data.root={synth_root}", "--out", str(trained_run))
    assert result.exit_code == 2
    assert "already exists" in result.stderr


def test_eval_checkpoint_json_and_pred_csv_roundtrip(trained_run: Path, synth_root: Path, tmp_path: Path) -> None:
    ckpt = str(trained_run / "weights" / "best.safetensors")
    result = invoke(
        "eval",
        "--checkpoint",
        ckpt,
        "--split",
        "all",
        "--threshold",
        "0.2",
        "--json",
        "--save-csv",
        str(tmp_path / "preds"),
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    for key in ["precision", "recall", "f1", "accuracy", "tp", "fp1", "fp2", "fn", "tn"]:
        assert key in payload
    assert [c["clip"] for c in payload["clips"]] == ["game1/Clip1", "game1/Clip2", "game1/Clip3"]
    assert sum(payload[k] for k in ["tp", "fp1", "fp2", "fn", "tn"]) + payload["ignored"] == 72
    assert (tmp_path / "preds" / "game1" / "Clip2" / "Label.csv").is_file()
    again = invoke("eval", "--pred-csv", str(tmp_path / "preds"), "--gt", str(synth_root), "--json")
    assert again.exit_code == 0, again.stderr
    replay = json.loads(again.stdout)
    for key in ["tp", "fp1", "fp2", "fn", "tn", "f1"]:
        assert replay[key] == payload[key], key
    # Predictions for one clip only: that clip is scored, the others are named on stderr.
    import shutil

    shutil.rmtree(tmp_path / "preds" / "game1" / "Clip1")
    shutil.rmtree(tmp_path / "preds" / "game1" / "Clip2")
    partial = invoke("eval", "--pred-csv", str(tmp_path / "preds"), "--gt", str(synth_root), "--json")
    assert partial.exit_code == 0 and "1 of 3 clips" in partial.stderr
    assert [c["clip"] for c in json.loads(partial.stdout)["clips"]] == ["game1/Clip3"]


def test_bundling_script_exports_a_run_with_its_windows_and_calibrated_threshold(
    trained_run: Path, synth_root: Path, tmp_path: Path
) -> None:
    """scripts/pretrained/export.py, the step every reproduce script ends with: a run in, a model file out
    that `eval` loads with the windows and the threshold the script printed."""
    from tracknet_cli.inference.checkpoint import read_metadata

    out = tmp_path / "bundled.safetensors"
    script = ROOT / "scripts" / "pretrained" / "export.py"
    args = [sys.executable, str(script), str(trained_run), "--data-root", str(synth_root), "--out", str(out)]
    proc = subprocess.run([*args, "--inference-stride", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["clips"] == 1 and printed["out"] == str(out)
    meta = read_metadata(out)
    assert meta.config.data.inference_stride == 1
    assert meta.threshold == pytest.approx(printed["threshold"])
    assert meta.config.data.root == Path("data/pretrained/train")
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    result = invoke("eval", "--checkpoint", str(out), "--data-root", str(synth_root), "--split", "val", "--json")
    assert result.exit_code == 0, result.stderr


def test_eval_errors(tmp_path: Path) -> None:
    missing = invoke("eval", "--checkpoint", str(tmp_path / "none.safetensors"))
    assert missing.exit_code == 2 and "not found" in missing.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    corrupt = invoke("eval", "--checkpoint", str(bad))
    assert corrupt.exit_code == 2 and len(corrupt.stderr.strip().splitlines()) == 1
    assert invoke("eval").exit_code == 2
    assert invoke("eval", "--pred-csv", str(tmp_path)).exit_code == 2
    assert invoke("eval", "--checkpoint", str(bad), "--protocol", "nope").exit_code == 2
    fp16 = invoke("eval", "--checkpoint", str(bad), "--precision", "fp16")
    assert fp16.exit_code == 2 and "auto, fp32, bf16" in fp16.stderr


@pytest.mark.parametrize(
    "extra",
    [
        [
            "--model",
            "convnext_fpn_heatmap",
            "--set",
            "model.backbone.pretrained=false",
            "--set",
            "model.backbone.config_overrides={depths: [1, 1, 1, 1], hidden_sizes: [16, 32, 64, 128]}",
        ],
        ["--set", "model.temporal_fusion=late"],
        ["--set", "model.no_ball_logit=true"],
        ["--model", "unet_heatmap", "--set", "model.unet.widths=[4, 8, 16]"],
    ],
)
def test_dry_run_variants(synth_root: Path, extra: list[str]) -> None:
    result = invoke("train", "--dry-run", *TINY, "--set", f"data.root={synth_root}", *extra, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output_shape"] == [4, 3, 36, 64]


def test_dry_run_json(synth_root: Path) -> None:
    result = invoke("train", "--dry-run", *TINY, "--set", f"data.root={synth_root}", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["output_shape"] == [4, 3, 36, 64]
    assert report["heatmap_size"] == [36, 64]
    assert report["params_trainable"] > 0
    assert report["precision"].startswith("fp32 (asked for")  # TINY asks for fp32


def test_unet_trains_evaluates_and_predicts(synth_root: Path, tmp_path: Path) -> None:
    """The native U-Net end to end: train (a checkpoint without any transformers config), eval, predict."""
    run_dir = tmp_path / "unet"
    proc = tracknet(
        "train",
        *TINY,
        "--model",
        "unet_heatmap",
        "--set",
        "model.unet.widths=[4, 8, 16]",
        "--set",
        f"data.root={synth_root}",
        "--set",
        "data.split.val=[game1/Clip3]",
        "--out",
        str(run_dir),
    )
    assert proc.returncode == 0, proc.stderr
    from tracknet_cli.inference.checkpoint import read_metadata

    meta = read_metadata(run_dir / "weights" / "best.safetensors")
    assert meta.backbone_config == {"model_type": "tracknet_unet", "widths": [4, 8, 16], "convs": 2, "input_stride": 1}
    result = invoke("eval", "--checkpoint", str(run_dir), "--split", "val", "--json")
    assert result.exit_code == 0, result.stderr
    assert [c["clip"] for c in json.loads(result.stdout)["clips"]] == ["game1/Clip3"]
    out_csv = tmp_path / "clip3.csv"
    result = invoke(
        "predict",
        str(synth_root / "game1" / "Clip3"),
        "--checkpoint",
        str(run_dir),
        "--csv",
        str(out_csv),
        "--no-video",
    )
    assert result.exit_code == 0, result.stderr
    with out_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == len(list((synth_root / "game1" / "Clip3").glob("*.jpg")))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_saves_a_loadable_state(stop: signal.Signals, synth_root: Path, tmp_path: Path) -> None:
    """Ctrl-C, and SIGTERM (`kill PID`: how a `nohup ... &` run, a container or a scheduler is stopped)."""
    import torch

    run_dir = tmp_path / "interrupted"
    args = [a if a != "training.max_steps=6" else "training.max_steps=100000" for a in TINY]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracknet_cli",
            "train",
            *args,
            "--set",
            f"data.root={synth_root}",
            "--set",
            "training.val_every=1000",
            "--out",
            str(run_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    seen = ""
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if line.startswith("step "):
            break
    assert "step " in seen, seen
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    state = torch.load(run_dir / "state" / "last.pt", weights_only=True)
    assert state["step"] >= 1
    assert (run_dir / "weights" / "last.safetensors").is_file()


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "metrics.csv").open()))


def test_sigkill_then_resume_matches_an_uninterrupted_run(synth_root: Path, tmp_path: Path) -> None:
    import torch

    args = [
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.max_steps=8",
        "--set",
        "training.val_every=2",
        "--set",
        "training.checkpoint_every=1",
        "--set",
        "training.precision=fp32",
    ]
    straight = tmp_path / "straight"
    assert tracknet("train", *args, "--out", str(straight)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", "train", *args, "--out", str(killed)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    state_file = killed / "state" / "last.pt"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:  # kill once the periodic state reaches step 3
        if state_file.is_file() and torch.load(state_file, weights_only=True)["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    state = torch.load(killed / "state" / "last.pt", weights_only=True)
    assert 1 <= state["step"] < 8

    resumed = tracknet("train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == 8
    a, b = _metrics(straight), _metrics(killed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == ["2", "4", "6", "8"]
    for ra, rb in zip(a, b):
        assert ra["train_loss"] == rb["train_loss"] and ra["val_loss"] == rb["val_loss"], (ra, rb)

    def steps(run: Path) -> list[tuple[str, ...]]:
        return [(r["step"], r["epoch"], r["loss"], r["lr"]) for r in csv.DictReader((run / "steps.csv").open())]

    assert steps(straight) == steps(killed) and len(steps(straight)) == 8  # lines after the saved state went


def test_resume_and_init_from_errors(trained_run: Path, tmp_path: Path) -> None:
    not_a_run = invoke("train", "--resume", str(tmp_path))
    assert not_a_run.exit_code == 2 and "not a run directory" in not_a_run.stderr
    mixed = invoke("train", "--resume", str(trained_run), "--profile", "quickstart")
    assert mixed.exit_code == 2
    missing = invoke("train", *TINY, "--init-from", str(tmp_path / "none.safetensors"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_init_from_starts_a_new_run_and_rejects_another_architecture(
    trained_run: Path, synth_root: Path, tmp_path: Path
) -> None:
    weights = trained_run / "weights" / "last.safetensors"
    base = [
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.max_steps=1",
        "--set",
        "training.val_every=1000",
    ]
    ok = invoke("train", *base, "--init-from", str(weights), "--out", str(tmp_path / "fine"))
    assert ok.exit_code == 0, ok.stderr
    other = invoke(
        "train", *base, "--set", "data.sequence_length=1", "--init-from", str(weights), "--out", str(tmp_path / "bad")
    )
    assert other.exit_code == 2
    assert "other model settings (data.sequence_length: 3 -> 1)" in other.stderr
    assert not (tmp_path / "bad").exists()  # refused before a run directory was made


def _gt_clip(root: Path) -> None:
    """game1/Clip1: 5 frames at 512x288 with a ball at (100, 50) in frames 0, 1, 3, 4 and none in frame 2."""
    from PIL import Image

    clip = root / "game1" / "Clip1"
    clip.mkdir(parents=True)
    rows = ["file name,visibility,x-coordinate,y-coordinate,status"]
    for i in range(5):
        Image.new("RGB", (512, 288)).save(clip / f"{i:04d}.jpg")
        rows.append(f"{i:04d}.jpg,0,,,0" if i == 2 else f"{i:04d}.jpg,1,100,50,0")
    (clip / "Label.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("dialect", ["tennis", "predict"])
def test_pred_csv_scores_other_trackers_in_two_dialects(tmp_path: Path, dialect: str) -> None:
    # Hand-counted under v2 at 512 px width (tolerance 4 px): frame 0 TP (2 px off), frame 1 FP1 (20 px off),
    # frame 2 FP2 (a detection, no ball), frame 3 FN (no detection), frame 4 TP (exact).
    gt, preds = tmp_path / "gt", tmp_path / "preds"
    _gt_clip(gt)
    points = {0: (102, 50), 1: (120, 50), 2: (300, 200), 4: (100, 50)}
    out = preds / "game1" / "Clip1"
    out.mkdir(parents=True)
    if dialect == "tennis":
        lines = ["file name,visibility,x-coordinate,y-coordinate,status"]
        lines += [
            f"{i:04d}.jpg,1,{points[i][0]},{points[i][1]},0" if i in points else f"{i:04d}.jpg,0,,,0" for i in range(5)
        ]
    else:
        lines = ["Frame,Visibility,X,Y,Score,Interpolated"]
        lines += [f"{i},1,{points[i][0]},{points[i][1]},0.9,0" if i in points else f"{i},0,0,0,0,0" for i in range(5)]
    (out / "Label.csv").write_text("\n".join(lines) + "\n")
    result = invoke("eval", "--pred-csv", str(preds), "--gt", str(gt), "--json")
    assert result.exit_code == 0, result.stderr
    m = json.loads(result.stdout)
    assert (m["tp"], m["fp1"], m["fp2"], m["fn"], m["tn"]) == (2, 1, 1, 1, 0)
    assert m["precision"] == pytest.approx(2 / 4) and m["recall"] == pytest.approx(2 / 3)


def test_pred_csv_counts_every_row_predict_wrote_visible(tmp_path: Path) -> None:
    # A predict CSV holds the tracker's decisions: a detection kept at a model threshold below 0.5
    # (frame 0, Score 0.3) and a gap-filled row (frame 3, Score 0, Interpolated 1) are detections by
    # default. Hand-counted under v2: frames 0, 1, 3, 4 TP, frame 2 TN. --threshold 0.5 drops both.
    gt, preds = tmp_path / "gt", tmp_path / "preds"
    _gt_clip(gt)
    out = preds / "game1" / "Clip1"
    out.mkdir(parents=True)
    (out / "Label.csv").write_text(
        "Frame,Visibility,X,Y,Score,Interpolated\n"
        "0,1,101,50,0.3,0\n1,1,100,50,0.9,0\n2,0,0,0,0,0\n3,1,100,51,0,1\n4,1,100,50,0.8,0\n"
    )
    every = json.loads(invoke("eval", "--pred-csv", str(preds), "--gt", str(gt), "--json").stdout)
    assert (every["tp"], every["fp1"], every["fp2"], every["fn"], every["tn"]) == (4, 0, 0, 0, 1)
    cut = json.loads(invoke("eval", "--pred-csv", str(preds), "--gt", str(gt), "--threshold", "0.5", "--json").stdout)
    assert (cut["tp"], cut["fn"], cut["tn"]) == (2, 2, 1)
