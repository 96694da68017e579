"""Turn a trained run into a bundled model file: the threshold recalibrated on the run's validation
clips through the inference engine (exactly what `tracknet predict` computes, fp32 by default: the
plain-CPU case), the dataset path made neutral, the recipe kept.

    python scripts/pretrained/export.py RUN --data-root data/pretrained/train \
        --out src/tracknet_cli/pretrained/NAME.safetensors

RUN: a run directory (its weights/best.safetensors) or a checkpoint file. Prints the validation
scores at the new threshold; the catalogue entry (src/tracknet_cli/pretrained/catalogue.yaml) and the
held-out figures (`tracknet eval`) are written by hand from what the model card reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument(
        "--data-root", type=Path, required=True, help="the training data folder (its validation clips calibrate)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--precision",
        default="fp32",
        help="precision of the calibration pass: fp32 (default, the plain-CPU "
        "case) or auto (bf16 where the CPU has it: 3.5x faster for the U-Net)",
    )
    parser.add_argument(
        "--inference-stride",
        type=int,
        help="write the model with this data.inference_stride (1: every "
        "frame the mean of T windows, as the bundled `badminton`); the threshold is calibrated with it",
    )
    parser.add_argument(
        "--neutral-root",
        default="data/pretrained/train",
        help="data.root written into the model "
        "(the training machine's path is not kept): where the model's reproduce script lays its data out",
    )
    parser.add_argument("--overwrite", action="store_true")
    opts = parser.parse_args()
    if opts.out.exists() and not opts.overwrite:
        sys.exit(f"{opts.out} exists; pass --overwrite to replace it")

    from tracknet_cli.data.datasets import eval_dataset
    from tracknet_cli.inference.checkpoint import save_checkpoint
    from tracknet_cli.inference.engine import load_engine
    from tracknet_cli.pretrained.resolve import resolve_checkpoint
    from tracknet_cli.training.evaluate import evaluate, score_predictions, select_clips
    from tracknet_cli.training.validate import calibrate_threshold

    source = resolve_checkpoint(opts.run, parameter="run").path
    engine, meta = load_engine(
        source, device="cpu", precision=opts.precision, runtime="torch", stride=opts.inference_stride
    )
    config = meta.config
    if opts.inference_stride is not None:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"inference_stride": opts.inference_stride})}
        )
    protocol = config.training.protocol
    clips = select_clips(config, opts.data_root, "val")
    report = evaluate(
        engine, eval_dataset(clips, config.data), protocol=protocol, threshold=meta.threshold, keep_predictions=True
    )
    threshold = calibrate_threshold(report.predictions, protocol, meta.threshold)
    m = score_predictions(report.predictions, protocol, threshold)[0]
    neutral = config.model_copy(update={"data": config.data.model_copy(update={"root": Path(opts.neutral_root)})})
    kept = {k: v for k, v in meta.metrics.items() if k in ("epoch", "step", "train_loss", "seconds")}
    metrics = {**kept, "f1": m.f1, "precision": m.precision, "recall": m.recall, "threshold": threshold}
    extra = {
        **meta.extra,
        "exported_from": str(source),
        "calibration": f"{opts.precision}, {len(clips)} validation clips, {protocol}",
    }
    model = engine.model.float()
    save_checkpoint(opts.out, model, neutral, threshold=threshold, loss=meta.loss, metrics=metrics, extra=extra)
    print(
        json.dumps(
            {
                "out": str(opts.out),
                "threshold": threshold,
                "trained_threshold": meta.threshold,
                "val": {"f1": m.f1, "precision": m.precision, "recall": m.recall},
                "clips": len(clips),
                "bytes": opts.out.stat().st_size,
            }
        )
    )


if __name__ == "__main__":
    main()
