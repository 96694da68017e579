"""Lay out the bundled `padel` model's data from its public source, as links (nothing is copied).

    python scripts/pretrained/padel_data.py PADEL_CHECKOUT/raw_data/points/clean --out data/padel

PADEL_CHECKOUT: a clone of github.com/VictorUceda/TrackNet-Padel (MIT). `raw_data/points/clean`
holds broadcast padel points of Premier Padel Roma 2022 as NAME.mp4 + NAME.csv (`Frame,Ball,x,y`,
1280x720, 24 frames/s), NAME = MATCH_ROUND_PAIRS_SET_GAMES_POINT. Only that folder is used: the
repository's other folders are kept for an independent check.

Splits by match and set, so no point of a validation or test set shares a set with training:
OUT/train = the semi-final's sets 0-1, OUT/val = its set 2, OUT/test = its set 3 and every point of
the other match (the round of 16). `--max-mib 4` (default) takes only videos up to 4 MiB, the copy
the bundled model was trained on (41 of the 72 points); `--max-mib 0` takes every point.

`--tennis DIR` (DIR: the tennis training clips gameN_ClipM.mp4 + .csv of games 1-8, as
scripts/pretrained/build_data.py lays them out in OUT/train/tennis) also links OUT/tennis: every
other clip in name order, the bundled tennis model's validation clips (profiles/pretrained_fast.yaml)
left out: 26 clips, 3,684 frames, about as many as the padel training points. The `padel` profile
trains on train/ and tennis/ together (rehearsal), so the model keeps what it knew of other
broadcasts while it learns padel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_data import link  # noqa: E402 - the sibling script's one way to lay out links

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "pretrained_fast.yaml"


def folder_of(stem: str) -> str:
    """train, val or test for a point named MATCH_ROUND_PAIRS_SET_GAMES_POINT."""
    parts = stem.split("_")
    if len(parts) != 6:
        raise ValueError(f"{stem}: expected MATCH_ROUND_PAIRS_SET_GAMES_POINT")
    if parts[1] != "Semis" or parts[3] == "3":
        return "test"
    return "val" if parts[3] == "2" else "train"


def split_points(src: Path, out: Path, max_mib: float = 4) -> dict[str, int]:
    """Links to the points of `src` in OUT/train, OUT/val and OUT/test; the count in each."""
    videos = sorted(
        p
        for p in src.glob("*.mp4")
        if p.with_suffix(".csv").is_file()
        and p.stat().st_size > 0
        and (not max_mib or p.stat().st_size <= max_mib * 2**20)
    )
    if not videos:
        sys.exit(
            f"{src}: expected the padel points (NAME.mp4 + NAME.csv) "
            "of VictorUceda/TrackNet-Padel raw_data/points/clean"
        )
    counts = {"train": 0, "val": 0, "test": 0}
    for video in videos:
        folder = folder_of(video.stem)
        counts[folder] += 1
        for path in (video, video.with_suffix(".csv")):
            link(path, out / folder / path.name)
    return counts


def tennis_rehearsal(src: Path, out: Path) -> int:
    """Links to every other tennis clip of `src` (name order), the bundled model's validation clips
    left out, in OUT/tennis; how many."""
    import yaml

    val = yaml.safe_load(PROFILE.read_text())["overrides"]["data"]["split"]["val"]
    kept_out = {name.split("/", 1)[1] for name in val if name.startswith("tennis/")}
    names = sorted(p.stem for p in src.glob("game*_Clip*.mp4") if p.with_suffix(".csv").is_file())
    chosen = [name for name in names if name not in kept_out][::2]
    if not chosen:
        sys.exit(
            f"{src}: expected tennis clips gameN_ClipM.mp4 + .csv (scripts/pretrained/build_data.py's train/tennis)"
        )
    for name in chosen:
        for suffix in (".mp4", ".csv"):
            link(src / f"{name}{suffix}", out / "tennis" / f"{name}{suffix}")
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clean", type=Path, help="raw_data/points/clean of a VictorUceda/TrackNet-Padel checkout")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-mib", type=float, default=4, help="skip videos larger than this (0: none skipped)")
    parser.add_argument("--tennis", type=Path, help="tennis training clips (build_data.py's train/tennis) to rehearse")
    opts = parser.parse_args()
    counts = split_points(opts.clean, opts.out, opts.max_mib)
    if opts.tennis is not None:
        counts["tennis"] = tennis_rehearsal(opts.tennis, opts.out)
    print(
        ", ".join(
            f"{name}: {n} {'clips' if name == 'tennis' else 'points'} in {opts.out / name}"
            for name, n in counts.items()
        )
    )


if __name__ == "__main__":
    main()
