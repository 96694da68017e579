"""Clip-level splits: lists, seeded ratios, no leakage, helpful errors, subsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracknet_cli.config.schema import SplitConfig, SubsetConfig
from tracknet_cli.data.clips import Clip, discover_clips
from tracknet_cli.data.labels import LabelTable
from tracknet_cli.data.splits import apply_subset, split_clips, subset_clips
from tracknet_cli.errors import ConfigError


def _clip(clip_id: str, frames: int = 5) -> Clip:
    table = LabelTable.from_arrays([1] * frames, [1.0] * frames, [1.0] * frames, width=10, height=10)
    paths = [Path(f"/data/{clip_id}/{i:04d}.jpg") for i in range(frames)]
    return Clip(clip_id, Path("/data") / clip_id, paths, None, table, 10, 10, None)


GAMES = [_clip(f"game{g}/Clip{c}") for g in range(1, 4) for c in range(1, 4)]  # 9 clips in 3 games


def _assert_partition(splits, clips) -> None:
    ids = [c.id for name in ("train", "val", "test", "unused") for c in getattr(splits, name)]
    assert len(ids) == len(set(ids)), "a clip landed in two splits"
    assert sorted(ids) == sorted(c.id for c in clips)


def test_ratio_split_is_disjoint_seeded_and_order_independent() -> None:
    cfg = SplitConfig(val_ratio=0.25, test_ratio=0.25, seed=3)
    a = split_clips(GAMES, cfg)
    _assert_partition(a, GAMES)
    assert (len(a.train), len(a.val), len(a.test)) == (5, 2, 2)  # round(0.25 * 9) = 2
    assert split_clips(list(reversed(GAMES)), cfg).ids() == a.ids()
    others = [split_clips(GAMES, SplitConfig(val_ratio=0.25, test_ratio=0.25, seed=s)).ids() for s in range(4, 10)]
    assert any(o != a.ids() for o in others)


def test_small_sets_keep_a_training_clip() -> None:
    two = GAMES[:2]
    s = split_clips(two, SplitConfig(val_ratio=0.1))  # round(0.2) would give no validation clip: at least one
    assert (len(s.train), len(s.val)) == (1, 1)
    one = split_clips(GAMES[:1], SplitConfig(val_ratio=0.5))
    assert (len(one.train), len(one.val)) == (1, 0)


def test_lists_of_games_ids_and_clip_names() -> None:
    clips = GAMES + [_clip("00001"), _clip("00002")]
    s = split_clips(clips, SplitConfig(val=["game2", "00001"], test=["game3/Clip1"], val_ratio=0.0))
    _assert_partition(s, clips)
    assert [c.id for c in s.val] == ["game2/Clip1", "game2/Clip2", "game2/Clip3", "00001"]
    assert [c.id for c in s.test] == ["game3/Clip1"]
    assert "game3/Clip2" in [c.id for c in s.train] and "00002" in [c.id for c in s.train]


def test_listed_train_leaves_the_rest_unused() -> None:
    s = split_clips(GAMES, SplitConfig(train=["game1"], val=["game2"]))
    _assert_partition(s, GAMES)
    assert len(s.train) == 3 and len(s.val) == 3 and len(s.test) == 0 and len(s.unused) == 3


def test_unlisted_val_draws_by_ratio_from_unlisted_clips() -> None:
    s = split_clips(GAMES, SplitConfig(test=["game3"], val_ratio=0.2, seed=1))
    _assert_partition(s, GAMES)
    assert len(s.test) == 3 and len(s.val) == 2 and not {c.game for c in s.val} & {"game3"}


def test_unknown_name_names_the_key_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        split_clips(GAMES, SplitConfig(test=["gmae2"]))
    line = info.value.line()
    assert line.startswith("data.split.test:") and "'gmae2'" in line and "game2" in line


def test_clip_in_two_lists_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"data.split.val: clip game1/Clip2 is already in data.split.train"):
        split_clips(GAMES, SplitConfig(train=["game1"], val=["game1/Clip2"]))


def test_ambiguous_clip_name_asks_for_game() -> None:
    with pytest.raises(ConfigError, match=r"data.split.val: 'Clip1' matches game1/Clip1, game2/Clip1"):
        split_clips(GAMES, SplitConfig(val=["Clip1"]))


def test_subset_cuts_clips_and_frames_after_the_split() -> None:
    cut = subset_clips(GAMES, SubsetConfig(max_clips=2, max_frames_per_clip=3))
    assert [c.id for c in cut] == ["game1/Clip1", "game1/Clip2"] and [len(c) for c in cut] == [3, 3]
    assert len(cut[0].frame_paths) == 3
    s = apply_subset(split_clips(GAMES, SplitConfig(val_ratio=0.3)), SubsetConfig(max_clips=1))
    assert (len(s.train), len(s.val)) == (1, 1)
    assert subset_clips(GAMES, SubsetConfig()) == GAMES


def test_real_badminton_split_has_no_leakage(realdata: Path) -> None:
    clips = discover_clips(realdata / "badminton-train")
    s = split_clips(clips, SplitConfig(val_ratio=0.12, test_ratio=0.12, seed=0))
    _assert_partition(s, clips)
    assert (len(s.val), len(s.test)) == (4, 4) and len(s.train) == 25


def test_a_listed_test_split_is_scored_without_the_folders_the_run_trained_on(synth_root: Path) -> None:
    """`eval --split test` on a root holding the held-out clips but not a folder the run trained on
    (the bundled `padel` lists tennis/ in its training split): only the asked list is resolved."""
    from tracknet_cli.config.schema import TrackNetConfig
    from tracknet_cli.training.evaluate import select_clips

    split = SplitConfig(by="clip", train=["game1/Clip1", "tennis"], val=["game1/Clip2"], test=["game1/Clip3"])
    base = TrackNetConfig()
    config = base.model_copy(update={"data": base.data.model_copy(update={"split": split})})
    assert [c.id for c in select_clips(config, synth_root, "test")] == ["game1/Clip3"]
    assert [c.id for c in select_clips(config, synth_root, "val")] == ["game1/Clip2"]
    with pytest.raises(ConfigError, match="no game or clip named 'tennis'"):
        select_clips(config, synth_root, "train")
    with pytest.raises(ConfigError, match="no game or clip named 'game9'"):
        select_clips(
            config.model_copy(
                update={"data": config.data.model_copy(update={"split": split.model_copy(update={"test": ["game9"]})})}
            ),
            synth_root,
            "test",
        )
