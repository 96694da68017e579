"""Errors name parameters, not flags (`tracknet_cli.errors`): a Python caller reads the core's parameter
name, the CLI its flag (`cli.options.flag`), from the one message the core wrote. And no message the
core words names a flag itself, except the few the CLI alone shows (listed below)."""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT
from tracknet_cli.cli.options import flag
from tracknet_cli.errors import EXIT_USAGE, InputError, UsageError

SRC = ROOT / "src" / "tracknet_cli"


def test_a_message_names_the_parameter_for_python_and_the_flag_for_the_cli() -> None:
    exc = UsageError(
        "{end} 5 must be greater than {start} 9 in {folder}/{start}",  # {folder}: not declared, kept
        parameter="end",
        value=5,
        also=("start",),
        hint="see {end}",
    )
    assert str(exc) == exc.render() == "end 5 must be greater than start 9 in {folder}/start"
    assert exc.line() == "end 5 must be greater than start 9 in {folder}/start (see end)"
    assert exc.line(flag) == "--end 5 must be greater than --start 9 in {folder}/--start (see --end)"
    assert (exc.parameter, exc.value, exc.parameters, exc.exit_code) == ("end", 5, ("end", "start"), EXIT_USAGE)


def test_flags_are_the_names_with_dashes_unless_the_cli_calls_them_otherwise() -> None:
    assert [flag(p) for p in ("labels", "init_from", "max_gap", "batch_size", "out_dir")] == [
        "--labels",
        "--init-from",
        "--max-gap",
        "--batch",
        "--save-csv",
    ]


def test_rank_0s_error_reaches_every_rank_whole() -> None:
    """`training.distributed.main_only` hands rank 0's error to the other ranks pickled (here, to itself)."""
    from tracknet_cli.training.distributed import DistContext, main_only

    class Pickling(DistContext):
        def broadcast(self, value):  # what torch.distributed.broadcast_object_list does to it
            return pickle.loads(pickle.dumps(value))

    def fail() -> None:
        raise InputError("{resume} r: not a run", parameter="resume", value=Path("r"))

    with pytest.raises(InputError) as info:
        main_only(Pickling(rank=0, world_size=2), fail)
    assert info.value.line(flag) == "--resume r: not a run" and info.value.value == Path("r")


def test_the_python_api_is_told_the_parameter_it_passed(tmp_path: Path) -> None:
    from tracknet_cli.inference.onnx import export_checkpoint
    from tracknet_cli.predict.tracking import TrackingConfig

    out = tmp_path / "model.txt"
    with pytest.raises(UsageError) as info:
        export_checkpoint(tmp_path / "model.safetensors", out)
    assert str(info.value).startswith(f"out {out}: name the ONNX model NAME.onnx") and "--out" not in str(info.value)
    assert (info.value.parameter, info.value.value) == ("out", out)
    assert info.value.line(flag).startswith(f"--out {out}: name the ONNX model")
    with pytest.raises(UsageError) as info:
        TrackingConfig.check_options(threshold=None, max_gap=-1, max_jump=None)
    assert info.value.line() == "max gap -1 must be >= 0 (max_gap)"
    assert info.value.line(flag) == "max gap -1 must be >= 0 (--max-gap)"


def _frames(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 36), (i * 40, 90, 30)).save(folder / f"{i}.jpg")
    return folder


def test_the_label_file_error_names_labels_in_python_and_labels_flag_in_the_cli(tmp_path: Path) -> None:
    from tracknet_cli.label.session import open_session

    frames, taken = _frames(tmp_path / "clip"), tmp_path / "labels"
    taken.mkdir()
    with pytest.raises(UsageError) as info:
        open_session(frames, taken)
    assert str(info.value) == f"labels {taken} is a folder; name a .csv file"
    proc = subprocess.run(
        [sys.executable, "-m", "tracknet_cli", "label", str(frames), "--no-model", "--labels", str(taken)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: --labels {taken} is a folder; name a .csv file", proc.stderr


# Flags the core still writes: the `--set` override syntax (the config language itself), command lines
# it builds to run, and lines only a CLI command shows that say what to run next.
KEPT = {
    "config/load.py": {"--set"},  # `--set dotted.key=VALUE`: the documented override syntax
    "inference/checkpoint.py": {"--set"},  # "use the same settings (e.g. --set model.x=...)": that syntax
    "training/distributed.py": {"--standalone", "--nnodes", "--nproc-per-node", "--module"},  # torchrun's argv
    "training/launch.py": {"--debug", "--quiet"},  # the argv `train --devices N` relaunches itself with
    "training/loop.py": {"--resume"},  # train's Ctrl-C: "continue with: tracknet train --resume RUN"
    "label/service.py": {"--debug"},  # `tracknet label`'s server died: "(run with --debug)"
}
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_the_core_names_no_flag_of_its_own() -> None:
    """A new message naming `--flag` in the core: name the parameter instead (`{name}`, see `errors`)."""
    found = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] != "cli"
        for line, text in _strings(path)
        for name in _FLAG.findall(text)
        if name not in KEPT.get(path.relative_to(SRC).as_posix(), set())
    ]
    assert not found, "\n".join(found)
