"""`data import SRC OUT`: any supported layout → the TrackNet tennis frame layout.

OUT/<game>/<clip>/0000.jpg … + Label.csv (tennis dialect, source pixels). Clips that have a game
folder keep it; flat and TrackNetV2 clips go under a game folder named after the SRC folder
(badminton-train/00001.mp4 → OUT/badminton-train/00001/). JPEG sources are copied byte for byte;
other images and video frames (in decode order) are encoded as JPEG. Everything is built in a
hidden temp folder beside OUT and renamed into place at the end, so OUT is complete or absent.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tracknet_cli.atomic import publish_mode, remove_stale_temps, require_writable, temp_prefix
from tracknet_cli.data.clips import Clip, iter_video_frames, scan
from tracknet_cli.data.labels import Problem, write_tennis_labels
from tracknet_cli.errors import InputError, Interrupted
from tracknet_cli.media.images import image_rgb

JPEG_QUALITY = 95


@dataclass
class ImportedClip:
    source_id: str
    path: str  # relative to OUT
    frames: int


@dataclass
class ImportReport:
    out: Path
    clips: list[ImportedClip] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # found in SRC; carried over as they are

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.clips)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "clip"


def target_folder(clip: Clip, default_game: str) -> Path:
    """OUT-relative folder of a clip: <game>/<clip>, using SRC's folder name when there is no game."""
    parts = clip.id.split("/")
    game = "_".join(_safe(p) for p in parts[:-1]) if len(parts) > 1 else default_game
    return Path(game) / _safe(parts[-1])


def _frame_names(n: int) -> list[str]:
    width = max(4, len(str(max(n - 1, 0))))
    return [f"{i:0{width}d}.jpg" for i in range(n)]


def _write_clip(clip: Clip, folder: Path) -> int:
    from PIL import Image

    folder.mkdir(parents=True)
    n = len(clip)
    names = _frame_names(n)
    written = 0
    if clip.frame_paths is not None:
        for path, name in zip(clip.frame_paths, names):
            if path.suffix.lower() in (".jpg", ".jpeg"):
                shutil.copyfile(path, folder / name)
            else:
                with Image.open(path) as img:
                    image_rgb(img).save(folder / name, quality=JPEG_QUALITY)
            written += 1
    else:
        assert clip.video is not None
        for frame, name in zip(iter_video_frames(clip.video), names):
            Image.fromarray(frame).save(folder / name, quality=JPEG_QUALITY)
            written += 1
    labels = clip.labels if written == n else clip.labels.head(written)
    write_tennis_labels(folder / "Label.csv", labels, names[:written])
    return written


def import_dataset(src: Path, out: Path, *, on_clip: Callable[[int, int, str], None] | None = None) -> ImportReport:
    """Convert every clip under SRC into OUT (which must not exist or be an empty folder)."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: already exists and is not empty (choose a new OUT folder, or remove this one first)")
    found = scan(src)
    src_abs, out_abs = found.root.resolve(), out.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents:
        raise InputError(f"{out}: OUT is inside SRC {src}; choose a folder outside the source dataset")
    default_game = _safe(src_abs.name)
    require_writable(out, replaced=True)
    out_abs.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_abs)  # what an import killed earlier (SIGKILL) left beside OUT
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out_abs, "importing"), dir=out_abs.parent))
    report = ImportReport(out)
    report.problems = found.all_problems
    try:
        for k, clip in enumerate(found.clips):
            rel = target_folder(clip, default_game)
            if (tmp / rel).exists():
                raise InputError(f"{src}: two clips map to {rel.as_posix()} in OUT; rename one of them")
            frames = _write_clip(clip, tmp / rel)
            report.clips.append(ImportedClip(clip.id, rel.as_posix(), frames))
            if on_clip is not None:
                on_clip(k + 1, len(found.clips), clip.id)
        publish_mode(tmp, directory=True)  # mkdtemp made it 0700
        if out_abs.exists():
            out_abs.rmdir()  # empty, checked above
        os.replace(tmp, out_abs)
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Interrupted(
            f"interrupted after {len(report.clips)} of {len(found.clips)} clips; {out} was not created "
            "(the partial copy was removed; run the import again)"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
