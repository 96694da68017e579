"""DistributedDataParallel: the torchrun launch, the process group, and what ranks share.

`tracknet train --devices N` relaunches itself through torchrun's own launcher (`torch.distributed.run`,
called in this process so that Ctrl-C and the workers' exit codes map to ours without torchrun's
traceback). Under torchrun (RANK and WORLD_SIZE set) every process trains on its shard of the
windows; rank 0 alone writes the run directory and prints. Multi-node runs use plain
`torchrun --nnodes ... -m tracknet_cli train ...` (docs/training/distributed.md).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from tracknet_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, ConfigError
from tracknet_cli.training.artifacts import Overlay, RunDirectory, ValidationRow

T = TypeVar("T")

# Followers wait at a collective while rank 0 validates and writes checkpoints: allow for a long validation.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a torchrun job. The default is a single process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------ devices and models
    def device(self, picked: Any) -> Any:
        """This rank's device: cuda:LOCAL_RANK when training on CUDA; CPU stays CPU."""
        import torch

        if not self.enabled:
            return picked
        if picked.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        if picked.type != "cpu":
            raise ConfigError(
                f"distributed training runs on CUDA (nccl) or CPU (gloo), not {picked.type}: "
                f"set training.device=cpu or cuda"
            )
        return picked

    def wrap(self, model: Any, device: Any) -> Any:
        """DistributedDataParallel around `model` (which stays the module that is saved and validated)."""
        if not self.enabled:
            return model
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        # Depthwise (C,1,k,k) weights get gradients whose stride on the size-1 dimension differs from
        # the bucket's: the same memory layout, and DDP says so once per run. Not worth a warning.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        # Gradients as views into DDP's buckets: no copy of every gradient per step.
        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True
        )

    # ------------------------------------------------------------ collectives (no-ops on one process)
    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank (any picklable object)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, so that every rank stops at the same step (wall-clock budgets differ per rank)."""
        return bool(self.broadcast(bool(flag)))

    def mean(self, values: Any) -> Any:
        """Element-wise mean of a tensor over ranks (the loss each rank saw, for logs and the finite check)."""
        if not self.enabled:
            return values
        import torch.distributed as dist

        values = values.detach().clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


SINGLE = DistContext()


def under_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """True inside a process that torchrun started (it sets RANK and WORLD_SIZE)."""
    env = os.environ if env is None else env
    return "RANK" in env and "WORLD_SIZE" in env


def context_from_env(env: Mapping[str, str] | None = None) -> DistContext:
    env = os.environ if env is None else env
    if not under_torchrun(env):
        return SINGLE
    return DistContext(
        rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", "0")), world_size=int(env["WORLD_SIZE"])
    )


def backend_for(device_name: str) -> str:
    """nccl when the run trains on CUDA, gloo otherwise (CPU)."""
    import torch

    on_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    return "nccl" if on_cuda else "gloo"


@contextmanager
def process_group(ctx: DistContext, device_name: str) -> Iterator[DistContext]:
    """Join the torchrun job for the duration of the block (nothing to join on one process)."""
    if not ctx.enabled:
        yield ctx
        return
    import torch
    import torch.distributed as dist

    backend = backend_for(device_name)
    if backend == "nccl":
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {ctx.local_rank} has no GPU ({torch.cuda.device_count()} visible): "
                f"start at most one process per GPU"
            )
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield ctx
    except BaseException:
        dist.destroy_process_group()  # no barrier: a failed peer would never arrive
        raise
    # A follower that tears gloo down while rank 0 still writes its last files was seen to abort
    # ("terminate called without an active exception", SIGABRT): leave together.
    dist.barrier()
    dist.destroy_process_group()


def main_only(ctx: DistContext, make: Callable[[], T]) -> T:
    """Run `make` on rank 0 and hand its result to every rank; a failure there fails every rank alike.

    Followers re-raise rank 0's project error (same class, message and parameters) so their exit codes match.
    """
    if not ctx.enabled:
        return make()
    from tracknet_cli.errors import TrackNetError

    outcome: tuple[str, Any] = ("ok", None)
    if ctx.is_main:
        try:
            outcome = ("ok", make())
        except TrackNetError as exc:
            outcome = ("error", exc)  # pickled whole: message, hint, parameters (`errors`)
    outcome = ctx.broadcast(outcome)
    if outcome[0] == "error":
        raise outcome[1]
    return outcome[1]


# ---------------------------------------------------------------- rank 0 writes, the others do not
class FollowerRunDirectory(RunDirectory):
    """The run directory as seen by ranks other than 0: every write is a no-op, nothing is created."""

    def __init__(self, path: Path) -> None:  # noqa: D107 - deliberately no mkdir, no metrics read
        self.path = path
        self.rows: list[ValidationRow] = []
        self.steps: list[Any] = []

    def write_config(self, config: Any) -> None:
        pass

    def logger(self, echo: Callable[[str], None] | None = None) -> Callable[[str], None]:
        return lambda line: None

    def _write_metrics(self) -> None:
        pass

    def append_step(self, row: Any) -> None:
        pass

    def save_weights(
        self, which: str, model: Any, config: Any, *, threshold: float, loss: str, metrics: dict[str, float]
    ) -> Path:
        return self.path / "weights" / f"{which}.safetensors"

    def save_state(self, state: dict[str, Any]) -> Path:
        return self.state_path

    def write_overlay(self, epoch: int, overlay: Overlay | None) -> Path | None:
        return None

    def write_curves(self) -> Path | None:
        return None


def no_grad_sync(model: Any, sync: bool) -> Any:
    """DDP's `no_sync()` for the micro-batches of a gradient accumulation that are not the last one."""
    if sync or not hasattr(model, "no_sync"):
        return nullcontext()
    return model.no_sync()


# ---------------------------------------------------------------- the launcher
@dataclass
class LaunchResult:
    exit_code: int
    message: str | None = None  # set when no worker could say what happened (killed by a signal)


def torchrun_args(devices: int, worker_args: list[str]) -> list[str]:
    """The torchrun command line (after `torchrun`) that runs `python -m tracknet_cli WORKER_ARGS` N times."""
    return ["--standalone", "--nnodes", "1", "--nproc-per-node", str(devices), "--module", "tracknet_cli", *worker_args]


def launch_local(devices: int, worker_args: list[str], *, verbose: bool = False) -> LaunchResult:
    """Start `devices` processes on this machine under torchrun and wait for them.

    Equivalent to `python -m torch.distributed.run --standalone --nproc-per-node N -m tracknet_cli ARGS`.
    The workers print their own errors (rank 0 only for usage errors); this returns the exit code to
    end with: the first worker's own non-zero code, 130 after Ctrl-C or SIGTERM, 1 when a worker died by a signal.
    """
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of torchrun's blanket 1 thread
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // devices))
    if not verbose:  # torchrun's agent logs each event; the workers say what matters
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if name.startswith("torch.distributed") and isinstance(logger, logging.Logger):
                logger.setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(torchrun_args(devices, worker_args))
    try:
        run(args)
    except SignalException as exc:
        return LaunchResult(
            EXIT_INTERRUPTED if exc.sigval in (signal.SIGINT, signal.SIGTERM) else 128 + int(exc.sigval)
        )
    except ChildFailedError as exc:
        return _failure_result(exc)
    return LaunchResult(0)


def _failure_result(exc: Any) -> LaunchResult:
    import signal

    failures = sorted(exc.failures.items(), key=lambda kv: kv[1].timestamp)
    for _, failure in failures:
        if failure.exitcode > 0:
            return LaunchResult(int(failure.exitcode))
    rank, first = failures[0]
    try:
        name = signal.Signals(-first.exitcode).name
    except ValueError:
        name = f"signal {-first.exitcode}"
    return LaunchResult(EXIT_FAILURE, f"rank {rank} was killed by {name} (out of memory?); the others were stopped")
