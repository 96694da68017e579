"""Fine-tuning a bundled model vs training from scratch, on footage no bundled model saw.

Trains the same profile twice per budget, side by side (one from random weights, one `--init-from`
a bundled model), each process on one CPU thread so the two arms share the machine equally, then
scores both on the held-out clips with `tracknet eval`. Prints one table: minutes, F1 (and steps)
of each arm. `--plain-cpu` (default) emulates a CPU without native bf16 (AVX2 kernels, fp32).

    .venv/bin/python benchmarks/finetune.py [--data handball] [--init-from tennis] [--minutes 2 5 10]

`--data handball` (default) splits the handball clip of ../shared/realdata (or $TRACKNET_REALDATA) by
time into train (frames 0-159), validation (160-199, for the threshold) and test (200-275) clips, as
a user who labelled the start of a video would; any other value is a dataset folder whose profile
split (data.split) is used.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "TRACKNET_TRAINING__PRECISION": "fp32"}
HANDBALL_PARTS = {"Clip1": (0, 160), "Clip2": (160, 200), "Clip3": (200, 276)}  # train, val, test
HANDBALL_SPLIT = ["data.split.train=[game1/Clip1]", "data.split.val=[game1/Clip2]", "data.split.test=[game1/Clip3]"]


def realdata() -> Path:
    root = Path(os.environ.get("TRACKNET_REALDATA", Path(__file__).resolve().parents[1].parent / "shared" / "realdata"))
    if not root.is_dir():
        sys.exit(f"no real footage at {root}: set TRACKNET_REALDATA")
    return root


def handball_split(out: Path) -> None:
    """The handball clip cut by time into three clips (links to the frames, a Label.csv each)."""
    src = realdata() / "handball-tracknet-layout" / "game1" / "Clip1"
    with (src / "Label.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    for clip, (lo, hi) in HANDBALL_PARTS.items():
        folder = out / "game1" / clip
        folder.mkdir(parents=True, exist_ok=True)
        kept = []
        for i, row in enumerate(body[lo:hi]):
            name = f"{i:04d}.jpg"
            (folder / name).symlink_to((src / row[0]).resolve())
            kept.append([name, *row[1:]])
        with (folder / "Label.csv").open("w", newline="") as f:
            csv.writer(f).writerows([header, *kept])


def tracknet(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracknet_cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, what: str) -> str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}): {err.strip()[-600:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="handball", help="'handball' or a dataset folder")
    parser.add_argument("--profile", default="finetune")
    parser.add_argument("--init-from", default="tennis", help="bundled model name or checkpoint")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 10])
    parser.add_argument("--protocol", default="v2")
    parser.add_argument("--native", action="store_true", help="use this CPU as it is (default: emulate plain AVX2, fp32)")
    parser.add_argument("--set", action="append", default=[], help="extra overrides for both arms")
    parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temp dir)")
    opts = parser.parse_args()
    work = opts.work or Path(tempfile.mkdtemp(prefix="tracknet-finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    if opts.data == "handball":
        root, sets = work / "handball", HANDBALL_SPLIT
        if not root.exists():
            handball_split(root)
    else:
        root, sets = Path(opts.data).resolve(), []
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({} if opts.native else PLAIN_CPU)}
    sets = [f"data.root={root}", *sets, *opts.set]
    base = [a for s in sets for a in ("--set", s)]
    rows = []
    for minutes in opts.minutes:
        procs = {}
        for arm, extra in (("scratch", []), ("fine-tuned", ["--init-from", opts.init_from])):
            out_dir = work / "runs" / f"{arm}-{minutes:g}min"
            procs[arm] = (out_dir, tracknet(["train", "--profile", opts.profile, *base, "--set",
                                             f"training.time_limit={minutes * 60:g}", *extra, "--out", str(out_dir)], work, env))
        row = {"minutes": minutes}
        for arm, (out_dir, proc) in procs.items():
            summary = json.loads(finish(proc, f"train {arm} {minutes:g} min"))
            scored = json.loads(finish(tracknet(["eval", "--checkpoint", summary["best_weights"], "--split", "test",
                                                 "--protocol", opts.protocol, "--json"], work, env), f"eval {arm}"))
            row[arm] = (scored["f1"], scored["precision"], scored["recall"], summary["steps"])
        rows.append(row)
        print(f"{minutes:g} min done", file=sys.stderr)

    cpu = "this CPU as it is" if opts.native else "plain-CPU emulation (AVX2 kernels, fp32)"
    print(f"{opts.profile} on {opts.data}: from scratch vs --init-from {opts.init_from}, one thread per arm, side by side, "
          f"{cpu}, load average {os.getloadavg()[0]:.1f} at the end; test F1 under {opts.protocol}")
    print(f"{'minutes':>8} | {'scratch F1 (P/R, steps)':>28} | {'fine-tuned F1 (P/R, steps)':>28}")
    for row in rows:
        cells = [f"{f1:.3f} ({p:.2f}/{r:.2f}, {s})" for f1, p, r, s in (row["scratch"], row["fine-tuned"])]
        print(f"{row['minutes']:>8g} | {cells[0]:>28} | {cells[1]:>28}")


if __name__ == "__main__":
    main()
