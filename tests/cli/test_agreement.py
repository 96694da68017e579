"""One inference path: for the same clip and checkpoint, training's validation, `tracknet eval
--save-csv` and `tracknet predict --no-track --csv-format tracknet` agree on every frame (same
visibility, positions within 0.01 px), and eval's F1 is the F1 validation stored in the checkpoint.

The model trains for 6 steps in a subprocess (`tracknet train`), validating on game1/Clip3, which
calibrates the threshold stored in `best.safetensors`; eval and predict run as subprocesses too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import TINY, tracknet

VAL_CLIP = "game1/Clip3"


@pytest.fixture(scope="module")
def best(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "agree"
    proc = tracknet(
        "train",
        *TINY,
        "--set",
        f"data.root={synth_root}",
        "--set",
        f"data.split.val=[{VAL_CLIP}]",
        "--set",
        "training.overlay_frames=0",
        "--out",
        str(run_dir),
    )
    assert proc.returncode == 0, proc.stderr
    return run_dir / "weights" / "best.safetensors"


def validation_predictions(best: Path):
    """What `fit`'s validation computes for this checkpoint: the same `evaluate` call on the same clips."""
    import torch

    from tracknet_cli.data.datasets import build_datasets
    from tracknet_cli.inference.checkpoint import load_model
    from tracknet_cli.inference.engine import Engine
    from tracknet_cli.training.evaluate import evaluate

    model, meta = load_model(best)
    config = meta.config
    _, val, _ = build_datasets(config)
    assert [c.id for c in val.clips] == [VAL_CLIP]
    engine = Engine.for_model(
        model,
        config.data,
        loss_name=meta.loss,
        device=torch.device("cpu"),
        accelerator_batch=config.training.batch_size,
    )
    report = evaluate(engine, val, protocol=config.training.protocol, threshold=meta.threshold, keep_predictions=True)
    return report, meta


def read_points(path: Path, clip) -> tuple[np.ndarray, np.ndarray]:
    from tracknet_cli.data.labels import read_labels

    names = [p.name for p in clip.frame_paths]
    table = read_labels(path, width=clip.width, height=clip.height, num_frames=len(clip), frame_names=names)
    return table.visibility > 0, np.stack([table.x, table.y], axis=-1)


def run_eval_and_predict(best: Path, clip_dir: Path, out: Path, threshold: float | None) -> tuple[dict, Path, Path]:
    """`tracknet eval --save-csv` and `tracknet predict --no-track --csv-format tracknet`, as a user runs them.

    --precision fp32 as the run trained (`auto` would pick bf16 on a CPU with native bf16)."""
    extra = [] if threshold is None else ["--threshold", repr(threshold)]
    ev = tracknet(
        "eval",
        "--checkpoint",
        str(best),
        "--split",
        "val",
        "--precision",
        "fp32",
        "--json",
        "--save-csv",
        str(out / "eval"),
        *extra,
    )
    assert ev.returncode == 0, ev.stderr
    csv_path = out / "predict.csv"
    pr = tracknet(
        "predict",
        str(clip_dir),
        "--checkpoint",
        str(best),
        "--no-track",
        "--no-video",
        "--csv-format",
        "tracknet",
        "--precision",
        "fp32",
        "--csv",
        str(csv_path),
        *extra,
    )
    assert pr.returncode == 0, pr.stderr
    return json.loads(ev.stdout), out / "eval" / VAL_CLIP / "Label.csv", csv_path


def test_validation_eval_and_predict_agree_on_every_frame(best: Path, synth_root: Path, tmp_path: Path) -> None:
    report, meta = validation_predictions(best)
    (pred,) = report.predictions
    assert report.metrics.f1 == pytest.approx(meta.metrics["f1"], abs=1e-9)  # what validation stored
    for key in ("tp", "fp1", "fp2", "fn", "tn"):
        assert getattr(report.metrics, key) == meta.metrics[key], key
    # The calibrated threshold, and one halfway between the two middle scores (about half the frames
    # visible, no score near the cut), so visibility is compared both ways.
    middle = np.sort(pred.score)[len(pred.score) // 2 - 1 : len(pred.score) // 2 + 1]
    for i, threshold in enumerate((None, float(middle.mean()))):
        cut = meta.threshold if threshold is None else threshold
        visible = np.isfinite(pred.xy).all(axis=1) & (pred.score >= cut)
        assert 0 < visible.sum(), f"threshold {cut} detects nothing: the comparison would be empty"
        payload, eval_csv, predict_csv = run_eval_and_predict(best, synth_root / VAL_CLIP, tmp_path / str(i), threshold)
        assert payload["threshold"] == cut
        if threshold is None:
            assert payload["f1"] == pytest.approx(meta.metrics["f1"], abs=1e-9)
        else:
            assert 0 < visible.sum() < len(visible)
        for name, path in (("eval", eval_csv), ("predict", predict_csv)):
            seen, xy = read_points(path, pred.clip)
            assert np.array_equal(seen, visible), (
                f"{name}: visibility differs on frames {np.flatnonzero(seen != visible)}"
            )
            error = np.abs(xy[visible] - pred.xy[visible]).max()
            assert error <= 0.01, f"{name}: positions differ from validation's by {error:.4f} px"
