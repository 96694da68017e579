"""scripts/pretrained/build_data.py lays the bundled model's public data out as the profile expects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pretrained" / "build_data.py"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64  # read as a video: 64 bytes that are not a git-lfs pointer
POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\n"


def pair(folder: Path, stem: str, video: bytes | None = VIDEO) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.csv").write_text("Frame,Ball,x,y\n0,0,-1.000,-1.000\n")
    if video is not None:
        (folder / f"{stem}.mp4").write_bytes(video)


def test_games_9_and_10_are_held_out_and_the_second_stage_adds_the_extra_rallies(tmp_path: Path) -> None:
    tennis, badminton, extra, out = tmp_path / "tnv3", tmp_path / "bad", tmp_path / "raw_data2", tmp_path / "out"
    pair(tennis / "raw_data", "game1_Clip1")
    pair(tennis / "raw_data", "game9_Clip2")
    pair(tennis / "raw_data2", "game10_Clip1")
    pair(tennis / "raw_data2", "game8_Clip7", POINTER)  # a pointer, not a video: skipped and named
    pair(badminton, "00001")
    pair(badminton, "00002")
    pair(extra, "00001", None)  # the video is missing: skipped and named
    pair(extra, "00003")
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--tennis",
            str(tennis),
            "--badminton",
            str(badminton),
            "--badminton-extra",
            str(extra),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_symlink())
    assert files == [
        "tennis-test/game10_Clip1.csv",
        "tennis-test/game10_Clip1.mp4",
        "tennis-test/game9_Clip2.csv",
        "tennis-test/game9_Clip2.mp4",
        "train-more/badminton",
        "train-more/badminton2/00003.csv",
        "train-more/badminton2/00003.mp4",
        "train-more/tennis",
        "train/badminton/00001.csv",
        "train/badminton/00001.mp4",
        "train/badminton/00002.csv",
        "train/badminton/00002.mp4",
        "train/tennis/game1_Clip1.csv",
        "train/tennis/game1_Clip1.mp4",
    ]
    assert (out / "train-more/badminton2/00003.mp4").resolve() == (extra / "00003.mp4").resolve()
    assert sorted(p.name for p in (out / "train-more/badminton").iterdir()) == [
        "00001.csv",
        "00001.mp4",
        "00002.csv",
        "00002.mp4",
    ]
    assert "raw_data2/game8_Clip7.mp4" in run.stdout and "raw_data2/00001.mp4" in run.stdout
    assert "badminton: 2 rallies, 1 more" in run.stdout


def test_padel_points_split_by_match_and_set_and_every_other_tennis_clip_rehearsed(tmp_path: Path) -> None:
    """scripts/pretrained/padel_data.py: semi-final sets 0-1 train, set 2 validates, set 3 and the other
    match are held out; --tennis links every other clip in name order, the tennis validation clips of
    profiles/pretrained_fast.yaml (game1_Clip2 among them) left out."""
    script = SCRIPT.parent / "padel_data.py"
    clean, tennis, out = tmp_path / "clean", tmp_path / "tennis", tmp_path / "out"
    for stem in [
        "R_Semis_AB_0_00_0",
        "R_Semis_AB_1_10_2",
        "R_Semis_AB_2_20_0",
        "R_Semis_AB_3_30_1",
        "R_Octavos_CD_2_53_0",
    ]:
        pair(clean, stem)
    for stem in ["game1_Clip1", "game1_Clip2", "game1_Clip3", "game2_Clip1", "game2_Clip2"]:
        pair(tennis, stem)
    args = [sys.executable, str(script), str(clean), "--out", str(out), "--tennis", str(tennis)]
    run = subprocess.run(args, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    videos = sorted(str(p.relative_to(out)) for p in out.rglob("*.mp4"))
    # tennis in name order without game1_Clip2: Clip1, Clip3, game2_Clip1, game2_Clip2 -> every other: 1st, 3rd
    assert videos == [
        "tennis/game1_Clip1.mp4",
        "tennis/game2_Clip1.mp4",
        "test/R_Octavos_CD_2_53_0.mp4",
        "test/R_Semis_AB_3_30_1.mp4",
        "train/R_Semis_AB_0_00_0.mp4",
        "train/R_Semis_AB_1_10_2.mp4",
        "val/R_Semis_AB_2_20_0.mp4",
    ]
    assert (out / "tennis" / "game2_Clip1.csv").resolve() == (tennis / "game2_Clip1.csv").resolve()
    assert "tennis: 2 clips" in run.stdout
