"""`tracknet train`: resolve a profile, train into a run directory, show progress and validation tables."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from tracknet_cli.cli import console
from tracknet_cli.cli.options import DataOpt, ModelOpt, ProfileOpt, SetOpt, TrainingOpt, flag, resolve_selection
from tracknet_cli.errors import EXIT_FAILURE, InputError, Reported, TrackNetError

EPILOG = (
    "Examples:\n\n"
    "  tracknet train --profile quickstart\n\n"
    "  tracknet train --profile convnext_fpn --set training.epochs=50 --out runs/tennis\n\n"
    "  tracknet train --dry-run --profile quickstart --json\n\n"
    "  tracknet train --resume runs/quickstart/exp3\n\n"
    "  tracknet train --profile convnext_fpn --devices 4     # DDP on 4 GPUs (or 4 CPU processes)\n\n"
    "  tracknet train --profile padel --init-from runs/tennis/exp1/weights/best.safetensors\n\n"
    "  tracknet train --profile cpu_small --set data.root=my_clips --init-from badminton     # fine-tune a ready model"
)


OutOpt = Annotated[
    Optional[Path], typer.Option("--out", help="Run directory (new or empty). \\[default: runs/<profile>/expN]")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Build data and model, run one batch forward and backward, write nothing.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="With --dry-run: print the report as JSON.")]
ResumeOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--resume", help="Continue RUN_DIR from its state/last.pt (its config.yaml; --set may change budgets)."
    ),
]
InitFromOpt = Annotated[
    Optional[str],
    typer.Option(
        "--init-from",
        metavar="NAME|FILE|RUN",
        help=(
            "Start a new run from a trained model's weights: a ready model's name (tracknet models), "
            "a .safetensors file, a run directory or a Hugging Face repo id."
        ),
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help=(
            "Refuse to train (exit 2) when a clip under data.root cannot be read, "
            "instead of leaving it out with a warning."
        ),
    ),
]
DevicesOpt = Annotated[
    Optional[int],
    typer.Option(
        "--devices",
        min=1,
        help=(
            "Train with N processes on this machine (one per GPU; CPU processes without CUDA), "
            "DistributedDataParallel under torchrun. Effective batch = batch_size x N x grad_accumulation. "
            "\\[default: 1]"
        ),
    ),
]


def train(
    profile: ProfileOpt = None,
    data: DataOpt = None,
    model: ModelOpt = None,
    training: TrainingOpt = None,
    set_: SetOpt = None,
    out: OutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    resume: ResumeOpt = None,
    init_from: InitFromOpt = None,
    strict: StrictOpt = False,
    devices: DevicesOpt = None,
) -> None:
    """Train a heatmap model; writes runs/<profile>/expN (config, log, metrics, overlays, weights, state)."""
    from tracknet_cli.training.distributed import under_torchrun

    if devices is not None and under_torchrun():
        raise typer.BadParameter(
            "already running under torchrun: its --nproc-per-node sets the processes", param_hint="--devices"
        )
    launch = devices is not None and devices > 1
    if resume is not None:
        if any(v is not None for v in (profile, data, model, training, out, init_from)) or dry_run:
            raise typer.BadParameter(
                "--resume takes the run's own config: only --set may go with it", param_hint="--resume"
            )
        _resume(resume, set_ or [], devices if launch else None)
        return
    if init_from is not None and all(v is None for v in (profile, data, model, training)):
        # Fine-tuning a ready model: its own recipe (the bundled models' architecture and crops), 5 minutes.
        profile = FINETUNE_PROFILE
        console.info(
            f"--init-from without --profile: using the {FINETUNE_PROFILE} profile "
            "(tracknet config show --profile finetune; pick another with --profile)"
        )
    resolved = resolve_selection(profile, data, model, training, set_)
    if dry_run:
        if launch:
            raise typer.BadParameter("--dry-run runs one process: leave out --devices", param_hint="--devices")
        _dry_run(resolved, as_json)
        return
    if as_json:
        raise typer.BadParameter("--json goes with --dry-run", param_hint="--json")
    init_path = _init_path(init_from, resolved.config)
    from tracknet_cli.data.datasets import check_training_data
    from tracknet_cli.training.loggers import require_trackers

    require_trackers(resolved.config)  # before a run directory exists
    _report_skipped(check_training_data(resolved.config), strict)
    if launch:
        picked = {"--profile": profile, "--data": data, "--model": model, "--training": training}
        _launch_new(devices, resolved, out, {**picked, "--init-from": init_path}, set_)
    else:
        _train_new(resolved, out, init_path)


FINETUNE_PROFILE = "finetune"


def _init_path(init_from: Optional[str], config) -> Optional[Path]:
    """The weights --init-from names, checked against the config before anything is written."""
    if init_from is None:
        return None
    from tracknet_cli.inference.checkpoint import check_init_from
    from tracknet_cli.pretrained.resolve import resolve_checkpoint

    init_path = resolve_checkpoint(init_from, parameter="init_from").path
    check_init_from(config, init_path, init_from)
    return init_path


def _launch_new(devices: int, resolved, out: Optional[Path], picked: dict, sets: Optional[list[str]]) -> None:
    """A new run as `devices` processes: the run directory is created here, once, for every rank."""
    from tracknet_cli.inference.rundir import create_run_dir
    from tracknet_cli.training.launch import check_devices

    check_devices(devices, resolved.config)
    run_dir = create_run_dir(resolved.profile_name, out, claim=False).resolve()
    worker = [a for flag, v in picked.items() if v is not None for a in (flag, str(v))]
    _launch(devices, resolved.config, worker + _set_args(sets) + ["--out", str(run_dir)])


def _train_new(resolved, out: Optional[Path], init_path: Optional[Path]) -> None:
    """A new run in this process (one rank of it under torchrun)."""
    from tracknet_cli.inference.rundir import create_run_dir
    from tracknet_cli.training.distributed import context_from_env, main_only, process_group

    ctx = context_from_env()
    with _rank_errors(ctx), process_group(ctx, resolved.config.training.device):
        run_dir = main_only(ctx, lambda: create_run_dir(resolved.profile_name, out))
        _run(resolved.config, run_dir, init_from=init_path, dist=ctx)


def _report_skipped(problems: list, strict: bool) -> None:
    """One warning per clip training leaves out (rank 0 only); --strict makes the first an error."""
    import os

    lines = [p.message if p.file in p.message else f"{p.file}: {p.message}" for p in problems]
    if lines and strict:
        raise InputError(
            f"{lines[0]} ({len(lines)} clip(s) unreadable: fix or remove them, "
            "or leave out --strict to train without them)"
        )
    if os.environ.get("RANK", "0") == "0":
        for line in lines:
            console.warn(f"{line}; training without it (--strict refuses)")


def _set_args(sets: Optional[list[str]]) -> list[str]:
    return [a for s in sets or [] for a in ("--set", s)]


def _launch(devices: int, config, worker_args: list[str]) -> None:
    """`--devices N` outside torchrun: start N copies of this command under torchrun and end as they do."""
    from tracknet_cli.training.launch import launch

    launch(devices, config, worker_args, debug=console.debug_enabled(), quiet=console.quiet(), info=console.info)


@contextmanager
def _rank_errors(ctx):
    """Ranks other than 0 stay silent, except for runtime failures of their own (prefixed with the rank).

    Usage and config errors are the same on every rank, so rank 0's line says it once; exit codes are kept.
    """
    if not ctx.enabled or ctx.is_main:
        yield
        return
    console.configure(debug=console.debug_enabled(), quiet=True)
    warnings.simplefilter("ignore")  # rank 0 shows library warnings once
    try:
        yield
    except TrackNetError as exc:
        if exc.exit_code == EXIT_FAILURE:
            console.error_line(f"rank {ctx.rank}: {exc.line(flag)}")
        raise Reported(exc.exit_code) from None


def _resume(run_dir: Path, sets: list[str], devices: Optional[int]) -> None:
    """--resume: the run's own config (`sets` applied) and its state; under torchrun when `devices` is given."""
    from tracknet_cli.training.artifacts import RunDirectory, resume_config
    from tracknet_cli.training.distributed import context_from_env, main_only, process_group

    config = resume_config(run_dir, sets)
    if devices is not None:
        from tracknet_cli.training.launch import check_devices

        check_devices(devices, config)
        _launch(devices, config, ["--resume", str(run_dir), *_set_args(sets)])
        return
    ctx = context_from_env()
    with _rank_errors(ctx):
        state = RunDirectory(run_dir).load_state()
        with process_group(ctx, config.training.device):
            from tracknet_cli.inference.rundir import claim_run_dir

            main_only(ctx, lambda: claim_run_dir(run_dir))
            _run(config, run_dir, resume=state, dist=ctx)


def _run(config, run_dir: Path, **kwargs) -> None:
    from tracknet_cli.cli.progress import TrainProgress
    from tracknet_cli.training.launch import run

    dist = kwargs.get("dist")
    console.info(f"run directory: {run_dir}")
    result = run(config, run_dir, TrainProgress(), **kwargs)
    if dist is None or dist.is_main:
        _show_summary(run_dir, result)


def _show_summary(run_dir: Path, result) -> None:
    best = result.best
    summary = {
        "run_dir": str(run_dir),
        "steps": result.steps,
        "stopped_because": result.stopped_because,
        "best_weights": str(run_dir / "weights" / "best.safetensors") if best else None,
        "best_step": best.step if best else None,
        "best_f1": round(best.f1, 4) if best else None,
    }
    print(json.dumps(summary) if not console.out.is_terminal else console.printable(_summary_text(summary)))


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
