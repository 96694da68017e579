"""Lay out the bundled model's training data from its public sources, as links (nothing is copied).

    python scripts/pretrained/build_data.py --tennis TRACKNETV3_CHECKOUT --badminton BADMINTON_DIR \
        --badminton-extra ALENZENX_CHECKOUT/raw_data2 --out data/pretrained

- TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (folders raw_data/ and raw_data2/
  hold the TrackNet tennis dataset as gameN_ClipM.mp4 + .csv, `Frame,Ball,x,y`, 1280x720).
- BADMINTON_DIR: the 33 rallies NNNNN.mp4 + .csv of alenzenx/TrackNetV3 raw_data/ (../shared/realdata/badminton-train).
- --badminton-extra (optional): alenzenx/TrackNetV3 raw_data2/, other rallies of the same broadcasts
  (1280x720; its 00001.mp4 is over 4 MiB and may be missing from a shallow copy, then it is skipped).

Writes OUT/train/tennis/gameN_ClipM.{mp4,csv} for games 1-8, OUT/train/badminton/NNNNN.{mp4,csv},
OUT/tennis-test/gameN_ClipM.{mp4,csv} for games 9 and 10 (the held-out split: reported, never tuned
on), and with --badminton-extra OUT/train-more: OUT/train's two folders (linked) and badminton2/ with
the extra rallies (their names repeat raw_data/'s; the folder keeps the clips apart), the data of the
second training stage.
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


def link(target: Path, dest: Path) -> None:
    """`dest` made a symbolic link to `target`; one already there is kept if it points there, else refused."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == target.resolve():
            return
        sys.exit(f"{dest} exists and points elsewhere; remove OUT or choose another --out")
    dest.symlink_to(target.resolve())


def _usable_video(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(64)
    return len(head) == 64 and not head.startswith(b"version https://git-lfs")


def _link_rallies(folder: Path, dest: Path, skipped: list[str]) -> int:
    """Link every NNNNN.csv of `folder` that has a usable NNNNN.mp4 into `dest`; the count linked."""
    rallies = sorted(folder.glob("*.csv"))
    if not rallies:
        sys.exit(f"{folder}: no NNNNN.csv + .mp4 rallies found")
    linked = 0
    for csv in rallies:
        video = csv.with_suffix(".mp4")
        if not _usable_video(video):
            skipped.append(f"{folder.name}/{video.name}")
            continue
        link(csv, dest / csv.name)
        link(video, dest / video.name)
        linked += 1
    return linked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tennis", type=Path, required=True, help="checkout of MathisNcl/TrackNetV3")
    parser.add_argument(
        "--badminton", type=Path, help="folder of NNNNN.mp4 + NNNNN.csv rallies (left out: tennis only)"
    )
    parser.add_argument("--badminton-extra", type=Path, help="alenzenx/TrackNetV3 raw_data2/ (more rallies)")
    parser.add_argument("--out", type=Path, required=True)
    opts = parser.parse_args()

    taken: dict[str, Path] = {}
    skipped: list[str] = []
    for folder in ("raw_data2", "raw_data"):
        for csv in sorted((opts.tennis / folder).glob("game*_Clip*.csv")):
            video = csv.with_suffix(".mp4")
            if csv.stem in taken:
                continue
            if not _usable_video(video):
                skipped.append(f"{folder}/{video.name}")
                continue
            taken[csv.stem] = csv
    if not taken:
        sys.exit(f"{opts.tennis}: no raw_data*/gameN_ClipM.csv + .mp4 pairs found")
    for stem, csv in sorted(taken.items()):
        game = int(_NAME.match(stem).group(1))
        dest = opts.out / ("tennis-test" if game in TEST_GAMES else "train/tennis")
        link(csv, dest / f"{stem}.csv")
        link(csv.with_suffix(".mp4"), dest / f"{stem}.mp4")
    rallies = _link_rallies(opts.badminton, opts.out / "train/badminton", skipped) if opts.badminton else 0
    extra = 0
    if opts.badminton_extra:
        if not opts.badminton:
            sys.exit("--badminton-extra needs --badminton (train-more/ holds both)")
        extra = _link_rallies(opts.badminton_extra, opts.out / "train-more/badminton2", skipped)
        for folder in ("tennis", "badminton"):
            link(opts.out / "train" / folder, opts.out / "train-more" / folder)
    test = sum(1 for s in taken if int(_NAME.match(s).group(1)) in TEST_GAMES)
    print(
        f"tennis: {len(taken) - test} clips (games 1-8) in {opts.out / 'train/tennis'}, "
        f"{test} clips (games 9-10) in {opts.out / 'tennis-test'}; badminton: {rallies} rallies"
        + (f", {extra} more in {opts.out / 'train-more/badminton2'}" if opts.badminton_extra else "")
    )
    if skipped:
        print(f"skipped {len(skipped)} videos without usable data: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
