"""How a `tracknet train` run starts: in this process, where SIGTERM stops it as Ctrl-C does, or
(`--devices N` outside torchrun) as N copies of the command under torchrun on this machine.

The CLI parses the command line and renders; the torchrun launcher itself (`launch_local`) and the
process group are in training/distributed.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracknet_cli.errors import ConfigError, Reported, RuntimeFailure

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.training.loop import Hooks, TrainResult


def run(config: TrackNetConfig, run_dir: Path, progress: AbstractContextManager[Hooks], **fit_args: Any) -> TrainResult:
    """`fit` in this process (`fit_args`: resume, init_from, dist), reporting to the hooks that
    `progress` gives when it is entered.

    `kill PID`, `docker stop`, a scheduler's preemption stop as Ctrl-C does (state and last weights
    saved, exit 130): a run started with `nohup ... &` ignores SIGINT, so SIGTERM is how it is
    stopped. Further SIGTERMs are ignored while the state is written (writes are atomic). `progress`
    opens and closes inside that handling.
    """
    import signal

    from tracknet_cli import stopping
    from tracknet_cli.training.loop import fit

    with stopping.interrupting((signal.SIGTERM,)), progress as hooks:
        return fit(config, run_dir, hooks, **fit_args)


def check_devices(devices: int, config: TrackNetConfig) -> None:
    """`--devices N` refused before anything starts: no distributed backend for the device, too few GPUs."""
    import torch

    from tracknet_cli.training.distributed import backend_for

    if config.training.device == "mps":
        raise ConfigError(
            "{devices}: distributed training runs on CUDA (nccl) or CPU (gloo): set training.device=cpu or cuda",
            parameter="devices",
            value=devices,
        )
    backend = backend_for(config.training.device)
    if backend == "nccl" and devices > torch.cuda.device_count():
        raise ConfigError(
            f"{{devices}} {devices}: only {torch.cuda.device_count()} CUDA device(s) visible "
            "(lower {devices}, or set training.device=cpu for CPU processes)",
            parameter="devices",
            value=devices,
        )


def launch(
    devices: int,
    config: TrackNetConfig,
    train_args: list[str],
    *,
    debug: bool = False,
    quiet: bool = False,
    info: Callable[[str], None] = lambda line: None,
) -> None:
    """Start `tracknet train TRAIN_ARGS` as `devices` processes under torchrun and end as they do:
    `RuntimeFailure` when no worker could say what happened, `Reported` with the failing rank's exit
    code (that rank already printed its line). `debug` and `quiet` are passed on to the workers."""
    from tracknet_cli.training.distributed import backend_for, launch_local

    backend = backend_for(config.training.device)
    info(
        f"launching {devices} processes under torchrun ({'nccl, one per GPU' if backend == 'nccl' else 'gloo on CPU'})"
    )
    flags = (["--debug"] if debug else []) + (["--quiet"] if quiet else [])
    result = launch_local(devices, [*flags, "train", *train_args], verbose=debug)
    if result.message:
        raise RuntimeFailure(result.message)
    if result.exit_code:
        raise Reported(result.exit_code)
