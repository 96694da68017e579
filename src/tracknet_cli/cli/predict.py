"""`tracknet predict`: ball positions CSV (and an overlay video) for videos, frame folders or images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tracknet_cli.choices import CSV_FORMATS, DEVICES, INFERENCE_PRECISIONS, RUNTIMES, listed
from tracknet_cli.cli import console
from tracknet_cli.cli.options import CHECKPOINT_HELP, DeviceOpt, RuntimeOpt, checkpoint_option, choice, flag
from tracknet_cli.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from tracknet_cli.predict.outputs import PredictionSummary
    from tracknet_cli.predict.sources import FrameSource
    from tracknet_cli.predict.tracker import Tracker
    from tracknet_cli.pretrained.resolve import ResolvedCheckpoint

EPILOG = (
    "Examples:\n\n"
    "  tracknet predict match.mp4 --out overlay.mp4          # the default ready model (tracknet models)\n\n"
    "  tracknet predict match.mp4 --checkpoint badminton\n\n"
    "  tracknet predict match.mp4 --checkpoint runs/quickstart/exp1/weights/best.safetensors\n\n"
    "  tracknet predict match.mp4 -c best.safetensors --out match_ball.mp4 --csv match_ball.csv\n\n"
    "  tracknet predict videos/ -c best.safetensors --no-video --device cuda --batch 32\n\n"
    "  tracknet predict rally/frames/ -c best.safetensors --start 100 --end 400 --csv-format tracknet\n\n"
    "  tracknet predict match.mp4 -c best.safetensors --overlay-scale 0.5 --trail 20 --max-gap 8\n\n"
    "  tracknet predict match.mp4 -c model.onnx --no-video   # exported with tracknet export; runs in openvino"
)

RUNS_ROOT = Path("runs/predict")

InputsArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="INPUT...", show_default=False, help="Videos, folders of frames, folders of videos, or images."
    ),
]
CheckpointOpt = Annotated[Optional[str], checkpoint_option(f"{CHECKPOINT_HELP} \\[default: the default ready model]")]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--out", help="Overlay video path (single input). \\[default: runs/predict/expN/<stem>.mp4]"),
]
CsvOpt = Annotated[
    Optional[Path], typer.Option("--csv", help="CSV path (single input). \\[default: beside the overlay, <stem>.csv]")
]
NoVideoOpt = Annotated[bool, typer.Option("--no-video", help="Write only the CSV.")]
BatchOpt = Annotated[
    Optional[int],
    typer.Option(
        "--batch", min=1, help="Windows per forward pass. \\[default: 8 on a GPU; on a CPU 2 at 256x144, 1 at 512x288]"
    ),
]
StartOpt = Annotated[int, typer.Option("--start", min=0, help="First frame (0-based).")]
EndOpt = Annotated[
    Optional[int], typer.Option("--end", min=1, help="Stop before this frame (exclusive). \\[default: the last frame]")
]
ThresholdOpt = Annotated[
    Optional[float], typer.Option("--threshold", help="Detection score threshold. \\[default: the checkpoint's]")
]
MaxGapOpt = Annotated[
    int,
    typer.Option("--max-gap", min=0, help="Fill gaps of at most N frames between detections (flagged Interpolated)."),
]
MaxJumpOpt = Annotated[
    Optional[float],
    typer.Option(
        "--max-jump",
        help="Reject jumps beyond PX source pixels per frame unless confirmed. \\[default: 10% of the frame diagonal]",
    ),
]
NoTrackOpt = Annotated[
    bool, typer.Option("--no-track", help="Raw thresholded detections: no gating, resets or gap filling.")
]
TrailOpt = Annotated[int, typer.Option("--trail", min=0, help="Overlay: fading trail of the last N positions.")]
OverlayScaleOpt = Annotated[
    float,
    typer.Option("--overlay-scale", help="Overlay size as a fraction of the input (0.5: 4x fewer pixels to encode)."),
]
CsvFormatOpt = Annotated[
    str,
    typer.Option(
        "--csv-format",
        help=f"{listed(CSV_FORMATS)}: default Frame,Visibility,X,Y,Score,Interpolated; tracknet the Label.csv dialect",
    ),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help=(
            f"{listed(INFERENCE_PRECISIONS)} (auto: bf16/fp16 on GPUs; on CPUs with native bf16 as training picks it)"
        ),
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


def predict(
    inputs: InputsArg,
    checkpoint: CheckpointOpt = None,
    out: OutOpt = None,
    csv: CsvOpt = None,
    no_video: NoVideoOpt = False,
    batch: BatchOpt = None,
    device: DeviceOpt = "auto",
    start: StartOpt = 0,
    end: EndOpt = None,
    threshold: ThresholdOpt = None,
    max_gap: MaxGapOpt = 5,
    max_jump: MaxJumpOpt = None,
    no_track: NoTrackOpt = False,
    trail: TrailOpt = 10,
    overlay_scale: OverlayScaleOpt = 1.0,
    csv_format: CsvFormatOpt = "default",
    precision: PrecisionOpt = "auto",
    runtime: RuntimeOpt = "auto",
    overwrite: OverwriteOpt = False,
) -> None:
    """Ball position for every frame: a CSV, and an overlay video with the ball and its trail."""
    _check_options(device, runtime, csv_format, precision, threshold, max_gap, max_jump, overlay_scale, no_video, out)
    from tracknet_cli.predict.sources import open_sources
    from tracknet_cli.predict.tracker import Tracker

    sources = open_sources(inputs, start, end)  # every input is checked before any work
    if (out is not None or csv is not None) and len(sources) > 1:
        raise UsageError(
            f"--out/--csv name the outputs of one input, but the inputs hold {len(sources)} "
            "videos or folders; leave them out to write runs/predict/expN/<stem>.csv"
        )
    from tracknet_cli.pretrained.resolve import default_checkpoint, default_notice, resolve_checkpoint

    resolved = resolve_checkpoint(checkpoint) if checkpoint is not None else default_checkpoint()
    if checkpoint is None:
        console.info(default_notice(resolved, flag))
    # Named outputs are checked before the model loads; the default runs/predict/expN is made after.
    named = _targets(sources, out, csv, no_video, overwrite, reads=[resolved.path]) if out or csv else None
    tracker = Tracker.from_pretrained(
        resolved,
        device=device,
        batch_size=batch,
        threshold=threshold,
        max_gap=max_gap,
        max_jump=max_jump,
        track=not no_track,
        precision=precision,
        runtime=runtime,
    )
    targets = named or _targets(sources, out, csv, no_video, overwrite, reads=[resolved.path])
    _show_model(resolved, tracker)
    totals = [
        _predict_one(tracker, source, csv_path, video_path, csv_format, trail, overlay_scale, overwrite)
        for source, (csv_path, video_path) in zip(sources, targets)
    ]
    if len(totals) > 1:
        _show_total(totals)


def _check_options(
    device: str,
    runtime: str,
    csv_format: str,
    precision: str,
    threshold: Optional[float],
    max_gap: int,
    max_jump: Optional[float],
    overlay_scale: float,
    no_video: bool,
    out: Optional[Path],
) -> None:
    """What the command line alone can refuse, before sources or the model are opened."""
    choice(device, DEVICES, "--device")
    choice(runtime, RUNTIMES, "--runtime")
    choice(csv_format, CSV_FORMATS, "--csv-format")
    choice(precision, INFERENCE_PRECISIONS, "--precision")
    from tracknet_cli.predict.tracking import TrackingConfig

    # --threshold, --max-gap, --max-jump are checked where they are owned, before sources or model load.
    TrackingConfig.check_options(threshold, max_gap, max_jump)
    if not 0.0 < overlay_scale <= 4.0:
        raise typer.BadParameter("must be in (0, 4]", param_hint="--overlay-scale")
    if no_video and out is not None:
        raise typer.BadParameter(
            "--out names the overlay video, which --no-video turns off (use --csv)", param_hint="--out"
        )


def _show_model(resolved: "ResolvedCheckpoint", tracker: "Tracker") -> None:
    engine = tracker.engine
    if engine.runtime_note:
        console.warn(engine.runtime_note)
    console.info(
        f"model {resolved.label} on {engine.device} "
        f"({'fp32' if engine.autocast_dtype is None else str(engine.autocast_dtype).split('.')[-1]}, "
        f"{engine.runtime}), "
        f"input {engine.input_size[0]}x{engine.input_size[1]}, {engine.window}-frame windows, "
        f"batch {engine.batch_size}, "
        f"threshold {tracker.threshold:.3f}{'' if tracker.tracking.enabled else ', no tracking'}"
    )


def _predict_one(
    tracker: "Tracker",
    source: "FrameSource",
    csv_path: Path,
    video_path: Optional[Path],
    csv_format: str,
    trail: int,
    overlay_scale: float,
    overwrite: bool,
) -> "PredictionSummary":
    """One input's CSV (and overlay), with its progress and its result line."""
    from tracknet_cli.predict.outputs import write_outputs

    with _Progress(source) as progress:
        summary = write_outputs(
            lambda size: tracker.stream(source, overlay_size=size),
            source,
            csv_path=csv_path,
            video_path=video_path,
            csv_format=csv_format,  # type: ignore[arg-type]
            trail=trail,
            overlay_scale=overlay_scale,
            overwrite=overwrite,
            on_row=progress.update,
        )
        progress.done(summary)
    if summary.warning:
        console.warn(summary.warning)
    written = ", ".join(str(p) for p in (summary.csv_path, summary.video_path) if p is not None)
    console.out.print(f"{source.info.stem}: {summary.line()} → {written}", markup=False, highlight=False)
    return summary


def _show_total(totals: list["PredictionSummary"]) -> None:
    frames = sum(s.frames for s in totals)
    seconds = sum(s.seconds for s in totals)
    console.out.print(
        f"total: {len(totals)} inputs, {frames} frames, {sum(s.detections for s in totals)} detections, "
        f"{sum(s.interpolated for s in totals)} interpolated, {seconds:.1f} s, "
        f"{frames / seconds if seconds > 0 else 0.0:.1f} frames/s",
        markup=False,
        highlight=False,
    )


def _targets(
    sources: list["FrameSource"],
    out: Optional[Path],
    csv: Optional[Path],
    no_video: bool,
    overwrite: bool,
    reads: Optional[list[Path]] = None,
) -> list[tuple[Path, Optional[Path]]]:
    """(csv, overlay or None) per source; refuses existing files before any work, and always an
    output that is one of the inputs (a video, a frame, the checkpoint), --overwrite or not."""
    if out is not None or csv is not None:
        csv_path = csv if csv is not None else out.with_suffix(".csv")  # type: ignore[union-attr]
        video_path = None if no_video else (out if out is not None else csv_path.with_suffix(".mp4"))
        if video_path is not None and video_path.resolve() == csv_path.resolve():
            raise UsageError(f"--out and --csv both name {csv_path}; give them different names")
        pairs = [(csv_path, video_path)]
    else:
        from tracknet_cli.inference.rundir import next_run_dir

        run_dir = next_run_dir(RUNS_ROOT)
        pairs, used = [], set()
        for source in sources:
            stem, n = source.info.stem, 2
            while stem in used:  # two inputs with one stem (a/clip.mp4, b/clip.mp4) keep both results
                stem, n = f"{source.info.stem}-{n}", n + 1
            used.add(stem)
            pairs.append((run_dir / f"{stem}.csv", None if no_video else run_dir / f"{stem}.mp4"))
    _refuse_inputs([p for pair in pairs for p in pair if p is not None], sources, reads or [])
    from tracknet_cli.predict.writers import refuse_existing

    refuse_existing((p for pair in pairs for p in pair), overwrite)
    return pairs


def _refuse_inputs(outputs: list[Path], sources: list["FrameSource"], reads: list[Path]) -> None:
    from tracknet_cli.atomic import first_overwritten_input

    inputs = [*reads, *(p for s in sources for p in (getattr(s, "paths", None) or [s.info.path]))]
    path = first_overwritten_input(outputs, inputs)
    if path is not None:
        raise UsageError(
            f"{path} is one of the inputs; name an output that is not an input (--overwrite never replaces an input)"
        )


class _Progress:
    """A rich bar on stderr (terminals): frames, frames/s, elapsed and ETA; the total may be unknown.
    Elsewhere (pipes, logs) a line every 30 s."""

    def __init__(self, source: "FrameSource") -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.source = source
        self.live = console.err.is_terminal and not console.quiet()
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} frames/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console.err,
            transient=False,
            disable=not self.live,
        )
        self.task: Any = None
        self._shown = 0
        self._logged = time.monotonic()

    def __enter__(self) -> "_Progress":
        self.progress.__enter__()
        self.task = self.progress.add_task(self.source.info.stem, total=self.source.expected_frames, rate=0.0)
        return self

    def update(self, summary: "PredictionSummary") -> None:
        if summary.frames - self._shown < 8:
            return
        self._shown = summary.frames
        if self.live:
            self.progress.update(self.task, completed=summary.frames, rate=summary.fps)
        elif not console.quiet() and time.monotonic() - self._logged >= 30.0:
            self._logged = time.monotonic()
            total = self.source.expected_frames
            console.info(
                f"{self.source.info.stem}: {summary.frames}/{total if total else '?'} frames, "
                f"{summary.fps:.1f} frames/s"
            )

    def done(self, summary: "PredictionSummary") -> None:
        self.progress.update(self.task, completed=summary.frames, total=summary.frames, rate=summary.fps)

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
