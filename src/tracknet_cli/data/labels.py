"""Label files: five CSV dialects read into one per-frame `LabelTable`, and the tennis writer.

The dialect is recognised from the header alone, so a user never names it. Reading never crashes
on bad rows: every oddity becomes a `Problem` (file, row, kind) and the frame is masked (`state -1`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from tracknet_cli.atomic import atomic_write_text
from tracknet_cli.errors import InputError

# Problem kinds (stable strings: they appear in `data inspect --json`).
VISIBLE_WITHOUT_COORDINATES = "visible_without_coordinates"
OUTSIDE_IMAGE = "outside_image"
DUPLICATE_ROW = "duplicate_row"
BAD_VALUE = "bad_value"
LABEL_WITHOUT_FRAME = "label_without_frame"  # a label row whose image / video frame does not exist
FRAME_WITHOUT_LABEL = "frame_without_label"  # an image / video frame with no label row


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the data, located well enough to fix it by hand.

    `row` is the line number in `file` (the header is line 1), or None when the problem has no row.
    """

    kind: str
    file: str
    row: int | None = None
    frame: int | None = None
    message: str = ""
    clip: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "clip": self.clip,
            "file": self.file,
            "row": self.row,
            "frame": self.frame,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass(frozen=True)
class Dialect:
    """A label CSV flavour: its header, how rows name frames, and the coordinate unit."""

    name: str
    columns: tuple[str, ...]
    keyed_by_file: bool  # rows name an image file ("0001.jpg") rather than a frame number
    normalised: bool  # x, y in [0, 1] of the frame size instead of pixels
    description: str


TENNIS_HEADER = ("file name", "visibility", "x-coordinate", "y-coordinate", "status")
"""The TrackNet tennis `Label.csv` header: read here, written by `data synth` and `predict --csv-format tracknet`."""

DIALECTS: tuple[Dialect, ...] = (
    Dialect(
        "tennis",
        TENNIS_HEADER,
        True,
        False,
        "TrackNet tennis dataset: pixels, empty x,y when visibility is 0, status 0 flying / 1 hit / 2 bounce",
    ),
    Dialect(
        "labelling-tool",
        ("file name", "visibility class", "x", "y", "trajectory pattern"),
        True,
        False,
        "the TrackNet labelling tool: pixels, trajectory pattern read as status",
    ),
    Dialect(
        "tracknetv2",
        ("frame", "visibility", "x", "y"),
        False,
        False,
        "TrackNetV2/V3: frame number, visibility 0/1, pixels",
    ),
    Dialect("frame-ball", ("frame", "ball", "x", "y"), False, True, "normalised x,y in [0,1]; -1 means no ball"),
    Dialect("frame-num", ("frame_num", "visible", "x", "y"), False, True, "normalised x,y in [0,1]"),
)


def detect_dialect(header: Sequence[str], path: Path | str = "<labels>") -> Dialect:
    """The dialect whose columns start the header (case and spaces ignored); InputError otherwise."""
    cells = tuple(c.strip().lstrip("\ufeff").strip().lower() for c in header)
    for dialect in DIALECTS:
        if cells[: len(dialect.columns)] == dialect.columns:
            return dialect
    known = "; ".join(",".join(d.columns) for d in DIALECTS)
    raise InputError(f"{path}: unknown label header {','.join(header)!r} (supported: {known})")


def sniff_dialect(path: Path) -> Dialect | None:
    """The dialect of a CSV file, or None when it is not a label file we know (used by discovery)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError):
        return None
    if not header:
        return None
    try:
        return detect_dialect(header, path)
    except InputError:
        return None


class _Keys:
    """The first cell of every row, packed: UTF-8 bytes end to end and where each one ends (a list of
    str would take ~70 bytes a row, more than the rest of the row together)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")

    def append(self, key: str) -> None:
        self._data += key.encode("utf-8")
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, r: int) -> str:
        start = self._ends[r - 1] if r > 0 else 0
        return self._data[start : self._ends[r]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[r] for r in range(len(self)))


@dataclass
class ParsedLabels:
    """A label CSV's data rows as columns, in file order (row r of every column is one CSV row;
    coordinates as written). Columns rather than an object per row: a long label file takes a few
    times its size in memory, not tens of times (a 31 MB file of 1.15M rows took 560 MB as a list
    of row objects).

    `visibility` and `status` hold the integer written (NaN: an empty cell); an unreadable row has
    `readable[r]` False (a `bad_value` problem says why) and NaN everywhere."""

    path: Path
    dialect: Dialect
    lines: array  # "q": line number in the file (the header is line 1)
    keys: _Keys  # file name or frame number as written
    readable: bytearray  # 1: the values parsed; 0: unreadable, already a problem
    visibility: array  # "d"
    x: array  # "d"
    y: array  # "d"
    status: array  # "d"
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)


def _float(cell: str) -> float:
    cell = cell.strip()
    if not cell:
        return math.nan
    return float(cell)  # NaN written as "nan" stays NaN: no coordinate


def _int(cell: str) -> float:
    """The integer a cell holds (as a float: NaN for an empty cell); `1.0` reads as 1, `2.7` as 2."""
    cell = cell.strip()
    if not cell:
        return math.nan
    return float(int(float(cell)))  # OverflowError for inf: unreadable, as for "abc"


def parse_label_file(path: Path, display: str | None = None) -> ParsedLabels:
    """Read a label CSV in any dialect; bad cells become `bad_value` problems, not exceptions."""
    path = Path(path)
    shown = display or str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{shown}: empty label file (expected a header such as {','.join(TENNIS_HEADER)})")
            dialect = detect_dialect(header, shown)
            parsed = ParsedLabels(
                path, dialect, array("q"), _Keys(), bytearray(), array("d"), array("d"), array("d"), array("d")
            )
            width = len(dialect.columns)
            for line, cells in enumerate(reader, start=2):
                if not cells or all(not c.strip() for c in cells):
                    continue
                cells = (cells + [""] * width)[:width]
                try:
                    values = (
                        _int(cells[1]),
                        _float(cells[2]),
                        _float(cells[3]),
                        _int(cells[4]) if len(cells) > 4 else math.nan,
                    )
                    readable = 1
                except (ValueError, OverflowError):
                    parsed.problems.append(
                        Problem(BAD_VALUE, shown, line, message=f"unreadable values {','.join(cells)!r}")
                    )
                    values, readable = (math.nan,) * 4, 0
                parsed.lines.append(line)
                parsed.keys.append(cells[0].strip())
                parsed.readable.append(readable)
                for column, value in zip((parsed.visibility, parsed.x, parsed.y, parsed.status), values):
                    column.append(value)
    except OSError as exc:
        raise InputError(f"{shown}: cannot read label file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not a text CSV file ({exc.reason})") from exc
    return parsed


@dataclass
class LabelTable:
    """Per-frame labels of one clip: index i of every array is frame i (see docs/architecture.md).

    visibility int8 0-3 (-1: no label row); x, y float32 source pixels (NaN: no coordinate);
    status int8 (-1 unknown); state int8: 1 ball, 0 no ball, -1 unknown (masked from loss and scoring).
    """

    visibility: np.ndarray
    x: np.ndarray
    y: np.ndarray
    status: np.ndarray
    state: np.ndarray
    dialect: str
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.visibility.shape[0])

    @property
    def xy(self) -> np.ndarray:
        """(n, 2) float32 source-pixel coordinates."""
        return np.stack([self.x, self.y], axis=-1)

    @property
    def labelled(self) -> np.ndarray:
        return self.visibility >= 0

    def head(self, n: int) -> "LabelTable":
        """The first n frames (problems about later frames are dropped)."""
        return self.slice(0, n)

    def slice(self, begin: int, end: int) -> "LabelTable":
        """Frames begin..end-1 (problems about other frames are dropped)."""
        keep = [p for p in self.problems if p.frame is None or begin <= p.frame < end]
        cut = slice(begin, end)
        return replace(
            self,
            visibility=self.visibility[cut],
            x=self.x[cut],
            y=self.y[cut],
            status=self.status[cut],
            state=self.state[cut],
            problems=keep,
        )

    @classmethod
    def from_arrays(
        cls,
        visibility: Iterable[int],
        x: Iterable[float],
        y: Iterable[float],
        *,
        width: int,
        height: int,
        status: Iterable[int] | None = None,
        dialect: str = "arrays",
    ) -> "LabelTable":
        """Build a table from per-frame values (e.g. predictions); state is derived from the frame size."""
        vis = np.asarray(list(visibility), dtype=np.int8)
        xs = np.asarray(list(x), dtype=np.float32)
        ys = np.asarray(list(y), dtype=np.float32)
        st = np.full(len(vis), -1, np.int8) if status is None else np.asarray(list(status), dtype=np.int8)
        return cls(vis, xs, ys, st, frame_state(vis, xs, ys, width, height), dialect, [])


def inside(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Coordinates on the picture [0, width] x [0, height]; the far edges count: in the continuous
    coordinates of `data.geometry` x == width is the right border of the last pixel, a point on the
    picture, which labelling tools write for a ball at the edge (docs/reliability.md)."""
    with np.errstate(invalid="ignore"):
        return (x >= 0) & (x <= width) & (y >= 0) & (y <= height)


def frame_state(visibility: np.ndarray, x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    state = np.full(visibility.shape, -1, np.int8)
    state[visibility == 0] = 0
    ball = (visibility > 0) & ~np.isnan(x) & ~np.isnan(y) & inside(x, y, width, height)
    state[ball] = 1
    return state


_DIGITS = re.compile(r"(\d+)$")


def frame_number(name: str) -> int | None:
    """The number a frame file or frame cell carries: '0182.jpg' -> 182, '12' -> 12, 'img_7.png' -> 7."""
    text = name.strip()
    if re.fullmatch(r"-?\d+(\.0*)?", text):
        return int(float(text))
    match = _DIGITS.search(Path(text).stem)
    return int(match.group(1)) if match else None


def _frame_lookup(dialect: Dialect, frame_names: Sequence[str] | None) -> Callable[[str], int | None]:
    """How a row's key finds its frame: the image file's name (file-keyed dialects) or the number in the
    name matched against the frames' numbers; with no frame names, the number is the frame."""
    if frame_names is None:
        return frame_number
    by_name = {name: i for i, name in enumerate(frame_names)}
    by_number: dict[int, int] = {}
    for i, name in enumerate(frame_names):
        num = frame_number(name)
        if num is not None:
            by_number.setdefault(num, i)

    def index_of(key: str) -> int | None:
        if dialect.keyed_by_file and key in by_name:
            return by_name[key]
        num = frame_number(key)
        return by_number.get(num) if num is not None else None

    return index_of


def _row_frames(
    parsed: ParsedLabels,
    frame_names: Sequence[str] | None,
    num_frames: int | None,
    shown: str,
    problems: list[Problem],
) -> array:
    """The frame of each row ("q"), -1 for a row whose frame is not in the clip (appended to `problems`)."""
    index_of = _frame_lookup(parsed.dialect, frame_names)
    index = array("q")
    for r, key in enumerate(parsed.keys):
        idx = index_of(key)
        if idx is None or idx < 0 or (num_frames is not None and idx >= num_frames):
            problems.append(
                _row_problem(LABEL_WITHOUT_FRAME, parsed, r, None, shown, "labelled frame does not exist in the clip")
            )
            idx = -1
        index.append(idx)
    return index


@dataclass
class _Columns:
    """A table's per-frame columns while rows fill them in (the `LabelTable` fields, masked until set);
    `seen`: the line that labelled each frame first (0: none), to report duplicates and skip reported frames."""

    visibility: np.ndarray
    x: np.ndarray
    y: np.ndarray
    status: np.ndarray
    seen: array

    @classmethod
    def empty(cls, n: int) -> "_Columns":
        nan = np.full(n, np.nan, np.float32)
        return cls(np.full(n, -1, np.int8), nan, nan.copy(), np.full(n, -1, np.int8), array("q", [0]) * n)


def _row_problem(kind: str, parsed: ParsedLabels, r: int, frame: int | None, shown: str, text: str) -> Problem:
    """A problem located at row r, its message led by the row's key (decoded only when there is a problem)."""
    return Problem(kind, shown, parsed.lines[r], frame, f"{parsed.keys[r]}: {text}")


def _place_row(
    columns: _Columns, parsed: ParsedLabels, r: int, idx: int, width: int, height: int, shown: str
) -> Problem | None:
    """Write row r into frame idx's columns; a Problem when the row, or the ball it gives, cannot be used."""
    if columns.seen[idx]:
        text = f"frame already labelled on line {columns.seen[idx]}; this row is ignored"
        return _row_problem(DUPLICATE_ROW, parsed, r, idx, shown, text)
    columns.seen[idx] = parsed.lines[r]
    if not parsed.readable[r]:  # unreadable row, already reported
        return None
    v, x, y, s = parsed.visibility[r], parsed.x[r], parsed.y[r], parsed.status[r]
    if math.isnan(v):
        return _row_problem(BAD_VALUE, parsed, r, idx, shown, "no visibility; frame masked")
    if parsed.dialect.name == "frame-ball" and (x == -1 or y == -1):
        x = y = math.nan  # -1 is this dialect's "no ball"; other negative values are outside the frame
    if v < 0 or v > 3:
        return _row_problem(BAD_VALUE, parsed, r, idx, shown, f"visibility {int(v)} is not 0-3")
    columns.visibility[idx] = v
    if not math.isnan(s) and -128 <= s <= 127:
        columns.status[idx] = s
    if v == 0:
        return None
    if math.isnan(x) or math.isnan(y):
        text = f"visibility {int(v)} but no coordinates; frame masked"
        return _row_problem(VISIBLE_WITHOUT_COORDINATES, parsed, r, idx, shown, text)
    if parsed.dialect.normalised:
        x, y = x * width, y * height
    columns.x[idx], columns.y[idx] = x, y
    if not inside(np.float32(x), np.float32(y), width, height):
        text = f"({_cell(x)}, {_cell(y)}) outside the {width}x{height} frame; frame masked"
        return _row_problem(OUTSIDE_IMAGE, parsed, r, idx, shown, text)
    return None


def _frames_without_label(columns: _Columns, frame_names: Sequence[str] | None, shown: str) -> list[Problem]:
    """A problem for each frame no row labelled (a frame whose row could not be used is reported already)."""
    problems = []
    for idx in np.flatnonzero(columns.visibility < 0):
        if columns.seen[idx]:
            continue
        name = frame_names[idx] if frame_names is not None else f"frame {idx}"
        problems.append(Problem(FRAME_WITHOUT_LABEL, shown, None, int(idx), f"{name}: no label row; frame masked"))
    return problems


def build_table(
    parsed: ParsedLabels,
    *,
    width: int,
    height: int,
    num_frames: int | None = None,
    frame_names: Sequence[str] | None = None,
    display: str | None = None,
) -> LabelTable:
    """Place parsed rows on the clip's frame axis 0..n-1 and convert to source pixels.

    Rows find their frame by image file name (file-keyed dialects) or by the number in the name
    (frame-keyed dialects, or when there are no image files). `num_frames` None: as many frames as
    the highest labelled frame + 1 (a label file alone).
    """
    shown = display or str(parsed.path)
    problems = list(parsed.problems)
    index = _row_frames(parsed, frame_names, num_frames, shown, problems)
    n = num_frames if num_frames is not None else max(index, default=-1) + 1
    columns = _Columns.empty(n)
    for r, idx in enumerate(index):
        if idx >= 0 and (problem := _place_row(columns, parsed, r, idx, width, height, shown)) is not None:
            problems.append(problem)
    problems.extend(_frames_without_label(columns, frame_names, shown))
    vis, xs, ys = columns.visibility, columns.x, columns.y
    return LabelTable(
        vis, xs, ys, columns.status, frame_state(vis, xs, ys, width, height), parsed.dialect.name, problems
    )


def read_labels(
    path: Path,
    *,
    width: int,
    height: int,
    num_frames: int | None = None,
    frame_names: Sequence[str] | None = None,
    display: str | None = None,
) -> LabelTable:
    """Parse a label file in any dialect and place it on the clip's frames (see `build_table`)."""
    parsed = parse_label_file(path, display)
    return build_table(
        parsed, width=width, height=height, num_frames=num_frames, frame_names=frame_names, display=display
    )


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")


TRACKNETV2_HEADER = ("Frame", "Visibility", "X", "Y")
PREDICT_HEADER = (*TRACKNETV2_HEADER, "Score", "Interpolated")
"""`tracknet predict`'s default CSV (`predict.writers.CsvWriter`): the TrackNetV2 dialect, read as such,
plus the detection's `Score` (which `tracknet eval --pred-csv` reads back, `data.predictions`) and
`Interpolated` 0/1."""


def tennis_text(table: LabelTable, frame_names: Sequence[str]) -> str:
    """`Label.csv` text in the TrackNet tennis dialect; unlabelled frames get no row.

    Unknown status is written as an empty cell, so reading the file back gives the same table.
    """
    if len(frame_names) != len(table):
        raise ValueError(f"{len(frame_names)} frame names for {len(table)} frames")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TENNIS_HEADER)
    for i, name in enumerate(frame_names):
        v = int(table.visibility[i])
        if v < 0:
            continue
        x, y = float(table.x[i]), float(table.y[i])
        s = int(table.status[i])
        writer.writerow([name, v, "" if v == 0 else _cell(x), "" if v == 0 else _cell(y), "" if s < 0 else s])
    return buf.getvalue()


def tracknetv2_text(table: LabelTable) -> str:
    """`Frame,Visibility,X,Y` text (the TrackNetV2/V3 dialect, pixels); unlabelled frames get no row.

    No-ball rows carry 0,0 as TrackNetV3's own files do (readers ignore coordinates at visibility 0)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRACKNETV2_HEADER)
    for i in range(len(table)):
        v = int(table.visibility[i])
        if v < 0:
            continue
        x, y = ("0", "0") if v == 0 else (_cell(float(table.x[i])), _cell(float(table.y[i])))
        writer.writerow([i, v, x, y])
    return buf.getvalue()


def write_tennis_labels(path: Path, table: LabelTable, frame_names: Sequence[str]) -> None:
    """Write `Label.csv` in the TrackNet tennis dialect, atomically (see `tennis_text`)."""
    atomic_write_text(Path(path), tennis_text(table, frame_names))
