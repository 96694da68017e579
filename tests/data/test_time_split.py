"""`data.split.by: time`: every clip cut in time order (a few labelled clips, as a fine-tune has),
its pieces decoded from the right frames and scored and written with their true frame numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tests.cli.helpers import tracknet
from tests.data.test_frames import level, write_video
from tracknet_cli.config.schema import SplitConfig
from tracknet_cli.data.clips import discover_clips
from tracknet_cli.data.frames import FrameMemory, source_frames
from tracknet_cli.data.geometry import Codec
from tracknet_cli.data.labels import LabelTable
from tracknet_cli.data.splits import split_clips


def test_real_handball_clip_is_cut_at_the_labelled_frames_quantiles(realdata: Path) -> None:
    # 276 frames, of which 274 are labelled (0182 and 0183 are visible without coordinates: masked).
    # 15 % of 274 is 41 for test and 41 for validation, so validation begins at the 193rd labelled
    # frame (index 192 among labelled frames = frame 194, two masked frames earlier) and test at the
    # 234th (frame 235).
    clips = discover_clips(realdata / "handball-tracknet-layout")
    s = split_clips(clips, SplitConfig(by="time", val_ratio=0.15, test_ratio=0.15))
    assert [c.id for c in s.train] == ["game1/Clip1[0:194]"]
    assert [c.id for c in s.val] == ["game1/Clip1[194:235]"]
    assert [c.id for c in s.test] == ["game1/Clip1[235:276]"]
    test = s.test[0]
    assert (test.start, len(test), test.frame_paths[0].name, test.frame_paths[-1].name) == (
        235,
        41,
        "0235.jpg",
        "0275.jpg",
    )
    whole = clips[0]
    assert test.whole is whole
    assert np.array_equal(test.labels.x, whole.labels.x[235:], equal_nan=True)
    # The masked frames' problems stay with the piece that holds them.
    assert [p.frame for p in s.train[0].labels.problems] == [182, 183]
    assert not s.val[0].labels.problems and not test.labels.problems


def _video_clip(tmp_path: Path, n: int):
    write_video(tmp_path / "rally.mp4", n)
    with (tmp_path / "rally.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Frame", "Visibility", "X", "Y"])
        for i in range(n):
            w.writerow([i, 1, 10 + i, 20])
    return discover_clips(tmp_path)[0]


def test_a_video_piece_decodes_its_own_frames(tmp_path: Path) -> None:
    whole = _video_clip(tmp_path, 20)
    s = split_clips([whole], SplitConfig(by="time", val_ratio=0.25, test_ratio=0.0))
    assert [c.id for c in s.train] == ["rally[0:15]"] and [c.id for c in s.val] == ["rally[15:20]"]
    val = s.val[0]
    codec = Codec((160, 90), (160, 90), (80, 45))
    frames = source_frames(val, codec, FrameMemory()).get(range(5))
    means = [float(f.mean()) for f in frames]
    assert np.allclose(means, [level(i) for i in range(15, 20)], atol=3.0), means
    assert list(val.labels.x) == [25.0, 26.0, 27.0, 28.0, 29.0]


def test_only_labelled_frames_count_and_short_pieces_are_dropped() -> None:
    # 40 frames, labelled only from frame 20 on (a labelling session that began mid-clip):
    # validation gets the last 20 % of the 20 labels (frames 36-39); with test_ratio 0.05 the test
    # piece would be one labelled frame (frame 39): shorter than a window, so it is dropped.
    vis = [-1] * 20 + [1] * 20
    table = LabelTable.from_arrays(vis, [5.0] * 40, [5.0] * 40, width=10, height=10)
    from tracknet_cli.data.clips import Clip

    clip = Clip("c", Path("/d"), [Path(f"/d/{i:04d}.jpg") for i in range(40)], None, table, 10, 10, None)
    s = split_clips([clip], SplitConfig(by="time", val_ratio=0.2, test_ratio=0.0))
    assert [c.id for c in s.train] == ["c[0:36]"] and [c.id for c in s.val] == ["c[36:40]"] and not s.test
    s = split_clips([clip], SplitConfig(by="time", val_ratio=0.15, test_ratio=0.05))
    assert [c.id for c in s.val] == ["c[36:39]"] and not s.test


def test_lists_with_a_time_split_are_refused_in_one_line(tmp_path: Path) -> None:
    proc = tracknet("config", "show", "--set", "data.split.by=time", "--set", "data.split.val=[game1]")
    assert proc.returncode == 2, proc.stderr
    assert "by: time cuts every clip" in proc.stderr and "Traceback" not in proc.stderr


def test_train_eval_and_save_csv_on_a_time_split(realdata: Path, tmp_path: Path) -> None:
    """The real CLI: train on the first 70 % of the handball clip, score its last 15 % (frames
    235-275), and write those rows under their own frames' names in the clip's file."""
    from tests.cli.helpers import TINY

    run = tmp_path / "run"
    proc = tracknet(
        "train",
        *TINY,
        "--set",
        f"data.root={realdata / 'handball-tracknet-layout'}",
        "--set",
        "data.split.by=time",
        "--set",
        "data.split.val_ratio=0.15",
        "--set",
        "data.split.test_ratio=0.15",
        "--set",
        "training.max_steps=2",
        "--out",
        str(run),
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "pred"
    proc = tracknet("eval", "--checkpoint", str(run), "--split", "test", "--json", "--save-csv", str(out))
    assert proc.returncode == 0, proc.stderr
    scored = json.loads(proc.stdout)
    assert [c["clip"] for c in scored["clips"]] == ["game1/Clip1[235:276]"]
    rows = list(csv.reader((out / "game1" / "Clip1" / "Label.csv").open()))
    assert [r[0] for r in rows[1:]] == [f"{i:04d}.jpg" for i in range(235, 276)]
