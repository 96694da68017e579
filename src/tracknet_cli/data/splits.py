"""Train/val/test at clip level: listed names win over seeded ratios; no clip is in two splits.

Frames of one clip are strongly correlated, so splitting below the clip would leak the test set
into training. A listed name is a game (all its clips), a game/clip id, or a clip name that is unique.
A few labelled clips (a fine-tune on new footage) have no clips to spare: `by: time` cuts every clip
instead, in time order, so validation and test are later stretches of play than training saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tracknet_cli.choices import near
from tracknet_cli.config.schema import SplitConfig, SubsetConfig
from tracknet_cli.data.clips import Clip
from tracknet_cli.errors import ConfigError

SPLITS = ("train", "val", "test")
MIN_PIECE = 3  # frames: a time-split piece shorter than one 3-frame window is dropped


@dataclass
class Splits:
    train: list[Clip] = field(default_factory=list)
    val: list[Clip] = field(default_factory=list)
    test: list[Clip] = field(default_factory=list)
    unused: list[Clip] = field(default_factory=list)  # clips no list and no ratio claimed (train was listed)

    def ids(self) -> dict[str, list[str]]:
        return {name: [c.id for c in getattr(self, name)] for name in (*SPLITS, "unused")}


def _resolve(name: str, clips: Sequence[Clip], key: str) -> list[Clip]:
    text = name.strip().strip("/")
    by_id = [c for c in clips if c.id == text]
    if by_id:
        return by_id
    by_game = [c for c in clips if c.game == text or c.game.startswith(text + "/")]
    if by_game:
        return by_game
    by_name = [c for c in clips if c.name == text]
    if len(by_name) == 1:
        return by_name
    if len(by_name) > 1:
        raise ConfigError(f"{key}: {name!r} matches {', '.join(c.id for c in by_name[:4])}; write game/clip")
    candidates = sorted({c.id for c in clips} | {c.game for c in clips if c.game} | {c.name for c in clips})
    close = near(text, candidates, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known games/clips: {', '.join(candidates[:6])}"
    raise ConfigError(f"{key}: no game or clip named {name!r} in the data", hint=hint)


def _count(ratio: float, total: int) -> int:
    """Clips for a ratio: at least one when the ratio asks for any and more than one clip exists."""
    if ratio <= 0 or total < 2:
        return 0
    return max(1, round(ratio * total))


def split_clips(clips: Sequence[Clip], split: SplitConfig) -> Splits:
    """The clip-level split, or with `split.by == "time"` the time split (`split_by_time`)."""
    if split.by == "time":
        return split_by_time(clips, split)
    return _split_by_clip(clips, split)


def _cut(clip: Clip, val_ratio: float, test_ratio: float) -> tuple[int, int]:
    """Frame indices where validation and test begin: at the labelled frames' quantiles, so each
    split gets its share of labels also when only some frames are labelled."""
    labelled = np.flatnonzero(clip.labels.state >= 0)
    if len(labelled) == 0:
        return len(clip), len(clip)
    n = len(labelled)
    n_test = round(test_ratio * n)
    n_val = round(val_ratio * n)
    val_at = int(labelled[n - n_test - n_val]) if n_val + n_test < n else len(clip)
    test_at = int(labelled[n - n_test]) if 0 < n_test < n else len(clip)
    return (val_at if n_val else test_at), test_at


def split_by_time(clips: Sequence[Clip], split: SplitConfig) -> Splits:
    """Every clip cut in time order: its first labelled frames train, the next `val_ratio` of them
    validate, the last `test_ratio` test (pieces `ID[begin:end]`, see `Clip.span`). A piece shorter
    than a few frames is dropped rather than given a split it cannot fill."""
    out = Splits()
    for clip in sorted(clips, key=lambda c: c.id):
        val_at, test_at = _cut(clip, split.val_ratio, split.test_ratio)
        for name, begin, end in (("train", 0, val_at), ("val", val_at, test_at), ("test", test_at, len(clip))):
            if end - begin >= MIN_PIECE:
                getattr(out, name).append(clip if (begin, end) == (0, len(clip)) else clip.span(begin, end))
    return out


def _split_by_clip(clips: Sequence[Clip], split: SplitConfig) -> Splits:
    """Assign every clip to at most one split (see module docstring for how names match).

    Listed splits take their clips. The rest are shuffled with `split.seed` (order independent of
    discovery order); unlisted val/test take round(ratio × all clips) of them, and an unlisted train
    takes what remains. When train is listed, leftover clips are `unused`.
    """
    ordered = sorted(clips, key=lambda c: c.id)
    out = Splits()
    owner: dict[str, str] = {}
    for name in SPLITS:
        names = getattr(split, name)
        if names is None:
            continue
        chosen: list[Clip] = []
        for entry in names:
            for clip in _resolve(entry, ordered, f"data.split.{name}"):
                if clip.id in owner and owner[clip.id] != name:
                    raise ConfigError(
                        f"data.split.{name}: clip {clip.id} is already in data.split.{owner[clip.id]}; "
                        "a clip may be in one split only"
                    )
                if clip.id not in owner:
                    owner[clip.id] = name
                    chosen.append(clip)
        setattr(out, name, chosen)
    pool = [c for c in ordered if c.id not in owner]
    random.Random(split.seed).shuffle(pool)
    total = len(ordered)
    for name, ratio in (("test", split.test_ratio), ("val", split.val_ratio)):
        if getattr(split, name) is None:
            n = min(_count(ratio, total), max(len(pool) - (1 if split.train is None else 0), 0))
            setattr(out, name, sorted(pool[:n], key=lambda c: c.id))
            pool = pool[n:]
    rest = sorted(pool, key=lambda c: c.id)
    if split.train is None:
        out.train = rest
    else:
        out.unused = rest
    return out


def subset_clips(clips: Sequence[Clip], subset: SubsetConfig) -> list[Clip]:
    """Cut a split down for quick runs: the first `max_clips` clips, each to `max_frames_per_clip`."""
    chosen = list(clips)[: subset.max_clips] if subset.max_clips else list(clips)
    if subset.max_frames_per_clip:
        chosen = [c.head(subset.max_frames_per_clip) for c in chosen]
    return chosen


def apply_subset(splits: Splits, subset: SubsetConfig) -> Splits:
    """`subset_clips` on each split, after splitting, so the split itself does not depend on the subset."""
    return Splits(*(subset_clips(getattr(splits, n), subset) for n in SPLITS), unused=splits.unused)
