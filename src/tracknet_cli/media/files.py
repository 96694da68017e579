"""Which files are frames or videos, and the order frames play in: one answer for the whole package.

Training data (`data.clips`) and prediction (`predict.sources`) used to keep their own suffix lists
(4 + 6 against 7 + 14) and sort frames differently (by trailing number against by every number), so
a folder could train on other frames than it predicts on. Both use this module now.
"""

from __future__ import annotations

import re
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp"}
)


def natural_key(name: str) -> list[object]:
    """Sort key that orders embedded numbers by value: frame2 < frame10, case-insensitive otherwise."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def image_files(folder: Path) -> list[Path]:
    """The frame images of a folder in play order (hidden files left out)."""
    return _files(folder, IMAGE_SUFFIXES)


def video_files(folder: Path) -> list[Path]:
    """The videos of a folder in natural order (hidden files left out)."""
    return _files(folder, VIDEO_SUFFIXES)
