"""`data inspect`: counts per clip and in total, every problem located by clip/file/row, a preview.

Pure core: returns an `InspectReport`; the CLI renders it (rich table or JSON).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tracknet_cli.atomic import atomic_path
from tracknet_cli.data.clips import Clip, Scan, count_decoded_frames, iter_video_frames, scan
from tracknet_cli.data.labels import Problem
from tracknet_cli.media.images import image_rgb

UNREADABLE_IMAGE = "unreadable_image"
UNREADABLE_VIDEO = "unreadable_video"
FRAME_COUNT_MISMATCH = "frame_count_mismatch"


@dataclass
class Counts:
    frames: int = 0
    labelled: int = 0
    visible: int = 0  # visibility > 0
    visibility: dict[str, int] = field(default_factory=lambda: {str(v): 0 for v in range(4)})
    status: dict[str, int] = field(default_factory=dict)  # labelled rows with a known status

    def add(self, other: "Counts") -> None:
        self.frames += other.frames
        self.labelled += other.labelled
        self.visible += other.visible
        for key, n in other.visibility.items():
            self.visibility[key] = self.visibility.get(key, 0) + n
        for key, n in other.status.items():
            self.status[key] = self.status.get(key, 0) + n


@dataclass
class ClipReport:
    id: str
    game: str
    clip: str
    source: str  # "images" or "video"
    path: str  # the frame folder or the video file, relative to the root
    label_file: str
    dialect: str
    width: int
    height: int
    counts: Counts
    problems: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("counts")
        data.update(asdict(self.counts))
        data["resolution"] = f"{self.width}x{self.height}"
        return data


@dataclass
class InspectReport:
    root: str
    clips: list[ClipReport]
    totals: Counts
    problems: list[Problem]
    seconds: float = 0.0

    @property
    def games(self) -> list[str]:
        return sorted({c.game for c in self.clips})

    def to_json(self) -> dict[str, Any]:
        totals = asdict(self.totals)
        totals["clips"] = len(self.clips)
        totals["games"] = len([g for g in self.games if g])
        totals["problems"] = len(self.problems)
        problem_kinds = Counter(p.kind for p in self.problems)
        return {
            "root": self.root,
            "totals": totals,
            "problem_kinds": dict(sorted(problem_kinds.items())),
            "clips": [c.to_json() for c in self.clips],
            "problems": [p.to_json() for p in self.problems],
        }


def clip_counts(clip: Clip) -> Counts:
    vis = clip.labels.visibility
    labelled = vis >= 0
    counts = Counts(frames=len(clip), labelled=int(labelled.sum()), visible=int((vis > 0).sum()))
    for v in range(4):
        counts.visibility[str(v)] = int((vis == v).sum())
    values, numbers = np.unique(clip.labels.status[labelled & (clip.labels.status >= 0)], return_counts=True)
    counts.status = {str(int(v)): int(n) for v, n in zip(values, numbers)}
    return counts


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check_frames(clip: Clip, root: Path) -> list[Problem]:
    """Decode every frame (slow): images that do not open, videos that decode fewer/more frames."""
    from PIL import Image

    problems: list[Problem] = []
    if clip.frame_paths is not None:
        for i, path in enumerate(clip.frame_paths):
            try:
                with Image.open(path) as img:
                    img.load()
            except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
                problems.append(Problem(UNREADABLE_IMAGE, _rel(path, root), None, i, f"{path.name}: {exc}", clip.id))
        return problems
    assert clip.video is not None
    try:
        decoded = count_decoded_frames(clip.video)
    except Exception as exc:  # noqa: BLE001 - av raises many types for broken files
        return [Problem(UNREADABLE_VIDEO, _rel(clip.video, root), None, None, f"decoding failed: {exc}", clip.id)]
    if decoded != len(clip):
        problems.append(
            Problem(
                FRAME_COUNT_MISMATCH,
                _rel(clip.video, root),
                None,
                None,
                f"{decoded} frames decode but {len(clip)} packets were counted",
                clip.id,
            )
        )
    return problems


def inspect_dataset(root: Path, *, check_images: bool = False, found: Scan | None = None) -> InspectReport:
    """Audit a dataset folder in any layout; InputError when ROOT holds no usable clips."""
    import time

    start = time.perf_counter()
    found = found or scan(root)
    base = found.root.resolve()
    problems = found.all_problems
    reports: list[ClipReport] = []
    totals = Counts()
    for clip in found.clips:
        if check_images:
            problems.extend(check_frames(clip, base))
        counts = clip_counts(clip)
        totals.add(counts)
        frames_at = (
            clip.video if clip.frame_paths is None else (clip.frame_paths[0].parent if clip.frame_paths else clip.root)
        )
        reports.append(
            ClipReport(
                id=clip.id,
                game=clip.game,
                clip=clip.name,
                source=clip.source,
                path=_rel(frames_at, base),
                label_file=_rel(clip.label_path, base),
                dialect=clip.labels.dialect,
                width=clip.width,
                height=clip.height,
                counts=counts,
            )
        )
    per_clip = Counter(p.clip for p in problems)
    for report in reports:
        report.problems = per_clip.get(report.id, 0)
    return InspectReport(str(found.root), reports, totals, problems, time.perf_counter() - start)


# ---------------------------------------------------------------- preview
def _pick_samples(clips: Sequence[Clip], count: int) -> list[tuple[Clip, int]]:
    """Up to `count` (clip, frame) pairs spread over the clips, preferring frames with a ball."""
    if not clips:
        return []
    chosen: list[tuple[Clip, int]] = []
    step = max(1, len(clips) / count)
    picked_clips = [clips[int(i * step)] for i in range(min(count, len(clips)))]
    per_clip = max(1, count // len(picked_clips))
    for clip in picked_clips:
        if len(clip) == 0:
            continue
        ball = np.flatnonzero(clip.labels.state == 1)
        pool = ball if len(ball) else np.arange(len(clip))
        for k in range(per_clip):
            chosen.append((clip, int(pool[(k + 1) * len(pool) // (per_clip + 1)])))
    return chosen[:count]


def _load_frames(samples: list[tuple[Clip, int]]) -> list[Any]:
    from PIL import Image

    images = []
    video_cache: dict[tuple[str, int], Any] = {}
    wanted: dict[str, set[int]] = {}
    for clip, idx in samples:
        if clip.frame_paths is None:
            wanted.setdefault(clip.id, set()).add(idx)
    for clip, _ in samples:
        if clip.frame_paths is None and clip.id in wanted:
            targets = wanted.pop(clip.id)
            last = max(targets)
            for i, frame in enumerate(iter_video_frames(clip.video)):  # decode order, as training reads it
                if i in targets:
                    video_cache[(clip.id, i)] = Image.fromarray(frame)
                if i >= last:
                    break
    for clip, idx in samples:
        if clip.frame_paths is not None:
            with Image.open(clip.frame_paths[idx]) as img:
                images.append(image_rgb(img))
        else:
            images.append(video_cache.get((clip.id, idx)) or Image.new("RGB", (clip.width, clip.height)))
    return images


def write_preview(
    clips: Sequence[Clip], out: Path, *, samples: int = 12, columns: int = 4, tile_width: int = 320
) -> Path:
    """A contact sheet PNG of sample frames with their labels drawn, written atomically."""
    from PIL import Image, ImageDraw

    picks = _pick_samples(list(clips), samples)
    frames = _load_frames(picks)
    tile_height = max(1, round(tile_width * 9 / 16))
    rows = max(1, (len(picks) + columns - 1) // columns)
    sheet = Image.new("RGB", (columns * tile_width, rows * (tile_height + 18)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, ((clip, idx), frame) in enumerate(zip(picks, frames)):
        scale = min(tile_width / clip.width, tile_height / clip.height)
        thumb = frame.resize((max(1, round(clip.width * scale)), max(1, round(clip.height * scale))))
        ox, oy = (k % columns) * tile_width, (k // columns) * (tile_height + 18)
        sheet.paste(thumb, (ox, oy + 18))
        vis = int(clip.labels.visibility[idx])
        state = int(clip.labels.state[idx])
        draw.text((ox + 3, oy + 3), f"{clip.id} #{idx} v={vis}", fill=(230, 230, 230))
        x, y = float(clip.labels.x[idx]), float(clip.labels.y[idx])
        if not np.isnan(x) and not np.isnan(y):
            cx, cy, r = ox + x * scale, oy + 18 + y * scale, 6
            colour = (255, 40, 40) if state == 1 else (255, 200, 0)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=2)
            draw.line((cx - r - 4, cy, cx - r, cy), fill=colour)
            draw.line((cx + r, cy, cx + r + 4, cy), fill=colour)
    out = Path(out)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out


__all__ = ["ClipReport", "Counts", "InspectReport", "inspect_dataset", "write_preview", "clip_counts"]
