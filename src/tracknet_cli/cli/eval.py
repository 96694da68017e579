"""`tracknet eval`: score a checkpoint on a split, or score any tracker's CSVs, under one protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tracknet_cli.choices import DEVICES, INFERENCE_PRECISIONS, PROTOCOL_NAMES, RUNTIMES, listed
from tracknet_cli.cli import console
from tracknet_cli.cli.options import CHECKPOINT_HELP, DeviceOpt, RuntimeOpt, checkpoint_option, choice
from tracknet_cli.errors import InputError

EPILOG = (
    "Examples:\n\n"
    "  tracknet eval --checkpoint runs/quickstart/exp1/weights/best.safetensors --split val\n\n"
    "  tracknet eval --checkpoint best.safetensors --data-root data/tennis --protocol wasb --json\n\n"
    "  tracknet eval --checkpoint tennis --data-root data/tennis-test --split all --protocol tracknet\n\n"
    "  tracknet eval --pred-csv preds/ --gt data/tracknet --protocol v2"
)


CheckpointOpt = Annotated[Optional[str], checkpoint_option(CHECKPOINT_HELP)]
DataRootOpt = Annotated[
    Optional[Path], typer.Option("--data-root", help="Dataset to score on. \\[default: the checkpoint's data.root]")
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split", help="test | val | train | all (test falls back to all clips when the config has no test split)."
    ),
]
ProtocolOpt = Annotated[
    Optional[str],
    typer.Option(
        "--protocol", help=f"{listed(PROTOCOL_NAMES)}. \\[default: the checkpoint's training.protocol, or v2]"
    ),
]
ThresholdOpt = Annotated[
    Optional[float],
    typer.Option(
        "--threshold",
        help="Detection score threshold. \\[default: the checkpoint's; with --pred-csv 0: every visible row counts]",
    ),
]
PrecisionOpt = Annotated[
    str, typer.Option("--precision", help=f"{listed(INFERENCE_PRECISIONS)} (auto: as predict picks it)")
]
BatchOpt = Annotated[
    Optional[int],
    typer.Option(
        "--batch",
        min=1,
        help="Windows per forward pass. \\[default: the training batch on a GPU; on a CPU 2 at 256x144, 1 at 512x288]",
    ),
]
SaveCsvOpt = Annotated[
    Optional[Path], typer.Option("--save-csv", help="Write per-clip predictions as DIR/<game>/<clip>/Label.csv.")
]
PredCsvOpt = Annotated[
    Optional[Path], typer.Option("--pred-csv", help="Score these per-clip CSVs instead of a checkpoint (with --gt).")
]
GtOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--gt",
        help="Ground-truth dataset: for --pred-csv, or with --checkpoint the dataset to score on (as --data-root).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON: totals at the top level and a `clips` list.")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="With --pred-csv: refuse CSVs with unreadable rows (exit 2) instead of scoring them as no detection.",
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="With --save-csv: replace existing CSVs (never the dataset's own labels).")
]


def evaluate_command(
    checkpoint: CheckpointOpt = None,
    data_root: DataRootOpt = None,
    split: SplitOpt = "test",
    protocol: ProtocolOpt = None,
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    runtime: RuntimeOpt = "auto",
    batch: BatchOpt = None,
    save_csv: SaveCsvOpt = None,
    pred_csv: PredCsvOpt = None,
    gt: GtOpt = None,
    as_json: JsonOpt = False,
    strict: StrictOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Precision, recall, F1, accuracy and errors per clip and in total, under a named protocol."""
    from tracknet_cli.training.evaluate import SPLIT_CHOICES

    if protocol is not None:
        choice(protocol, PROTOCOL_NAMES, "--protocol")
    choice(device, DEVICES, "--device")
    choice(precision, INFERENCE_PRECISIONS, "--precision")
    choice(runtime, RUNTIMES, "--runtime")
    choice(split, SPLIT_CHOICES, "--split")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise typer.BadParameter("must be between 0 and 1", param_hint="--threshold")
    if pred_csv is not None:
        if checkpoint is not None or gt is None:
            raise typer.BadParameter("--pred-csv needs --gt PATH and no --checkpoint", param_hint="--pred-csv")
        payload = _score_csvs(pred_csv, gt, protocol or "v2", 0.0 if threshold is None else threshold, strict)
    elif checkpoint is None:
        raise typer.BadParameter(
            "give --checkpoint NAME|FILE|RUN, or --pred-csv DIR --gt PATH", param_hint="--checkpoint"
        )
    else:
        data_root = _data_root(data_root, gt)
        payload = _score_checkpoint(
            checkpoint, data_root, split, protocol, threshold, device, precision, batch, save_csv, overwrite, runtime
        )
    _render(payload, as_json)


def _data_root(data_root: Optional[Path], gt: Optional[Path]) -> Optional[Path]:
    """The dataset a checkpoint is scored on: --gt, with --checkpoint, is what a user means by --data-root."""
    if gt is None:
        return data_root
    if data_root is not None and data_root.resolve() != gt.resolve():
        raise typer.BadParameter(
            f"with --checkpoint, --gt is the dataset to score on, as --data-root: "
            f"give one of them, not {gt} and {data_root}",
            param_hint="--gt",
        )
    return gt


def _score_checkpoint(
    checkpoint: str,
    data_root: Optional[Path],
    split: str,
    protocol: Optional[str],
    threshold: Optional[float],
    device_name: str,
    precision: str,
    batch: Optional[int],
    save_csv: Optional[Path],
    overwrite: bool = False,
    runtime: str = "auto",
) -> dict[str, Any]:
    from tracknet_cli.data.datasets import eval_dataset
    from tracknet_cli.data.predictions import prediction_csv_targets, write_prediction_csvs
    from tracknet_cli.inference.engine import default_batch, load_engine
    from tracknet_cli.pretrained.resolve import resolve_checkpoint
    from tracknet_cli.training.evaluate import evaluate, select_clips

    checkpoint = resolve_checkpoint(checkpoint).path
    engine, meta = load_engine(checkpoint, device=device_name, precision=precision, runtime=runtime, batch_size=batch)
    if engine.runtime_note:
        console.warn(engine.runtime_note)
    config = meta.config
    if batch is None:  # on a GPU the batch the model trained with (--batch), as its validation ran
        engine.batch_size = default_batch(engine.device, engine.input_size, config.training.batch_size)
    root = data_root or config.data.root
    if not Path(root).is_dir():
        raise InputError(f"data root not found: {root} (pass --data-root PATH)")
    protocol = protocol or config.training.protocol
    threshold = meta.threshold if threshold is None else threshold
    clips = select_clips(config, root, split)
    if not clips:
        raise InputError(f"the {split} split of {root} holds no clips (try --split all)")
    if save_csv is not None:  # refused before any work: existing files, and always the files read here
        prediction_csv_targets(save_csv, clips, overwrite=overwrite, reads=[checkpoint])
    dataset = eval_dataset(clips, config.data)
    console.info(
        f"scoring {len(clips)} clips ({sum(len(c) for c in clips)} frames) of {root}, split {split}, "
        f"protocol {protocol}, threshold {threshold:.3f}, runtime {engine.runtime}"
    )
    report = evaluate(engine, dataset, protocol=protocol, threshold=threshold, keep_predictions=save_csv is not None)
    if save_csv is not None:
        written = write_prediction_csvs(save_csv, report.predictions, threshold)
        console.info(f"wrote {len(written)} prediction CSVs under {save_csv}")
    return _payload(
        report.metrics,
        report.per_clip,
        protocol,
        threshold,
        {"checkpoint": str(checkpoint), "data_root": str(root), "split": split},
    )


_PROBLEMS_SHOWN = 20


def _score_csvs(pred_dir: Path, gt: Path, protocol: str, threshold: float, strict: bool = False) -> dict[str, Any]:
    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.predictions import read_prediction_csvs
    from tracknet_cli.training.evaluate import score_predictions

    clips = discover_clips(gt)
    problems: list[Any] = []
    predictions, missing = read_prediction_csvs(pred_dir, clips, problems)
    if problems:
        first = problems[0]
        where = f"{first.file}:{first.row}" if first.row is not None else first.file
        if strict:
            raise InputError(
                f"{len(problems)} problems in the prediction CSVs, first {where} {first.kind}: {first.message} "
                "(fix the rows, or leave out --strict to score them as no detection)"
            )
        for p in problems[:_PROBLEMS_SHOWN]:
            console.warn(
                f"{p.file}:{p.row}: {p.kind}: {p.message}" if p.row is not None else f"{p.file}: {p.kind}: {p.message}"
            )
        more = f", {len(problems) - _PROBLEMS_SHOWN} more not shown" if len(problems) > _PROBLEMS_SHOWN else ""
        console.warn(
            f"{len(problems)} problems in the prediction CSVs{more}: those frames score as no detection "
            "(--strict refuses them; --json lists them all)"
        )
    if missing:
        console.warn(
            f"scoring the {len(predictions)} of {len(clips)} clips that have a prediction CSV; "
            f"none for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
        )
    total, per_clip = score_predictions(predictions, protocol, threshold)
    payload = _payload(total, per_clip, protocol, threshold, {"pred_csv": str(pred_dir), "gt": str(gt)})
    if problems:
        payload["problems"] = [p.to_json() for p in problems]
    return payload


def _payload(
    total: Any, per_clip: dict[str, Any], protocol: str, threshold: float, source: dict[str, str]
) -> dict[str, Any]:
    return {
        **total.to_dict(),
        "protocol": protocol,
        "threshold": threshold,
        **source,
        "clips": [{"clip": cid, **m.to_dict()} for cid, m in per_clip.items()],
    }


def _render(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, default=float))
        return
    from rich.table import Table

    columns = [
        ("frames", None),
        ("TP", "tp"),
        ("FP1", "fp1"),
        ("FP2", "fp2"),
        ("FN", "fn"),
        ("TN", "tn"),
        ("P", "precision"),
        ("R", "recall"),
        ("F1", "f1"),
        ("acc", "accuracy"),
        ("L2", "l2_median"),
    ]
    table = Table(
        title=(
            f"protocol {payload['protocol']}, threshold {payload['threshold']:.3f} "
            "(P precision, R recall, L2 median error in source px)"
        )
    )
    table.add_column("clip", min_width=12, overflow="fold")
    for title, _ in columns:
        table.add_column(title, justify="right", no_wrap=True)

    def cells(m: dict[str, Any]) -> list[str]:
        frames = sum(int(m.get(k, 0)) for k in ("tp", "fp1", "fp2", "fn", "tn"))
        vals = [frames] + [m.get(key) for _, key in columns[1:]]
        return ["-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in vals]

    for clip in payload["clips"]:
        table.add_row(clip["clip"], *cells(clip))
    from rich.text import Text

    table.add_row(Text("total", style="bold"), *cells(payload), end_section=True)
    console.out.print(table)
