"""Ready models from the command line and the Python API: `tracknet models`, `predict` without
`--checkpoint`, `--checkpoint NAME` in predict and eval, `train --init-from NAME`, hub repo ids,
`Tracker.from_pretrained` — against a $TRACKNET_MODELS_DIR folder holding a tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli.helpers import TINY, invoke, tracknet
from tests.pretrained.conftest import HUB_REV
from tests.pretrained.test_resolve import _hub_env
from tracknet_cli.errors import InputError
from tracknet_cli.pretrained import MODELS_DIR_ENV
from tracknet_cli.pretrained.catalogue import load_catalogue


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_models_json_lists_every_name_with_its_metadata(models_dir: Path, tiny_checkpoint: Path) -> None:
    from tracknet_cli.inference.checkpoint import load_model

    result = invoke("models", "--json", env={MODELS_DIR_ENV: str(models_dir)})
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["default"] == "tiny-court"
    rows = {row["name"]: row for row in payload["models"]}
    assert list(rows)[:2] == ["tiny-court", "tiny-shuttle"]
    court = rows["tiny-court"]
    model, _ = load_model(tiny_checkpoint)
    assert court["parameters"] == sum(p.numel() for p in model.parameters())
    assert (court["sport"], court["input_width"], court["input_height"], court["default"]) == ("tennis", 128, 72, True)
    assert court["held_out"] == {
        "split": "game9",
        "protocol": "tracknet",
        "f1": 0.25,
        "precision": 0.5,
        "recall": 0.125,
    }
    assert court["data"][0]["repository"] == "example/synthetic-clips"
    assert court["training"]["machine"] == "the test suite"
    assert (court["threshold"], court["origin"], court["file"]) == (
        0.375,
        str(models_dir),
        "tiny-quickstart.safetensors",
    )
    assert rows["tiny-shuttle"]["path"] == court["path"] and rows["tiny-shuttle"]["held_out"] is None


def test_models_table(models_dir: Path) -> None:
    result = invoke("models", env={MODELS_DIR_ENV: str(models_dir), "COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for fragment in (
        "tiny-court *",
        "tiny-shuttle",
        "badminton",
        "128x72x3",
        "0.250",
        "game9 (tracknet)",
        "example/synthetic-clips",
        "the default",
    ):
        assert fragment in out, (fragment, out)


def test_models_without_a_models_folder_lists_the_shipped_catalogue() -> None:
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)["models"]] == list(load_catalogue({}).entries)


def test_predict_without_checkpoint_names_the_default_model(models_dir: Path, synth_root: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "clip1.csv"
    proc = tracknet(
        "predict",
        str(synth_root / "game1" / "Clip1"),
        "--csv",
        str(out_csv),
        "--no-video",
        env={MODELS_DIR_ENV: str(models_dir)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"no --checkpoint: using the default model tiny-court (from {models_dir}, tiny-quickstart.safetensors), "
        "tennis; held-out F1 0.25 (tracknet protocol, game9). Pick another with --checkpoint NAME|FILE|RUN "
        "(tracknet models lists the names)"
    ) in " ".join(proc.stderr.split())
    with out_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == len(list((synth_root / "game1" / "Clip1").glob("*.jpg")))


def test_predict_and_eval_take_a_model_name(models_dir: Path, synth_root: Path, tmp_path: Path) -> None:
    env = {MODELS_DIR_ENV: str(models_dir)}
    result = invoke(
        "predict",
        str(synth_root / "game1" / "Clip2"),
        "-c",
        "tiny-shuttle",
        "--csv",
        str(tmp_path / "c.csv"),
        "--no-video",
        env=env,
    )
    assert result.exit_code == 0, result.stderr
    assert "model tiny-shuttle (from" in result.stderr and "threshold 0.375" in result.stderr
    result = invoke(
        "eval", "--checkpoint", "tiny-court", "--data-root", str(synth_root), "--split", "all", "--json", env=env
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["checkpoint"] == str(models_dir / "tiny-quickstart.safetensors") and payload["threshold"] == 0.375
    assert len(payload["clips"]) == 3


def test_an_unknown_name_is_one_line_with_suggestions(models_dir: Path, synth_root: Path) -> None:
    env = {MODELS_DIR_ENV: str(models_dir)}
    result = invoke("predict", str(synth_root / "game1" / "Clip1"), "-c", "tiny-shutle", "--no-video", env=env)
    assert result.exit_code == 2
    assert _one_line(result.stderr) == (
        "error: --checkpoint tiny-shutle: no such file, run folder or model name; "
        "did you mean tiny-shuttle or tiny-court? (tracknet models lists them)"
    )
    result = invoke("eval", "--checkpoint", "tiny", "--data-root", str(synth_root), env=env)
    assert result.exit_code == 2 and "did you mean" in _one_line(result.stderr)
    result = invoke("train", *TINY, "--init-from", "tiny-curt", env=env)
    assert result.exit_code == 2
    assert _one_line(result.stderr).startswith(
        "error: --init-from tiny-curt: no such file, run folder or model name; did you mean tiny-court"
    )


def test_init_from_a_model_name_fine_tunes_it(models_dir: Path, synth_root: Path, tmp_path: Path) -> None:
    base = [
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "training.max_steps=1",
        "--set",
        "training.val_every=1000",
    ]
    result = invoke(
        "train",
        *base,
        "--init-from",
        "tiny-court",
        "--out",
        str(tmp_path / "fine"),
        env={MODELS_DIR_ENV: str(models_dir)},
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "fine" / "weights" / "last.safetensors").is_file()
    other = invoke(
        "train",
        *base,
        "--set",
        "data.sequence_length=1",
        "--init-from",
        "tiny-court",
        "--out",
        str(tmp_path / "bad"),
        env={MODELS_DIR_ENV: str(models_dir)},
    )
    assert other.exit_code == 2 and "other model settings (data.sequence_length: 3 -> 1)" in _one_line(other.stderr)
    assert not (tmp_path / "bad").exists()


def test_hub_repo_ids_in_eval_and_the_offline_missing_error(hf_cache: Path, synth_root: Path) -> None:
    env = _hub_env(hf_cache)
    proc = tracknet(
        "eval",
        "--checkpoint",
        "tracknet-test/tiny",
        "--data-root",
        str(synth_root),
        "--split",
        "all",
        "--json",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    expected = hf_cache / "models--tracknet-test--tiny" / "snapshots" / HUB_REV / "model.safetensors"
    assert json.loads(proc.stdout)["checkpoint"] == str(expected)
    proc = tracknet(
        "predict",
        str(synth_root / "game1" / "Clip1"),
        "-c",
        "tracknet-test/not-there",
        "--no-video",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert _one_line(proc.stderr) == (
        "error: --checkpoint tracknet-test/not-there: no such file or run folder, and as a Hugging Face repo id: "
        f"tracknet-test/not-there/model.safetensors is not in the Hugging Face cache ({hf_cache}) and HF_HUB_OFFLINE "
        "is set: download it once online (unset HF_HUB_OFFLINE), or pass a local file"
    )


def test_tracker_from_pretrained(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from tracknet_cli.predict.tracker import Tracker

    monkeypatch.setenv(MODELS_DIR_ENV, str(models_dir))
    tracker = Tracker.from_pretrained("tiny-court", device="cpu", precision="fp32")
    assert tracker.threshold == 0.375 and tracker.input_size == (128, 72)
    rows = list(tracker.track_frames([np.zeros((72, 128, 3), np.uint8)] * 4))
    assert [row.frame for row in rows] == [0, 1, 2, 3]
    assert Tracker.from_pretrained(device="cpu").meta.config == tracker.meta.config  # None: the default model
    with pytest.raises(
        InputError, match="model tiny-cour: no such file, run folder or model name; did you mean tiny-court"
    ):
        Tracker.from_pretrained("tiny-cour")


def test_listing_models_loads_no_weights_and_no_torch(models_dir: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.cli.helpers import ROOT

    code = (
        "import sys; from tracknet_cli.cli.app import run; run(['models', '--json']);"
        "print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, MODELS_DIR_ENV: str(models_dir)},
    )
    listing, imported = proc.stdout.strip().splitlines()
    assert len(json.loads(listing)["models"]) >= 2
    assert imported == "False False"
