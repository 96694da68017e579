"""One place that seeds every random number generator from `training.seed`."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; on CPU this makes runs repeatable."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import torch

    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Filling every new tensor with NaN (the deterministic mode's default) costs time and changes
        # no result of ours: every tensor we allocate is written before it is read.
        torch.utils.deterministic.fill_uninitialized_memory = False
