"""What `fit` tells its caller while it trains: the named hook points and the plain data they get.

A module of its own so that the loop, which takes the hooks, and the session, which calls them,
both import it and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tracknet_cli.training.artifacts import ValidationRow


@dataclass
class StepInfo:
    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    samples_per_s: float


@dataclass
class Hooks:
    """Named hook points; each gets plain data. Defaults do nothing."""

    on_start: Callable[[dict[str, Any]], None] = lambda info: None
    on_step: Callable[[StepInfo], None] = lambda info: None
    on_validation: Callable[[ValidationRow, bool], None] = lambda row, is_best: None
    on_log: Callable[[str], None] = lambda line: None
