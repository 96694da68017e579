"""Fine-tuning a bundled model vs training from scratch, on footage no bundled model saw.

Trains the same profile twice per budget, side by side (one from random weights, one `--init-from`
a bundled model), each process on one CPU thread so the two arms share the machine equally, then
scores both on the held-out clips with `tracknet eval`. Prints one table: minutes, F1 (and steps)
of each arm. Training emulates a CPU without native bf16 (AVX2 kernels, fp32) unless `--native`;
each budget is the whole run, its final validation included (`training.time_limit`). Scoring is not
timed: it runs in fp32 on this CPU's own kernels.

    .venv/bin/python benchmarks/finetune.py [--data handball] [--init-from tennis] [--minutes 2 5 10]

`--data handball` (default) splits the handball clip of ../shared/realdata (or $TRACKNET_REALDATA) by
time into train (frames 0-159), validation (160-199, for the threshold) and test (200-275) clips, as
a user who labelled the start of a video would. `--data tennis --tennis-test DIR` uses the bundled
model's held-out tennis games (DIR: the `tennis-test` folder of scripts/pretrained/build_data.py,
gameN_ClipM.mp4 + .csv) as a user's own match footage: train on game 9 (9 clips, 1,573 frames),
validate on two clips of game 10 and test on five others (574 frames). Any other value is a dataset folder whose profile split (data.split) is
used. The first row (0 minutes) scores the `--init-from` model as it is on the test clips.
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
TENNIS_VAL = ["game10_Clip8", "game10_Clip9"]  # 130 frames, for the threshold
TENNIS_TEST = ["game10_Clip2", "game10_Clip3", "game10_Clip4", "game10_Clip5", "game10_Clip7"]  # 574 frames


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


def tennis_split(src: Path, out: Path) -> list[str]:
    """Links to the held-out tennis clips, and the split overrides: game 9 train, game 10 validation/test."""
    stems = sorted(p.stem for p in src.glob("game*_Clip*.csv") if p.with_suffix(".mp4").is_file())
    if not any(s.startswith("game9_") for s in stems) or not set(TENNIS_VAL + TENNIS_TEST) <= set(stems):
        sys.exit(f"{src}: expected game9_ClipM and game10_ClipM .mp4 + .csv (scripts/pretrained/build_data.py's tennis-test)")
    out.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        for suffix in (".mp4", ".csv"):
            if not (out / f"{stem}{suffix}").exists():
                (out / f"{stem}{suffix}").symlink_to((src / f"{stem}{suffix}").resolve())
    train = [s for s in stems if s.startswith("game9_")]
    return [f"data.split.train=[{','.join(train)}]", f"data.split.val=[{','.join(TENNIS_VAL)}]",
            f"data.split.test=[{','.join(TENNIS_TEST)}]"]


def test_only(root: Path, sets: list[str], out: Path) -> Path:
    """A folder holding just the test clips (links), so the `--init-from` model can be scored as it is."""
    test = next(s for s in sets if s.startswith("data.split.test="))
    for clip in test.split("=[", 1)[1].rstrip("]").split(","):
        for src in [root / clip] if (root / clip).is_dir() else sorted(root.glob(f"{clip}.*")):
            dest = out / src.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                dest.symlink_to(src.resolve())
    return out


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
    parser.add_argument("--data", default="handball", help="'handball', 'tennis' (with --tennis-test) or a dataset folder")
    parser.add_argument("--tennis-test", type=Path, help="the held-out tennis folder (games 9-10) for --data tennis")
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
    elif opts.data == "tennis":
        if opts.tennis_test is None:
            sys.exit("--data tennis needs --tennis-test DIR (the tennis-test folder of scripts/pretrained/build_data.py)")
        root = work / "tennis"
        sets = tennis_split(opts.tennis_test, root)
    else:
        root, sets = Path(opts.data).resolve(), []
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({} if opts.native else PLAIN_CPU)}
    # Scoring is not what is timed: it runs on this CPU's own kernels, in fp32 unless --native.
    score_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    score = [] if opts.native else ["--precision", "fp32"]
    sets = [f"data.root={root}", *sets, *opts.set]
    base = [a for s in sets for a in ("--set", s)]
    rows = []
    zero_shot = None  # the `--init-from` model as it is, scored beside the first budget's arms
    if any(s.startswith("data.split.test=") for s in sets):
        zero_shot = ["eval", "--checkpoint", opts.init_from, "--data-root", str(test_only(root, sets, work / "test-only")),
                     "--split", "all", "--protocol", opts.protocol, "--json", *score]
    for minutes in opts.minutes:
        procs = {}
        for arm, extra in (("scratch", []), ("fine-tuned", ["--init-from", opts.init_from])):
            out_dir = work / "runs" / f"{arm}-{minutes:g}min"
            procs[arm] = tracknet(["train", "--profile", opts.profile, *base, "--set",
                                   f"training.time_limit={minutes * 60:g}", *extra, "--out", str(out_dir)], work, env)
        summaries = {arm: json.loads(finish(proc, f"train {arm} {minutes:g} min")) for arm, proc in procs.items()}
        evals = {arm: tracknet(["eval", "--checkpoint", summary["best_weights"], "--split", "test", "--protocol",
                                opts.protocol, "--json", *score], work, score_env) for arm, summary in summaries.items()}
        if zero_shot is not None:
            evals["zero-shot"], zero_shot = tracknet(zero_shot, work, score_env), None
        scored = {arm: json.loads(finish(proc, f"eval {arm}")) for arm, proc in evals.items()}
        if "zero-shot" in scored:
            z = scored.pop("zero-shot")
            rows.insert(0, {"minutes": 0, "fine-tuned": (z["f1"], z["precision"], z["recall"], 0)})
        row = {"minutes": minutes}
        for arm, sc in scored.items():
            row[arm] = (sc["f1"], sc["precision"], sc["recall"], summaries[arm]["steps"])
        rows.append(row)
        print(f"{minutes:g} min done", file=sys.stderr)

    cpu = "this CPU as it is" if opts.native else "plain-CPU emulation (AVX2 kernels, fp32)"
    print(f"{opts.profile} on {opts.data}: from scratch vs --init-from {opts.init_from}, one thread per arm, side by side, "
          f"{cpu}, load average {os.getloadavg()[0]:.1f} at the end; test F1 under {opts.protocol}")
    print(f"{'minutes':>8} | {'scratch F1 (P/R, steps)':>28} | {'fine-tuned F1 (P/R, steps)':>28}")
    for row in rows:
        cells = [f"{f1:.3f} ({p:.2f}/{r:.2f}, {s})" if arm else "-" for arm in (row.get("scratch"), row["fine-tuned"])
                 for f1, p, r, s in [arm or (0, 0, 0, 0)]]
        print(f"{row['minutes']:>8g} | {cells[0]:>28} | {cells[1]:>28}")


if __name__ == "__main__":
    main()
