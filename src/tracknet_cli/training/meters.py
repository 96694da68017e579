"""The bookkeeping between steps, each kind in a small class that owns its numbers and resets them in
one place when a validation has reported them:

- `LossMeter`: the training loss as the host sees it (read back from the device in batches), and its
  sum since the last validation, which `state/last.pt` keeps;
- `Clock`: where one process's time goes (data preparation, waits for the loader, steps, validations)
  and what `training.time_limit` leaves for training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class LossMeter:
    """Each micro-batch's loss is kept on the device (`keep`) until it is read back (`take`, then `add`
    each value: one host-device sync for many steps on a GPU). `last` is the last value read, `sum`
    and `count` add up those read since the last validation (`reset`), whose row reports their mean.
    The sum and count travel in `state/last.pt` under their first names, `window_loss` and `window_n`,
    so that older states resume."""

    pending: list[Any] = field(default_factory=list)  # losses on the device, not read back yet
    last: float = float("nan")
    sum: float = 0.0
    count: int = 0
    read_step: int = 0  # the step at the last read-back

    def keep(self, loss: Any) -> None:
        self.pending.append(loss.detach())

    def take(self) -> list[Any]:
        """The losses not read back yet, handed over once."""
        pending, self.pending = self.pending, []
        return pending

    def add(self, value: float) -> None:
        self.sum += value
        self.count += 1
        self.last = value

    @property
    def mean(self) -> float:
        """The mean training loss since the last validation (nan when none was read back since)."""
        return self.sum / self.count if self.count else float("nan")

    def reset(self) -> None:
        self.sum, self.count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"window_loss": self.sum, "window_n": self.count}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.sum, self.count = float(saved["window_loss"]), int(saved["window_n"])


@dataclass
class Clock:
    """One process's time. `t0` is when the run would have started (a resumed run's, minus the time it
    trained before: `elapsed()` is the run's time), `t_local` when this process started. Until its
    first batch the time is data preparation (`prep_s`: opening clips, decoding, caching), which the
    time-based schedule leaves out; then each step is a wait for the loader and the work on the batch
    (`wait_s`, `busy_s`: since the last validation, whose row reports the share waited). A validation
    is timed (`val_seconds`: the last one's or, before the first, an estimate; `val_total_s`: all).

    `estimate_validation` times the model once for the estimate (None: the run does not validate);
    `log` is where the time-limit split and the data preparation are said (None: not on this rank).
    """

    time_limit: float | None = None
    estimate_validation: Callable[[], float] | None = None
    log: Callable[[str], None] | None = None
    t0: float = 0.0
    t_local: float = 0.0
    prep_s: float | None = None
    wait_s: float = 0.0
    busy_s: float = 0.0
    val_seconds: float | None = None
    val_total_s: float = 0.0
    _t_fetch: float = 0.0
    _t_got: float = 0.0

    def start(self, trained_before: float) -> None:
        self.t0 = time.monotonic() - trained_before
        self.t_local = time.monotonic()

    # ------------------------------------------------------------ what happens
    def fetching(self) -> None:
        """The loader is asked for the next batch."""
        self._t_fetch = time.monotonic()

    def got_batch(self) -> None:
        """A batch came: the wait counts; the first one ends the data preparation."""
        self._t_got = time.monotonic()
        self.wait_s += self._t_got - self._t_fetch
        if self.prep_s is not None:
            return
        self.prep_s = self._t_got - self.t_local
        if self.time_limit is not None and self.log is not None:
            self.log(
                f"first batch after {self.prep_s:.1f} s of data preparation (opening clips, decoding, caching); "
                f"the learning-rate schedule runs over the {max(self.training_seconds() - self.prep_s, 0):.0f} s "
                "left for training"
            )

    def stepped(self) -> None:
        """The step on the batch that came last is done."""
        self.busy_s += time.monotonic() - self._t_got

    def validated(self, seconds: float | None) -> None:
        """A validation took `seconds` (None: another rank timed it); the waits count again from nothing."""
        if seconds is not None:
            self.val_seconds = seconds
            self.val_total_s += seconds
        self.wait_s, self.busy_s = 0.0, 0.0

    # ------------------------------------------------------------ readings
    def elapsed(self) -> float:
        """The run's time so far, a resumed run's time before included."""
        return time.monotonic() - self.t0

    def process_seconds(self) -> float:
        return time.monotonic() - self.t_local

    def data_wait(self) -> float:
        """The share of the step time since the last validation spent waiting for the loader."""
        busy = self.wait_s + self.busy_s
        return self.wait_s / busy if busy > 0 else 0.0

    def budget_line(self) -> str:
        """Where this process's time went, for train.log's last lines."""
        total = self.process_seconds()
        prep = self.prep_s or 0.0
        return (
            f"time: {total:.0f} s in all: {prep:.0f} s data preparation, {self.val_total_s:.0f} s validation, "
            f"{max(total - prep - self.val_total_s, 0):.0f} s training"
        )

    # ------------------------------------------------------------ the time limit
    def training_seconds(self) -> float:
        """The part of `time_limit` left for training steps: the final validation must fit in the rest,
        so that a 10-minute run is done in 10 minutes. Its length is the last validation's, or before
        the first an estimate from timing the model on one batch of validation-sized windows."""
        limit = self.time_limit
        if self.estimate_validation is None:
            return limit
        estimated = self.val_seconds is None
        if estimated:
            self.val_seconds = self.estimate_validation()
        training = max(limit - self.val_seconds, 0.5 * limit)
        if estimated and self.log is not None:
            self.log(_time_limit_line(limit, self.val_seconds, training))
        return training

    def out_of_time(self) -> bool:
        """Only the final validation fits in what is left of the time limit."""
        return self.elapsed() >= self.training_seconds()

    def schedule_step(self, step: int, total_steps: int) -> int:
        """The step the lr schedule sees. With a time limit, whichever budget is nearer its end, so a run
        cut by the clock has still decayed its learning rate. The clock starts at this process's first
        batch: minutes of decoding and caching before it are not schedule (a fine-tune of footage never
        cached used to reach its last learning rates within a few steps)."""
        if self.time_limit is None:
            return step
        prep = self.prep_s or 0.0
        span = max(self.training_seconds() - prep, 1e-9)
        by_time = int((time.monotonic() - self.t0 - prep) / span * total_steps)
        return min(max(step, by_time), total_steps)


def _time_limit_line(limit: float, val_seconds: float, training: float) -> str:
    """What train.log says of the split: a validation longer than the limit leaves makes the run overrun it."""
    if training <= limit - val_seconds:  # the same expression the split took, so no rounding decides it
        return f"time limit {limit:g} s: about {val_seconds:.0f} s kept for the final validation"
    return (
        f"time limit {limit:g} s: the final validation takes about {val_seconds:.0f} s, more than half of it; "
        f"training keeps {training:.0f} s and the run will take about {training + val_seconds:.0f} s "
        "(validate on fewer frames: data.split.val_ratio, data.split.val)"
    )
