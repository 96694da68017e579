"""Fine-tuning bundled models vs training from scratch, on footage no bundled model saw.

Trains the same profile once per arm and budget (from random weights, and `--init-from` each model
named), two processes at a time, each on one CPU thread, then scores every arm's test clips with
`tracknet eval`. Prints one table: minutes x labelled frames, F1 (P/R, steps) of each arm, with the
untouched models' F1 (0 minutes) first. Training emulates a CPU without native bf16 (AVX2 kernels,
fp32) unless `--native`; each budget is the whole run, its final validation included
(`training.time_limit`). Scoring is not timed: it runs in fp32 on this CPU's own kernels.

    .venv/bin/python benchmarks/finetune.py [--data handball] [--init-from tennis badminton] [--minutes 2 5 10]
        [--labels 50 100 300] [--no-scratch]

`--data handball` (default) splits the handball clip of ../shared/realdata (or $TRACKNET_REALDATA) by
time into train (frames 0-159), validation (160-199, for the threshold) and test (200-275) clips, as
a user who labelled the start of a video would. `--data padel --padel DIR` (DIR: `raw_data/points/clean`
of github.com/VictorUceda/TrackNet-Padel: broadcast padel points named MATCH_ROUND_PAIRS_SET_GAMES_POINT)
splits by match and set: train on the Roma semi-final's sets 0-1, validate on its set 2, test on its
set 3 and on the other match (the Roma round of 16): the bundled `padel` model's split
(scripts/pretrained/padel_data.py, videos up to 4 MiB). `--data tennis --tennis-test DIR` uses the bundled
model's held-out tennis games (DIR: the `tennis-test` folder of scripts/pretrained/build_data.py,
gameN_ClipM.mp4 + .csv) as a user's own match footage: train on game 9 (9 clips, 1,573 frames),
validate on two clips of game 10 and test on five others (574 frames). Any other value is a dataset
folder whose profile split (data.split) is used.

`--labels N` trains on the first N labelled frames of the training clips only (clips in name order,
the last one cut: the frames a person labels first), as a user with N labels would; validation and
test stay whole.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PLAIN_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "TRACKNET_TRAINING__PRECISION": "fp32"}
HANDBALL_PARTS = {"Clip1": (0, 160), "Clip2": (160, 200), "Clip3": (200, 276)}  # train, val, test
HANDBALL_SPLIT = [
    "data.split.by=clip",
    "data.split.train=[game1/Clip1]",
    "data.split.val=[game1/Clip2]",
    "data.split.test=[game1/Clip3]",
]
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
        sys.exit(
            f"{src}: expected game9_ClipM and game10_ClipM .mp4 + .csv (scripts/pretrained/build_data.py's tennis-test)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        for suffix in (".mp4", ".csv"):
            if not (out / f"{stem}{suffix}").exists():
                (out / f"{stem}{suffix}").symlink_to((src / f"{stem}{suffix}").resolve())
    train = [s for s in stems if s.startswith("game9_")]
    return [
        "data.split.by=clip",
        f"data.split.train=[{','.join(train)}]",
        f"data.split.val=[{','.join(TENNIS_VAL)}]",
        f"data.split.test=[{','.join(TENNIS_TEST)}]",
    ]


def padel_split(src: Path, out: Path) -> list[str]:
    """The padel points linked into train/, val/ and test/ by match and set (scripts/pretrained/padel_data.py,
    the bundled `padel` model's split), and the split overrides that name them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "pretrained"))
    from padel_data import split_points

    split_points(src, out)  # the 41 points up to 4 MiB, as the model card
    return ["data.split.by=clip", "data.split.train=[train]", "data.split.val=[val]", "data.split.test=[test]"]


def first_labels(root: Path, sets: list[str], n: int, out: Path) -> list[str]:
    """The data folder with its training clips cut to their first `n` labelled frames (links for the
    frames, a shortened label file for the clip where the count runs out; later clips left out), and
    the split overrides that name them. Validation and test clips are linked whole."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tracknet_cli.config.schema import SplitConfig
    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.splits import split_clips

    keys = {s.split("=", 1)[0].rsplit(".", 1)[1]: s.split("=", 1)[1] for s in sets if s.startswith("data.split.")}
    lists = {k: v.strip("[]").split(",") for k, v in keys.items() if k in ("train", "val", "test")}
    splits = split_clips(discover_clips(root), SplitConfig(by="clip", **lists))
    left, train = n, []
    training = {c.id for c in splits.train}
    for clip in [*splits.train, *splits.val, *splits.test]:
        if clip.id in training and left <= 0:
            continue
        for path in (p for p in [clip.video, *(clip.frame_paths or [])] if p is not None):
            dest = out / "data" / Path(path).relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                dest.symlink_to(Path(path).resolve())
        with clip.label_path.open(newline="") as f:
            rows = list(csv.reader(f))  # a header, then one row per frame in order (the sets used here)
        if clip.id in training:
            train.append(clip.id)
            labelled = [i for i, state in enumerate(clip.labels.state) if state >= 0]
            if len(labelled) > left:  # keep the frames up to the n-th labelled one
                rows = rows[: labelled[left - 1] + 2]
            left -= min(len(labelled), left)
        dest = out / "data" / clip.label_path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    return [
        f"data.root={out / 'data'}",
        "data.split.by=clip",
        f"data.split.train=[{','.join(train)}]",
        *(f"data.split.{k}={keys[k]}" for k in ("val", "test") if k in keys),
    ]


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
    return subprocess.Popen(
        [sys.executable, "-m", "tracknet_cli", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen, what: str) -> str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}): {err.strip()[-600:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default="handball",
        help="'handball', 'padel' (with --padel), 'tennis' (with --tennis-test) or a dataset folder",
    )
    parser.add_argument("--tennis-test", type=Path, help="the held-out tennis folder (games 9-10) for --data tennis")
    parser.add_argument(
        "--padel", type=Path, help="VictorUceda/TrackNet-Padel's raw_data/points/clean folder for --data padel"
    )
    parser.add_argument("--profile", default="finetune")
    parser.add_argument("--init-from", nargs="+", default=["tennis"], help="bundled model names or checkpoints")
    parser.add_argument("--no-scratch", action="store_true", help="leave out the arm trained from random weights")
    parser.add_argument("--scratch-lr", type=float, default=1e-3, help="learning rate of the arm from random weights")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 10])
    parser.add_argument("--labels", type=int, nargs="+", default=[0], help="labelled training frames (0: all)")
    parser.add_argument("--jobs", type=int, default=2, help="training processes at a time (one thread each)")
    parser.add_argument("--protocol", default="v2")
    parser.add_argument(
        "--native", action="store_true", help="use this CPU as it is (default: emulate plain AVX2, fp32)"
    )
    parser.add_argument("--set", action="append", default=[], help="extra overrides for every arm")
    parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temp dir)")
    opts = parser.parse_args()
    work = (opts.work or Path(tempfile.mkdtemp(prefix="tracknet-finetune-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if opts.data == "handball":
        root, sets = work / "handball", HANDBALL_SPLIT
        if not root.exists():
            handball_split(root)
    elif opts.data == "padel":
        if opts.padel is None:
            sys.exit("--data padel needs --padel DIR (raw_data/points/clean of VictorUceda/TrackNet-Padel)")
        root = work / "padel"
        sets = padel_split(opts.padel, root)
    elif opts.data == "tennis":
        if opts.tennis_test is None:
            sys.exit(
                "--data tennis needs --tennis-test DIR (the tennis-test folder of scripts/pretrained/build_data.py)"
            )
        root = work / "tennis"
        sets = tennis_split(opts.tennis_test, root)
    else:
        root, sets = Path(opts.data).resolve(), []
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({} if opts.native else PLAIN_CPU)}
    # Scoring is not what is timed: it runs on this CPU's own kernels, in fp32 unless --native.
    score_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    score = [] if opts.native else ["--precision", "fp32"]
    # From random weights the profile's fine-tuning learning rate learns nothing: that arm trains at
    # the bundled models' rate (--scratch-lr), everything else as the profile says.
    scratch = [("scratch", ["--set", f"training.lr={opts.scratch_lr:g}"])]
    arms = ([] if opts.no_scratch else scratch) + [(name, ["--init-from", name]) for name in opts.init_from]

    # The untouched models on the test clips (0 minutes).
    zero = {}
    if any(s.startswith("data.split.test=") for s in sets):
        only = test_only(root, sets, work / "test-only")
        for name in opts.init_from:
            out = finish(
                tracknet(
                    [
                        "eval",
                        "--checkpoint",
                        name,
                        "--data-root",
                        str(only),
                        "--split",
                        "all",
                        "--protocol",
                        opts.protocol,
                        "--json",
                        *score,
                    ],
                    work,
                    score_env,
                ),
                f"eval {name}",
            )
            sc = json.loads(out)
            zero[name] = (sc["f1"], sc["precision"], sc["recall"], 0)

    jobs = []  # (labels, minutes, arm, train args)
    for n in opts.labels:
        data_sets = [f"data.root={root}", *sets] if n == 0 else first_labels(root, sets, n, work / f"labels-{n}")
        base = [a for s in [*data_sets, *opts.set] for a in ("--set", s)]
        for minutes in opts.minutes:
            for arm, extra in arms:
                out_dir = work / "runs" / f"{n}-labels-{minutes:g}min-{Path(arm).stem}"
                jobs.append(
                    (
                        n,
                        minutes,
                        arm,
                        [
                            "train",
                            "--profile",
                            opts.profile,
                            *base,
                            "--set",
                            f"training.time_limit={minutes * 60:g}",
                            *extra,
                            "--out",
                            str(out_dir),
                        ],
                    )
                )
    results: dict[tuple[int, float, str], tuple] = {}
    for i in range(0, len(jobs), opts.jobs):
        batch = jobs[i : i + opts.jobs]
        procs = [tracknet(args, work, env) for *_, args in batch]
        summaries = [
            json.loads(finish(p, f"train {arm} {n} labels {m:g} min")) for p, (n, m, arm, _) in zip(procs, batch)
        ]
        evals = [
            tracknet(
                [
                    "eval",
                    "--checkpoint",
                    s["best_weights"],
                    "--split",
                    "test",
                    "--protocol",
                    opts.protocol,
                    "--json",
                    *score,
                ],
                work,
                score_env,
            )
            for s in summaries
        ]
        for proc, summary, (n, m, arm, _) in zip(evals, summaries, batch):
            sc = json.loads(finish(proc, f"eval {arm}"))
            results[(n, m, arm)] = (sc["f1"], sc["precision"], sc["recall"], summary["steps"])
            print(
                f"{n or 'all'} labels, {m:g} min, {arm}: F1 {sc['f1']:.3f} ({summary['steps']} steps)", file=sys.stderr
            )

    cpu = "this CPU as it is" if opts.native else "plain-CPU emulation (AVX2 kernels, fp32)"
    print(
        f"{opts.profile} on {opts.data}: one thread per arm, {opts.jobs} at a time, {cpu}, load average "
        f"{os.getloadavg()[0]:.1f} at the end; test F1 under {opts.protocol} (P/R, steps)"
    )
    names = [arm for arm, _ in arms]
    print("| labels | minutes | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    cell = lambda r: f"{r[0]:.3f} ({r[1]:.2f}/{r[2]:.2f}, {r[3]})" if r else "-"  # noqa: E731
    if zero:
        print("| - | 0 | " + " | ".join(cell(zero.get(a)) for a in names) + " |")
    for n in opts.labels:
        for m in opts.minutes:
            print(f"| {n or 'all'} | {m:g} | " + " | ".join(cell(results.get((n, m, a))) for a in names) + " |")


if __name__ == "__main__":
    main()
