"""`tracknet data inspect | import | synth`: audit, convert and generate datasets."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tracknet_cli.cli import console
from tracknet_cli.cli.options import DataOpt, ModelOpt, ProfileOpt, SetOpt, TrainingOpt, resolve_selection
from tracknet_cli.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from tracknet_cli.data.inspect import InspectReport

app = typer.Typer(help="Inspect, import and synthesise datasets.", no_args_is_help=True)

_PROBLEMS_SHOWN = 20


def _render(report: "InspectReport") -> None:
    from rich.table import Table

    from tracknet_cli.data.inspect import Counts

    table = Table()
    for name in ("game", "clip", "source", "size", "frames", "labelled", "v0", "v1", "v2", "v3", "status", "problems"):
        table.add_column(
            name, justify="left" if name in ("game", "clip", "source", "size", "status") else "right", no_wrap=True
        )

    def row(game: str, clip: str, source: str, size: str, n: Counts, problems: int, style: str | None = None) -> None:
        status = " ".join(f"{k}:{v}" for k, v in sorted(n.status.items())) or "-"
        table.add_row(
            game,
            clip,
            source,
            size,
            str(n.frames),
            str(n.labelled),
            *(str(n.visibility[str(v)]) for v in range(4)),
            status,
            str(problems),
            style=style,
        )

    games = report.games
    for game in games:
        members = [c for c in report.clips if c.game == game]
        for c in members:
            row(c.game or "-", c.clip, c.source, f"{c.width}x{c.height}", c.counts, c.problems)
        if len(games) > 1 and len(members) > 1:
            sub = Counts()
            for c in members:
                sub.add(c.counts)
            row(game or "-", f"{len(members)} clips", "", "", sub, sum(c.problems for c in members), style="bold")
        table.add_section()
    clips = len(report.clips)
    row("total", f"{clips} clip{'s' if clips != 1 else ''}", "", "", report.totals, len(report.problems), style="bold")
    console.out.print(f"{report.root}", markup=False)
    if console.out.is_terminal:
        console.out.print(table)
    else:  # pipes and logs get the whole table, not one squeezed to 80 columns
        console.wide_console(200).print(table)
    t = report.totals
    console.out.print(f"visible (visibility > 0): {t.visible} of {t.frames} frames")
    if report.problems:
        console.out.print(f"{len(report.problems)} problems:")
        for p in report.problems[:_PROBLEMS_SHOWN]:
            where = f"{p.file}:{p.row}" if p.row is not None else p.file
            console.out.print(f"  {p.kind:<28} {where}  {p.message}", markup=False)
        if len(report.problems) > _PROBLEMS_SHOWN:
            console.out.print(f"  ... {len(report.problems) - _PROBLEMS_SHOWN} more (see --json)")
    else:
        console.out.print("no problems found")


@app.command(
    "inspect",
    epilog=(
        "Example: tracknet data inspect data/tracknet --preview sheet.png\n\n"
        "Exit codes: 0 done, 1 with --strict when problems exist, 2 when PATH is unusable."
    ),
)
def inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder in any supported layout (see docs/datasets).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report on stdout.")] = False,
    preview: Annotated[
        Optional[Path], typer.Option("--preview", help="Write a contact sheet PNG of sample frames with labels.")
    ] = None,
    check_images: Annotated[
        bool, typer.Option("--check-images", help="Decode every frame to find unreadable images/videos (slower).")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any problem is found.")] = False,
) -> int:
    """Count frames, labels and visibility per game and clip, and list every problem with file and row."""
    from tracknet_cli.data.clips import scan
    from tracknet_cli.data.inspect import inspect_dataset, write_preview

    start = time.perf_counter()
    found = scan(path)
    report = inspect_dataset(path, check_images=check_images, found=found)
    if preview is not None:
        write_preview(found.clips, preview)
        console.info(f"preview written to {preview}")
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _render(report)
    clips = len(report.clips)
    console.info(f"inspected {clips} clip{'' if clips == 1 else 's'} in {time.perf_counter() - start:.2f} s")
    return EXIT_FAILURE if strict and report.problems else 0


@app.command(
    "import",
    epilog=(
        "Example: tracknet data import ../badminton-train data/badminton\n\n"
        "Flat (NAME.mp4 + NAME.csv) and TrackNetV2 clips land in OUT/<SRC folder name>/<clip>/."
    ),
)
def import_(
    src: Annotated[Path, typer.Argument(help="Dataset folder in any supported layout.")],
    out: Annotated[Path, typer.Argument(help="New folder for the tennis layout (must not exist, or be empty).")],
) -> int:
    """Convert a dataset to the TrackNet tennis layout: OUT/<game>/<clip>/0000.jpg ... + Label.csv."""
    from tracknet_cli.data.importer import import_dataset

    def progress(done: int, total: int, clip_id: str) -> None:
        console.info(f"[{done}/{total}] {clip_id}")

    report = import_dataset(src, out, on_clip=progress)
    n = len(report.clips)
    print(console.printable(f"imported {n} clip{'' if n == 1 else 's'}, {report.frames} frames into {report.out}"))
    if report.problems and not console.quiet():  # plain write: a long path must not be wrapped mid-command
        sys.stderr.write(
            console.printable(
                f"warning: {len(report.problems)} problems in the source were carried "
                f"over (list them: tracknet data inspect {out})"
            )
            + "\n"
        )
    return 0


def parse_size(text: str) -> tuple[int, int]:
    """'512x288' → (512, 288); UsageError with the expected form otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 512x288")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise UsageError(f"--size {text}: width and height must be between 16 and 8192 pixels")
    return width, height


@app.command("synth", epilog="Example: tracknet data synth data/synth --games 1 --clips 2 --frames 60 --size 256x144")
def synth(
    out: Annotated[Path, typer.Argument(help="New folder for the synthetic dataset (tennis layout).")],
    games: Annotated[int, typer.Option("--games", min=1, help="Game folders (each its own court and colours).")] = 4,
    clips: Annotated[int, typer.Option("--clips", min=1, help="Clips per game.")] = 5,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per clip.")] = 100,
    size: Annotated[str, typer.Option("--size", help="Frame size WIDTHxHEIGHT.")] = "512x288",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same dataset.")] = 0,
) -> int:
    """Generate deterministic synthetic clips (ball with gravity, bounces, occlusion, a distractor)."""
    width, height = parse_size(size)
    from tracknet_cli.data.synth import synthesize

    report = synthesize(out, games=games, clips=clips, frames=frames, size=(width, height), seed=seed)
    print(
        console.printable(
            f"wrote {report.clips} clips, {report.frames} frames ({width}x{height}) to {report.out} "
            f"in {report.seconds:.1f} s; next: tracknet data inspect {report.out}"
        )
    )
    return 0


@app.command(
    "cache",
    epilog="Example: tracknet data cache --profile quickstart --set data.cache_dir=/fast/disk/cache",
)
def cache(
    profile: ProfileOpt = None,
    data: DataOpt = None,
    model: ModelOpt = None,
    training: TrainingOpt = None,
    set_: SetOpt = None,
) -> None:
    """Build the frame cache at model resolution for every clip under data.root (reused when valid):
    training clips in data.cache_format (raw npy by default, or jpeg), validation and test clips as npy."""
    from tracknet_cli.data.cache import build_cache
    from tracknet_cli.data.clips import discover_clips
    from tracknet_cli.data.splits import split_clips

    cfg = resolve_selection(profile, data, model, training, set_).config
    clips = discover_clips(cfg.data.root)
    exact: set[str] = set()
    if cfg.data.cache_format != "npy":  # validation and test clips stay exact (npy), as training reads them
        splits = split_clips(clips, cfg.data.split)
        exact = {c.id for c in splits.val + splits.test}
    started = time.monotonic()

    def progress(clip, built: bool) -> None:
        console.info(f"{'built' if built else 'valid'} {clip.id}")

    summary = build_cache(clips, cfg.data, cache_dir=cfg.data.cache_dir, progress=progress, exact=exact)
    print(
        json.dumps(
            {
                "cache_dir": str(summary.directory),
                "built": len(summary.built),
                "reused": len(summary.reused),
                "bytes": summary.bytes,
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )
