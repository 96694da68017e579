"""`tracknet train`: resolve a profile, train into a run directory, show progress and validation tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tracknet_cli.cli import console
from tracknet_cli.errors import InputError
from tracknet_cli.cli.options import DataOpt, ModelOpt, ProfileOpt, SetOpt, TrainingOpt, resolve_selection

EPILOG = (
    "Examples:\n\n"
    "  tracknet train --profile quickstart\n\n"
    "  tracknet train --profile convnext_fpn --set training.epochs=50 --out runs/tennis\n\n"
    "  tracknet train --dry-run --profile quickstart --json\n\n"
    "  tracknet train --resume runs/quickstart/exp3\n\n"
    "  tracknet train --profile padel --init-from runs/tennis/exp1/weights/best.safetensors"
)


def train(
    profile: ProfileOpt = None,
    data: DataOpt = None,
    model: ModelOpt = None,
    training: TrainingOpt = None,
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory (new or empty). [default: runs/<profile>/expN]")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build data and model, run one batch forward and backward, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print the report as JSON.")] = False,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue RUN_DIR from its state/last.pt (its config.yaml; --set may change budgets).")] = None,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Start a new run from a trained model's weights (.safetensors).")] = None,
) -> None:
    """Train a heatmap model; writes runs/<profile>/expN (config, log, metrics, overlays, weights, state)."""
    if resume is not None:
        if any(v is not None for v in (profile, data, model, training, out, init_from)) or dry_run:
            raise typer.BadParameter("--resume takes the run's own config: only --set may go with it", param_hint="--resume")
        _resume(resume, set_ or [])
        return
    resolved = resolve_selection(profile, data, model, training, set_)
    if dry_run:
        _dry_run(resolved, as_json)
        return
    if as_json:
        raise typer.BadParameter("--json goes with --dry-run", param_hint="--json")
    if init_from is not None and not init_from.is_file():
        raise InputError(f"--init-from {init_from}: no such file")
    from tracknet_cli.training.rundir import create_run_dir

    run_dir = create_run_dir(resolved.profile_name, out)
    _run(resolved.config, run_dir, init_from=init_from)


def _resume(run_dir: Path, sets: list[str]) -> None:
    import torch

    from tracknet_cli.config.load import load_run_config

    state_path = run_dir / "state" / "last.pt"
    if not (run_dir / "config.yaml").is_file() or not state_path.is_file():
        raise InputError(f"--resume {run_dir}: not a run directory with config.yaml and state/last.pt")
    config = load_run_config(run_dir / "config.yaml", sets)
    try:
        state = torch.load(state_path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one line
        raise InputError(f"{state_path} cannot be loaded ({str(exc).splitlines()[0]})") from exc
    _run(config, run_dir, resume=state)


def _run(config, run_dir: Path, **kwargs) -> None:
    from tracknet_cli.cli.progress import TrainProgress
    from tracknet_cli.training.loop import fit

    console.info(f"run directory: {run_dir}")
    with TrainProgress() as progress:
        result = fit(config, run_dir, progress.hooks(), **kwargs)
    best = result.best
    summary = {
        "run_dir": str(run_dir),
        "steps": result.steps,
        "stopped_because": result.stopped_because,
        "best_weights": str(run_dir / "weights" / "best.safetensors") if best else None,
        "best_step": best.step if best else None,
        "best_f1": round(best.f1, 4) if best else None,
    }
    print(json.dumps(summary) if not console.out.is_terminal else _summary_text(summary))


def _summary_text(summary: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in summary.items())


def _dry_run(resolved, as_json: bool) -> None:
    from tracknet_cli.training.dryrun import dry_run

    report = dry_run(resolved.config)
    if as_json:
        print(json.dumps(report.to_dict()))
        return
    from rich.table import Table

    table = Table(title=f"dry run: {resolved.profile_name}", show_header=False)
    for key, value in report.to_dict().items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.out.print(table)
