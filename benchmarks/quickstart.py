"""The quickstart, measured: synthesize clips, train the `quickstart` profile, evaluate on validation.

Prints one table: seconds for each stage, steps trained, and validation F1 under the v2 protocol
(and the two other protocols for comparison), all from one run of the real CLI.

    .venv/bin/python benchmarks/quickstart.py [--work DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tracknet_cli", *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        sys.exit(f"tracknet {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return time.monotonic() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for data/ and runs/ (default: a temp dir)")
    parser.add_argument("--set", action="append", default=[], help="extra overrides for the training run")
    opts = parser.parse_args()
    work = opts.work or Path(tempfile.mkdtemp(prefix="tracknet-quickstart-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]

    synth_s, _ = run(["data", "synth", "data/tracknet"], work)
    sets = [a for s in opts.set for a in ("--set", s)]
    train_s, out = run(["train", "--profile", "quickstart", *sets], work)
    summary = json.loads(out)
    ckpt = summary["best_weights"]
    rows = []
    from tracknet_cli.choices import PROTOCOL_NAMES

    for protocol in PROTOCOL_NAMES:
        eval_s, out = run(["eval", "--checkpoint", ckpt, "--split", "val", "--protocol", protocol, "--json"], work)
        rows.append((protocol, json.loads(out), eval_s))

    print(f"quickstart on {os.cpu_count()} cores, load average {load:.1f} at start, work dir {work}")
    print(f"{'stage':<28}{'seconds':>10}")
    print(f"{'data synth (2000 frames)':<28}{synth_s:>10.1f}")
    print(
        f"{'train (quickstart)':<28}{train_s:>10.1f}   {summary['steps']} steps, "
        f"stopped by {summary['stopped_because']}"
    )
    for protocol, m, secs in rows:
        print(
            f"{'eval val, ' + protocol:<28}{secs:>10.1f}   F1 {m['f1']:.3f}  precision {m['precision']:.3f}  "
            f"recall {m['recall']:.3f}  median error {m['l2_median'] or float('nan'):.2f} px"
        )


if __name__ == "__main__":
    main()
