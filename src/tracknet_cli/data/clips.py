"""Clip discovery: every supported folder layout becomes a list of `Clip`s with aligned labels.

Layouts (see docs/datasets/README.md):
- tennis: ROOT/<game>/<clip>/ holding `Label.csv` (or one CSV in a known dialect) and frame images
  (or one video); ROOT may also be a game folder or a clip folder itself;
- flat: NAME.mp4 + NAME.csv pairs in one folder (each pair a clip, id NAME);
- TrackNetV2: images/<rally>/<n>.jpg + labels/<rally>.csv (+ videos/<rally>.mp4), id <rally>.
Flat and TrackNetV2 folders may also sit one level below ROOT (id <folder>/<name>).

Discovery reads only image headers and video packets, never pixels, so it stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from tracknet_cli.data.labels import LabelTable, Problem, read_labels, sniff_dialect
from tracknet_cli.errors import InputError
from tracknet_cli.media.files import VIDEO_SUFFIXES, image_files, natural_key

LABEL_FILE = "label.csv"
MAX_DEPTH = 2  # ROOT/<game>/<clip>

# Scan-level problem kinds.
VIDEO_WITHOUT_LABELS = "video_without_labels"
LABELS_WITHOUT_FRAMES = "labels_without_frames"
UNREADABLE_FRAMES = "unreadable_frames"
AMBIGUOUS_LABELS = "ambiguous_labels"
UNREADABLE_LABELS = "unreadable_labels"


@dataclass
class Clip:
    """One labelled sequence of frames: image files in order, or a video read in decode order."""

    id: str
    root: Path
    frame_paths: list[Path] | None
    video: Path | None
    labels: LabelTable
    width: int
    height: int
    label_path: Path | None
    start: int = 0  # index of the first frame in its source video or label file (a piece of a clip: `span`)
    whole: "Clip | None" = None  # the clip this piece was cut from (None: a whole clip)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def game(self) -> str:
        """The game folder ('' for flat and TrackNetV2 clips at the top of the root)."""
        return self.id.rsplit("/", 1)[0] if "/" in self.id else ""

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def source(self) -> str:
        return "images" if self.frame_paths is not None else "video"

    def head(self, n: int) -> "Clip":
        """The first n frames of the clip (for `data.subset.max_frames_per_clip`)."""
        if n >= len(self):
            return self
        paths = self.frame_paths[:n] if self.frame_paths is not None else None
        return replace(self, frame_paths=paths, labels=self.labels.head(n))

    def span(self, begin: int, end: int) -> "Clip":
        """Frames begin..end-1 as a clip of their own (`data.split.by: time`), named `ID[begin:end]`.

        The piece keeps its place in the source (`start`, `whole`), so its video is decoded from
        the right frame and its rows are written with their true frame numbers."""
        whole = self.whole or self
        start = self.start + begin
        paths = self.frame_paths[begin:end] if self.frame_paths is not None else None
        return replace(
            self,
            id=f"{whole.id}[{start}:{self.start + end}]",
            frame_paths=paths,
            labels=self.labels.slice(begin, end),
            start=start,
            whole=whole,
        )


@dataclass
class Scan:
    """What discovery found: the clips, and files that could not become clips."""

    root: Path
    clips: list[Clip]
    problems: list[Problem] = field(default_factory=list)

    @property
    def all_problems(self) -> list[Problem]:
        out = list(self.problems)
        for clip in self.clips:
            out.extend(replace(p, clip=clip.id) for p in clip.labels.problems)
        return out


def _natural_key(path: Path) -> list[object]:
    return natural_key(path.name)


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder in frame order (`media.files`: numbers by value, 2.jpg before 10.jpg)."""
    return image_files(folder)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header; PIL opens lazily and decodes no pixels here."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def video_info(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a video's first video stream, the size upright (rotation metadata
    applied, as every decoder here applies it; `media.video.probe`).

    Frames are counted from the demuxed packets that carry data, not from the header (headers of
    re-muxed files are often wrong); one packet is one frame in decode order for the codecs we read.
    `count_decoded_frames` is the slow, exact check used by `data inspect --check-images`.
    """
    from tracknet_cli.media.video import probe

    (width, height), frames = probe(path)
    return width, height, frames


def count_decoded_frames(path: Path) -> int:
    """Frames that actually decode (slow: decodes every frame); raises av errors for broken files."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def iter_video_frames(path: Path) -> Iterator[np.ndarray]:
    """Upright RGB uint8 frames (H, W, 3) in decode order; timestamps are ignored because real files break them."""
    from tracknet_cli.media.video import read_frames

    return read_frames(path)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or path.name
    except ValueError:
        return str(path)


def _join(prefix: tuple[str, ...], name: str) -> str:
    return "/".join(prefix + (name,))


class _Unreadable(Exception):
    """The frame source of one clip cannot be opened: reported as a problem, the scan goes on."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _make_clip(
    clip_id: str, root: Path, label_path: Path, images: list[Path] | None, video: Path | None, scan_root: Path
) -> Clip:
    """Size and frame count from headers/packets, then labels aligned to the frames."""
    if images:
        try:
            width, height = image_size(images[0])
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
            raise _Unreadable(images[0], f"first frame does not open ({exc})") from exc
        n = len(images)
        names: list[str] | None = [p.name for p in images]
        frame_paths: list[Path] | None = images
    else:
        assert video is not None
        try:
            width, height, n = video_info(video)
        except InputError as exc:
            raise _Unreadable(video, exc.render()) from exc
        names, frame_paths = None, None
    labels = read_labels(
        label_path, width=width, height=height, num_frames=n, frame_names=names, display=_rel(label_path, scan_root)
    )
    return Clip(clip_id, root, frame_paths, video, labels, width, height, label_path)


def _try_clip(problems: list[Problem], scan_root: Path, *args) -> list[Clip]:
    try:
        return [_make_clip(*args, scan_root)]
    except _Unreadable as exc:
        problems.append(Problem(UNREADABLE_FRAMES, _rel(exc.path, scan_root), message=f"clip skipped: {exc.reason}"))
        return []
    except InputError as exc:  # the label file: unknown header, not text, unreadable
        label_path: Path = args[2]
        problems.append(
            Problem(UNREADABLE_LABELS, _rel(label_path, scan_root), message=f"clip skipped: {exc.render()}")
        )
        return []


def _label_file_of(folder: Path, csvs: list[Path], problems: list[Problem], scan_root: Path) -> Path | None:
    for path in csvs:
        if path.name.lower() == LABEL_FILE:
            return path
    known = [p for p in csvs if sniff_dialect(p) is not None]
    if len(known) == 1:
        return known[0]
    if len(known) > 1:
        problems.append(
            Problem(
                AMBIGUOUS_LABELS,
                _rel(folder, scan_root),
                message=(f"{len(known)} label CSVs and no Label.csv: rename the one to use to Label.csv"),
            )
        )
    return None


def label_file_for(source: Path) -> Path | None:
    """The label file discovery pairs with one video or frame folder, or None: NAME.csv beside
    NAME.mp4 (flat), `Label.csv` or the one known CSV in a clip folder (tennis), `labels/NAME.csv`
    (or `NAME_ball.csv`) for `videos/NAME.mp4` and `images/NAME/` (TrackNetV2)."""
    source = Path(source)
    folder, name = (source, source.name) if source.is_dir() else (source.parent, source.stem)
    candidates = [source.with_suffix(".csv")] if source.is_file() else []
    layout_dir = folder.parent if source.is_dir() else folder  # images/ or videos/ in a TrackNetV2 folder
    if layout_dir.name == ("images" if source.is_dir() else "videos"):
        labels = layout_dir.parent / "labels"
        candidates += [labels / f"{name}.csv", labels / f"{name}_ball.csv"]
    for path in candidates:
        if path.is_file() and sniff_dialect(path) is not None:
            return path
    if source.is_file() and sum(1 for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) != 1:
        return None  # a clip folder holds one video; elsewhere only NAME.csv pairs with NAME.mp4
    csvs = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv"), key=_natural_key)
    return _label_file_of(folder, csvs, [], folder) if csvs else None


def _v2_clips(folder: Path, prefix: tuple[str, ...], scan_root: Path, problems: list[Problem]) -> list[Clip]:
    images_dir, labels_dir, videos_dir = folder / "images", folder / "labels", folder / "videos"
    clips = []
    videos = (
        {p.stem: p for p in videos_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES} if videos_dir.is_dir() else {}
    )
    labelled: set[str] = set()
    for label_path in sorted(labels_dir.glob("*.csv"), key=_natural_key):
        rally = label_path.stem.removesuffix("_ball")  # TrackNetV3 names them <rally>_ball.csv
        labelled.add(rally)
        images = list_images(images_dir / rally) if (images_dir / rally).is_dir() else []
        video = videos.get(rally)
        if not images and video is None:
            problems.append(
                Problem(
                    LABELS_WITHOUT_FRAMES,
                    _rel(label_path, scan_root),
                    message=f"no images/{rally}/ and no videos/{rally}.mp4",
                )
            )
            continue
        clips.extend(_try_clip(problems, scan_root, _join(prefix, rally), folder, label_path, images or None, video))
    for stem, video in sorted(videos.items()):
        if stem not in labelled:
            problems.append(Problem(VIDEO_WITHOUT_LABELS, _rel(video, scan_root), message=f"no labels/{stem}.csv"))
    return clips


def _walk(folder: Path, prefix: tuple[str, ...], depth: int, scan_root: Path, problems: list[Problem]) -> list[Clip]:
    if (folder / "images").is_dir() and (folder / "labels").is_dir():
        return _v2_clips(folder, prefix, scan_root, problems)
    try:
        entries = sorted(folder.iterdir(), key=_natural_key)
    except OSError:
        return []
    files = [p for p in entries if p.is_file() and not p.name.startswith(".")]
    csvs = [p for p in files if p.suffix.lower() == ".csv"]
    videos = {p.stem: p for p in files if p.suffix.lower() in VIDEO_SUFFIXES}
    pairs = [c for c in csvs if c.stem in videos]
    if pairs:  # flat layout: NAME.mp4 + NAME.csv
        clips = [
            clip
            for c in pairs
            for clip in _try_clip(problems, scan_root, _join(prefix, c.stem), folder, c, None, videos[c.stem])
        ]
        paired = {c.stem for c in pairs}
        for stem, video in videos.items():
            if stem not in paired:
                problems.append(
                    Problem(VIDEO_WITHOUT_LABELS, _rel(video, scan_root), message=f"no {stem}.csv beside it")
                )
        for c in csvs:
            if c.stem not in paired and sniff_dialect(c) is not None:
                problems.append(
                    Problem(LABELS_WITHOUT_FRAMES, _rel(c, scan_root), message=f"no {c.stem}.mp4 beside it")
                )
        return clips
    label_path = _label_file_of(folder, csvs, problems, scan_root) if csvs else None
    if label_path is not None:  # a clip folder
        images = list_images(folder)
        clip_id = f"{folder.parent.name}/{folder.name}" if folder.parent != folder else folder.name
        if images:
            return _try_clip(problems, scan_root, clip_id, folder, label_path, images, None)
        if len(videos) == 1:
            return _try_clip(problems, scan_root, clip_id, folder, label_path, None, next(iter(videos.values())))
        problems.append(
            Problem(
                LABELS_WITHOUT_FRAMES,
                _rel(label_path, scan_root),
                message="no frame images (or single video) beside the label file",
            )
        )
        return []
    if depth >= MAX_DEPTH:
        return []
    clips: list[Clip] = []
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith((".", "_")):
            clips.extend(_walk(sub, prefix + (sub.name,), depth + 1, scan_root, problems))
    return clips


def scan(root: Path) -> Scan:
    """Every clip under ROOT in any supported layout, plus the files that could not become clips."""
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"{root}: no such folder (point at a dataset folder; see docs/datasets/README.md)")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (point at the dataset folder, not a file inside it)")
    problems: list[Problem] = []
    clips = _walk(root.resolve(), (), 0, root.resolve(), problems)
    if not clips:
        if problems:  # something looked like a clip but could not be used: say what
            first = problems[0]
            more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
            raise InputError(f"{root}: no usable clips: {first.file}: {first.message}{more}")
        raise InputError(
            f"{root}: no labelled clips found (expected game*/Clip*/Label.csv, NAME.mp4 + NAME.csv pairs, "
            "or images/ + labels/; see docs/datasets/README.md)"
        )
    ids = [c.id for c in clips]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"{root}: clip ids found twice ({', '.join(duplicates[:3])}); keep one layout per folder")
    return Scan(root, clips, problems)


def discover_clips(root: Path) -> list[Clip]:
    """The clips under ROOT (see `scan` for the problems found on the way); InputError if none."""
    return scan(root).clips
