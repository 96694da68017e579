"""What `tracknet label` labels: one video or one frame folder, seen exactly as training reads it.

Size and frame count come from the data layer (`data.clips.video_info` counts video packets, a
frame folder lists `media.files.image_files`), so frame i of the label file is frame i of
`tracknet train` (upright: rotation metadata applied, as training and predict read a video).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracknet_cli.errors import InputError
from tracknet_cli.media.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, image_files


@dataclass(frozen=True)
class LabelMedia:
    """The frames being labelled: a video or the images of a folder, in play order."""

    path: Path
    kind: Literal["video", "frames"]
    width: int
    height: int
    frames: int
    fps: float
    frame_paths: tuple[Path, ...] | None = None  # frame folders only

    @property
    def frame_names(self) -> list[str] | None:
        return [p.name for p in self.frame_paths] if self.frame_paths is not None else None


def open_media(path: Path) -> LabelMedia:
    """A video file or a folder of frame images; InputError (exit 2) for anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path} (name a video or a folder of frame images)")
    if path.is_dir():
        images = image_files(path)
        if not images:
            raise InputError(
                f"{path} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                "name a video or a folder of frames"
            )
        from tracknet_cli.data.clips import image_size

        try:
            width, height = image_size(images[0])
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
            raise InputError(f"cannot read image {images[0]}: {exc}") from exc
        return LabelMedia(path, "frames", width, height, len(images), 30.0, tuple(images))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{path} is neither a video ({', '.join(sorted(VIDEO_SUFFIXES))}) nor a folder of frames")
    from tracknet_cli.data.clips import video_info
    from tracknet_cli.predict.sources import VideoSource

    width, height, frames = video_info(path)
    info = VideoSource(path).info  # the frame rate; raises InputError when nothing decodes
    if frames == 0:
        raise InputError(f"{path}: no video frames")
    return LabelMedia(path, "video", width, height, frames, info.fps, None)
