"""The loss race: the same small model, the same wall-clock budget, one loss (and precision) per cell,
scored on held-out rallies of real badminton footage at fixed time checkpoints.

    .venv/bin/python benchmarks/loss_race.py [--minutes 10] [--checkpoints 2,5,10]
        [--data ../shared/realdata/badminton-train] [--losses mse,focal,wbce,softmax]
        [--precisions fp32,auto] [--profile cpu_small] [--threads 2] [--results loss_race.jsonl]

Every cell trains the model of `--profile` (default `cpu_small`: the 0.5 M-parameter U-Net at
256x144 with a 256x144 heatmap, batch 16, lr 1e-3, early fusion of T = 3 frames, random init) with
its augmentation, AdamW with 30 warmup steps then a constant lr (a step-based cosine needs a step
budget a wall-clock race does not have), seed 0: same init and same data order in every cell.
`--input`, `--heatmap`, `--batch-size`, `--lr` override the profile. The clip-level split is fixed
and explicit (`VAL_CLIPS`, `TEST_CLIPS`; the other 25 clips train).

The training clock counts data loading, forward, backward and the optimizer step, and stops while a
checkpoint is scored. At each checkpoint the model is run over the validation clips, the decode
threshold that maximises F1 (v2 protocol) there is chosen (`calibrate_threshold`), and the test
clips are scored at that threshold. Everything goes through the product's code: `build` (training/build.py:
the datasets, model, precision, loss, AdamW, schedule and scaler `tracknet train` builds), `train_step`
(training/step.py, the step `fit` takes), `evaluate`, `calibrate_threshold`, `score_predictions`.

Each checkpoint row is printed and appended to `--results` (JSON lines) as soon as it is measured;
a rerun with the same settings skips finished cells, so an interrupted race resumes per cell. The
side-by-side table is printed at the end, in Markdown, with the machine load.
Frames are decoded once into a uint8 cache at model resolution (`--cache-dir`, default in the system
temp dir; 0.9 GB at 256x144) before the first cell, so no cell pays for decoding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tracknet_cli.choices import LOSS_NAMES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "realdata" / "badminton-train"
# Fixed clip-level split of badminton-train (33 rallies): 4 to choose the threshold, 4 to score.
VAL_CLIPS = ("00008", "00022", "00034", "00045")  # 769 frames
TEST_CLIPS = ("00011", "00028", "00041", "00049")  # 1,114 frames
LOSSES = LOSS_NAMES  # every loss the package registers
PROTOCOL = "v2"


@dataclass
class Checkpoint:
    """One scored checkpoint of one cell."""

    key: str
    loss: str
    precision: str
    minute: float
    train_seconds: float
    steps: int
    samples_per_s: float
    train_loss: float  # mean over the steps since the previous checkpoint
    threshold: float
    val_f1: float
    test_f1: float
    test_precision: float
    test_recall: float
    test_tp: int
    test_fp1: int
    test_fp2: int
    test_fn: int
    eval_seconds: float
    load_avg: float
    note: str = ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--minutes", type=float, default=10.0, help="training budget per cell (wall clock, scoring excluded)"
    )
    p.add_argument(
        "--checkpoints",
        default=None,
        help="minutes at which to score, e.g. 2,5,10 (default: those of 2,5,10 within --minutes, and --minutes)",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--losses", default=",".join(LOSSES))
    p.add_argument(
        "--precisions",
        default="fp32,auto",
        help="fp32, bf16, auto (what `tracknet train` picks: bf16 + channels_last for the unet on a CPU with "
        "native bf16; bf16 cells are skipped on CPUs without it)",
    )
    p.add_argument(
        "--profile", default="cpu_small", help="the profile whose model, sizes, batch and lr every cell trains"
    )
    p.add_argument("--input", default=None, help="model input WxH (default: the profile's)")
    p.add_argument("--heatmap", default=None, help="heatmap WxH (default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the profile's")
    p.add_argument("--lr", type=float, default=None, help="default: the profile's")
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--val", default=",".join(VAL_CLIPS), help="validation clips (threshold calibration)")
    p.add_argument("--test", default=",".join(TEST_CLIPS), help="held-out test clips (the score)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "tracknet-loss-race-cache")
    p.add_argument(
        "--results", type=Path, default=Path("loss_race.jsonl"), help="JSON lines, one per checkpoint (resume file)"
    )
    p.add_argument("--fresh", action="store_true", help="ignore finished cells in --results")
    p.add_argument("--report", action="store_true", help="train nothing: print the table of the cells --results holds")
    args = p.parse_args(argv)
    if args.checkpoints is None:
        cps = [m for m in (2.0, 5.0, 10.0) if m < args.minutes] + [args.minutes]
    else:
        cps = sorted({float(x) for x in args.checkpoints.split(",") if x.strip()})
        if not cps or cps[0] <= 0 or cps[-1] > args.minutes + 1e-9:
            p.error(f"--checkpoints must be positive and at most --minutes ({args.minutes:g})")
    args.checkpoint_minutes = cps
    args.loss_list = [x.strip() for x in args.losses.split(",") if x.strip()]
    unknown = [x for x in args.loss_list if x not in LOSSES]
    if unknown:
        p.error(f"unknown loss {unknown[0]} (choose from {', '.join(LOSSES)})")
    args.precision_list = [x.strip() for x in args.precisions.split(",") if x.strip()]
    bad = [x for x in args.precision_list if x not in ("fp32", "bf16", "auto")]
    if bad:
        p.error(f"unknown precision {bad[0]} (choose from fp32, bf16, auto)")
    if not args.data.is_dir():
        p.error(f"--data {args.data} is not a folder (the real badminton set lives in ../shared/realdata)")
    return args


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def race_config(args: argparse.Namespace, loss: str, precision: str) -> Any:
    """The profile pointed at the real data, with this cell's loss and precision (and any size/batch/lr given)."""
    from tracknet_cli.config.load import Selection, resolve

    val = [c for c in args.val.split(",") if c]
    test = [c for c in args.test.split(",") if c]
    sets = [
        f"data.root={args.data}",
        f"data.split.val={json.dumps(val)}",
        f"data.split.test={json.dumps(test)}",
        "data.cache=on",
        f"data.cache_dir={args.cache_dir}",
        "data.num_workers=0",
        f"training.loss={loss}",
        f"training.precision={precision}",
        f"training.warmup_steps={args.warmup_steps}",
        "training.scheduler=none",
        f"training.seed={args.seed}",
        "training.device=cpu",
        f"training.protocol={PROTOCOL}",
    ]
    if args.input:
        wi, hi = _size(args.input)
        sets += [f"data.input_width={wi}", f"data.input_height={hi}"]
    if args.heatmap:
        wh, hh = _size(args.heatmap)
        sets += [f"data.heatmap_width={wh}", f"data.heatmap_height={hh}"]
    if args.batch_size:
        sets.append(f"training.batch_size={args.batch_size}")
    if args.lr:
        sets.append(f"training.lr={args.lr}")
    return resolve(Selection(profile=args.profile, sets=tuple(sets))).config


def settings_key(args: argparse.Namespace) -> str:
    """Rows from a run with other settings never count as finished cells of this one."""
    fields = {
        k: str(getattr(args, k))
        for k in (
            "minutes",
            "data",
            "profile",
            "input",
            "heatmap",
            "batch_size",
            "lr",
            "warmup_steps",
            "seed",
            "threads",
            "val",
            "test",
        )
    }
    fields["checkpoints"] = ",".join(f"{m:g}" for m in args.checkpoint_minutes)
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def load_results(path: Path, key: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    done: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interruption
        if row.get("key") == key:
            done.setdefault((row["loss"], row["precision"]), []).append(row)
    return done


def append_result(path: Path, row: dict[str, Any]) -> None:
    """One JSON line, flushed and synced: what was measured survives a kill."""
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def warm_cache(args: argparse.Namespace) -> None:
    from tracknet_cli.data.cache import build_cache
    from tracknet_cli.data.clips import discover_clips

    config = race_config(args, "softmax", "fp32")
    clips = discover_clips(config.data.root)
    t0 = time.monotonic()
    summary = build_cache(clips, config.data, cache_dir=args.cache_dir)
    print(
        f"frame cache {summary.directory}: {len(summary.built)} clips decoded, {len(summary.reused)} reused, "
        f"{summary.bytes / 1e9:.2f} GB, {time.monotonic() - t0:.0f} s",
        flush=True,
    )


def score(model: Any, val_ds: Any, test_ds: Any, config: Any, autocast_dtype: Any) -> tuple[float, float, Any]:
    """(threshold chosen on validation, validation F1 there, test metrics at that threshold)."""
    import torch

    from tracknet_cli.inference.engine import Engine
    from tracknet_cli.training.evaluate import evaluate, score_predictions
    from tracknet_cli.training.validate import calibrate_threshold

    tc = config.training
    model.eval()
    engine = Engine.for_model(
        model, config.data, loss_name=tc.loss, device=torch.device("cpu"), autocast_dtype=autocast_dtype, batch_size=16
    )
    val = evaluate(engine, val_ds, protocol=PROTOCOL, threshold=tc.threshold, keep_predictions=True)
    threshold = calibrate_threshold(val.predictions, PROTOCOL, tc.threshold)
    val_f1 = score_predictions(val.predictions, PROTOCOL, threshold)[0].f1
    test = evaluate(engine, test_ds, protocol=PROTOCOL, threshold=threshold)
    model.train()
    return threshold, val_f1, test.metrics


class NonFinite(Exception):
    """A cell's loss went non-finite: it is scored where it stands and stopped."""


def run_cell(args: argparse.Namespace, key: str, loss_name: str, precision: str) -> list[Checkpoint]:
    """Train one cell for `--minutes` of training time, scoring at each checkpoint."""
    from tracknet_cli.training.build import build
    from tracknet_cli.training.meters import LossMeter
    from tracknet_cli.training.step import train_step

    config = race_config(args, loss_name, precision)
    tc = config.training
    built = build(config)  # what `tracknet train` builds: seeded, same init and data order in every cell
    model, optimizer, schedule, loader = built.model, built.optimizer, built.schedule, built.loader
    train_ds, val_ds, test_ds, autocast_dtype = built.train_ds, built.val_ds, built.test_ds, built.autocast_dtype
    print(
        f"\n== {loss_name} / {precision}: {built.precision.describe()}; {len(train_ds)} train windows "
        f"({len(train_ds.clips)} clips), val {len(val_ds.clips)} clips, test {len(test_ds.clips)} clips",
        flush=True,
    )
    losses = LossMeter()  # the training loss since the last checkpoint, as `fit` keeps it between validations

    def check(out: Any) -> None:
        value = float(out.total.detach())
        if not math.isfinite(value):
            raise NonFinite
        losses.add(value)

    pending = [m * 60.0 for m in args.checkpoint_minutes]
    rows: list[Checkpoint] = []
    step, samples, train_s = 0, 0, 0.0
    note = ""
    model.train()
    while pending:
        t_fetch = time.monotonic()
        for batch in loader:
            # The step `tracknet train` takes (training/step.py), with its finiteness check before backward.
            schedule.apply(optimizer, step)
            try:
                train_step(
                    built.train_model,
                    [batch],
                    built.loss_fn,
                    optimizer,
                    autocast_dtype=autocast_dtype,
                    scaler=built.scaler,
                    grad_clip=tc.grad_clip,
                    on_loss=check,
                )
            except NonFinite:
                note = f"non-finite loss at step {step + 1}: scored early, cell stopped"
                break
            step += 1
            samples += len(batch)
            now = time.monotonic()
            train_s += now - t_fetch
            if train_s >= pending[0]:
                break
            t_fetch = time.monotonic()
        if pending and (train_s >= pending[0] or note):
            minute = round(train_s / 60.0, 2) if note else pending.pop(0) / 60.0
            t_eval = time.monotonic()
            threshold, val_f1, m = score(model, val_ds, test_ds, config, autocast_dtype)
            row = Checkpoint(
                key=key,
                loss=loss_name,
                precision=precision,
                minute=minute,
                train_seconds=round(train_s, 1),
                steps=step,
                samples_per_s=round(samples / max(train_s, 1e-9), 2),
                train_loss=losses.mean,
                threshold=threshold,
                val_f1=val_f1,
                test_f1=m.f1,
                test_precision=m.precision,
                test_recall=m.recall,
                test_tp=m.tp,
                test_fp1=m.fp1,
                test_fp2=m.fp2,
                test_fn=m.fn,
                eval_seconds=round(time.monotonic() - t_eval, 1),
                load_avg=os.getloadavg()[0],
                note=note,
            )
            losses.reset()
            rows.append(row)
            append_result(args.results, asdict(row))
            print(
                f"  {loss_name}/{precision} @ {minute:g} min: test F1 {m.f1:.3f} "
                f"(P {m.precision:.3f} R {m.recall:.3f}, "
                f"threshold {threshold:.3f} from val F1 {val_f1:.3f}), {step} steps, "
                f"{row.samples_per_s:.1f} samples/s, "
                f"train loss {row.train_loss:.4g}, scoring {row.eval_seconds:.0f} s, load {row.load_avg:.1f}"
                f"{'; ' + note if note else ''}",
                flush=True,
            )
            if note:
                break
    return rows


def table(args: argparse.Namespace, cells: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    """One Markdown table, one row per cell, the checkpoints side by side."""
    cps = args.checkpoint_minutes
    head = ["loss", "precision"] + [f"test F1 @ {m:g} min (P / R)" for m in cps] + ["steps", "samples/s", "threshold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (loss, precision), rows in cells.items():
        by_minute = {float(r["minute"]): r for r in rows}
        last = rows[-1] if rows else None
        cols = [loss, precision]
        for m in cps:
            r = by_minute.get(m) or next((x for x in rows if x.get("note") and float(x["minute"]) <= m), None)
            cols.append(f"**{r['test_f1']:.3f}** ({r['test_precision']:.2f} / {r['test_recall']:.2f})" if r else "—")
        cols += [
            str(last["steps"]) if last else "—",
            f"{last['samples_per_s']:.1f}" if last else "—",
            f"{last['threshold']:.2f}" if last else "—",
        ]
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from tracknet_cli.inference.runtime import cpu_bf16_support

    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    key = settings_key(args)
    support = cpu_bf16_support()
    print(
        f"loss race {key}: {args.minutes:g} min per cell, "
        f"checkpoints {', '.join(f'{m:g}' for m in args.checkpoint_minutes)} min; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads, "
        f"native bf16: {support.feature}; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    done = {} if args.fresh else load_results(args.results, key)
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not args.report:
        warm_cache(args)
    for precision in args.precision_list:
        for loss in args.loss_list:
            if args.report:
                if (loss, precision) in done:
                    cells[(loss, precision)] = sorted(done[(loss, precision)], key=lambda r: r["minute"])
                continue
            if precision == "bf16" and not support.native:
                print(f"\n== {loss} / bf16: skipped (this CPU has no native bf16)", flush=True)
                continue
            rows = done.get((loss, precision), [])
            if {float(r["minute"]) for r in rows} >= set(args.checkpoint_minutes) or any(r.get("note") for r in rows):
                print(f"\n== {loss} / {precision}: finished earlier (from {args.results})", flush=True)
                cells[(loss, precision)] = sorted(rows, key=lambda r: r["minute"])
                continue
            cells[(loss, precision)] = [asdict(r) for r in run_cell(args, key, loss, precision)]
    shown = race_config(args, "softmax", "fp32")
    d = shown.data
    print(
        f"\nHeld-out F1 (protocol {PROTOCOL}, threshold chosen on the validation clips) after the same training time; "
        f"profile {args.profile} ({shown.model.backbone.type} + {shown.model.decoder}), input "
        f"{d.input_width}x{d.input_height}, heatmap {d.heatmap_width}x{d.heatmap_height}, batch "
        f"{shown.training.batch_size}, lr {shown.training.lr:g}; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n",
        flush=True,
    )
    print(table(args, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
