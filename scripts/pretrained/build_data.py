"""Lay out the bundled model's training data from its public sources, as links (nothing is copied).

    python scripts/pretrained/build_data.py --tennis TRACKNETV3_CHECKOUT --badminton BADMINTON_DIR --out data/pretrained

- TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (folders raw_data/ and raw_data2/
  hold the TrackNet tennis dataset as gameN_ClipM.mp4 + .csv, `Frame,Ball,x,y`, 1280x720).
- BADMINTON_DIR: the 33 rallies NNNNN.mp4 + .csv of alenzenx/TrackNetV3 raw_data/ (../shared/realdata/badminton-train).

Writes OUT/train/tennis/gameN_ClipM.{mp4,csv} for games 1-8, OUT/train/badminton/NNNNN.{mp4,csv}, and
OUT/tennis-test/gameN_ClipM.{mp4,csv} for games 9 and 10 (the held-out split: reported, never tuned on).
A clip in both raw_data2/ and raw_data/ is taken from raw_data2/; a video without its csv (or one
that git stored as a pointer) is skipped and named.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEST_GAMES = {9, 10}
_NAME = re.compile(r"^game(\d+)_Clip(\d+)$")


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return
        sys.exit(f"{link} exists and points elsewhere; remove OUT or choose another --out")
    link.symlink_to(target.resolve())


def _usable_video(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(64)
    return len(head) == 64 and not head.startswith(b"version https://git-lfs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tennis", type=Path, required=True, help="checkout of MathisNcl/TrackNetV3")
    parser.add_argument("--badminton", type=Path, required=True, help="folder of NNNNN.mp4 + NNNNN.csv rallies")
    parser.add_argument("--out", type=Path, required=True)
    opts = parser.parse_args()

    taken: dict[str, Path] = {}
    skipped: list[str] = []
    for folder in ("raw_data2", "raw_data"):
        for csv in sorted((opts.tennis / folder).glob("game*_Clip*.csv")):
            video = csv.with_suffix(".mp4")
            if csv.stem in taken:
                continue
            if not video.is_file() or not _usable_video(video):
                skipped.append(f"{folder}/{video.name}")
                continue
            taken[csv.stem] = csv
    if not taken:
        sys.exit(f"{opts.tennis}: no raw_data*/gameN_ClipM.csv + .mp4 pairs found")
    for stem, csv in sorted(taken.items()):
        game = int(_NAME.match(stem).group(1))
        dest = opts.out / ("tennis-test" if game in TEST_GAMES else "train/tennis")
        _link(csv, dest / f"{stem}.csv")
        _link(csv.with_suffix(".mp4"), dest / f"{stem}.mp4")
    rallies = sorted(opts.badminton.glob("*.csv"))
    for csv in rallies:
        if csv.with_suffix(".mp4").is_file():
            _link(csv, opts.out / "train/badminton" / csv.name)
            _link(csv.with_suffix(".mp4"), opts.out / "train/badminton" / f"{csv.stem}.mp4")
    test = sum(1 for s in taken if int(_NAME.match(s).group(1)) in TEST_GAMES)
    print(f"tennis: {len(taken) - test} clips (games 1-8) in {opts.out / 'train/tennis'}, "
          f"{test} clips (games 9-10) in {opts.out / 'tennis-test'}; badminton: {len(rallies)} rallies")
    if skipped:
        print(f"skipped {len(skipped)} videos without usable data: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
