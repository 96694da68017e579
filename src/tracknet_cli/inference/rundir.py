"""Run directories: `runs/<profile>/expN`, auto-incremented, never reused. Created only here."""

from __future__ import annotations

import re
from pathlib import Path

from tracknet_cli.atomic import require_writable
from tracknet_cli.errors import InputError

_EXP = re.compile(r"^exp(\d+)$")
_WEIGHTS = ("best.safetensors", "last.safetensors")  # any run's best before any run's last
LOCK = ".tracknet.lock"  # held by the process training into the run (claim_run_dir)


def next_run_dir(base: Path) -> Path:
    """Create and return `base/expN` with N one above the highest existing (race-safe: mkdir is atomic)."""
    base.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in base.iterdir() if (m := _EXP.match(p.name))]
    n = max(taken, default=0) + 1
    while True:
        candidate = base / f"exp{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def _used(out: Path) -> bool:
    return out.exists() and (not out.is_dir() or any(p.name != LOCK for p in out.iterdir()))


def _not_empty(out: Path) -> InputError:
    return InputError(
        f"{{out}} {out} already exists and is not empty: choose a new directory (runs are never overwritten)",
        parameter="out",
        value=out,
    )


def create_run_dir(
    profile_name: str, out: Path | None = None, runs_root: Path = Path("runs"), *, claim: bool = True
) -> Path:
    """`--out DIR` names the directory (must be new or empty); otherwise `runs/<profile>/expN`.
    `claim`: hold its lock for this process (`claim_run_dir`; the `--devices` launcher leaves that to
    the rank-0 worker, which trains)."""
    if out is None:
        require_writable(runs_root / profile_name)
        run_dir = next_run_dir(runs_root / profile_name)
    else:
        if _used(out):
            raise _not_empty(out)
        require_writable(out)
        out.mkdir(parents=True, exist_ok=True)
        run_dir = out
    if claim:
        claim_run_dir(run_dir, new=True)
    return run_dir


def claim_run_dir(run_dir: Path, *, new: bool = False) -> None:
    """Hold RUN/.tracknet.lock until this process ends, so a second `train --out RUN` (or `--resume RUN`)
    started while this one runs is refused naming it. `new`: refused too if another run wrote into
    RUN after our emptiness check (two `--out RUN` at once: exactly one of them trains)."""
    import atexit

    from tracknet_cli.locks import Busy, hold

    given = "out" if new else "resume"  # the parameter that named the directory
    try:
        lock = hold(run_dir / LOCK)
    except Busy as exc:
        raise InputError(
            f"{{{given}}} {run_dir} is in use by another tracknet train ({exc}): "
            f"{'choose a new directory' if new else 'wait for it to end, or stop it'}",
            parameter=given,
            value=run_dir,
        ) from None
    except OSError as exc:
        raise InputError(
            f"{{{given}}} {run_dir}: cannot write there: {exc.strerror or exc}", parameter=given, value=run_dir
        ) from exc
    if new and _used(run_dir):
        lock.release()
        raise _not_empty(run_dir)
    atexit.register(lock.release)


def best_weights_in(folder: Path) -> Path:
    """The weights a run directory, or a folder of runs such as `runs/quickstart`, stands for: a run's
    `weights/best.safetensors`, or where it has none (it never validated, or was stopped before its first
    validation) its `last.safetensors`; in a folder of runs the newest expN with best weights, else the
    newest with last ones, so a run still before its first validation does not hide a finished one.
    `pretrained.resolve.resolve_checkpoint` calls it for a folder given as a checkpoint."""
    if (folder / "weights").is_dir():
        runs = [folder]
    else:  # a folder of runs, newest first
        numbered = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _EXP.match(p.name))]
        runs = [p for _, p in sorted(numbered, reverse=True)]
    for which in _WEIGHTS:
        for run in runs:
            if (run / "weights" / which).is_file():
                return run / "weights" / which
    raise InputError(
        f"no weights/best.safetensors or last.safetensors in {folder} or in an expN folder under it "
        "(train first, or pass the .safetensors file)"
    )
