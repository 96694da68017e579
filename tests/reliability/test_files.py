"""Bad inputs and faults that could lose or corrupt files: nothing already written is lost, nothing is
written over an input, outputs get the user's permissions (docs/reliability.md, cases 1, 4, 9, 12)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.cli.helpers import tracknet
from tests.reliability.conftest import one_error_line


def digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


# ---------------------------------------------------------------- case 1: eval --save-csv
def test_eval_save_csv_never_writes_over_the_labels_it_scores(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    gt = shutil.copytree(rel_data, tmp_path / "gt")
    labels = sorted(gt.rglob("Label.csv"))
    before = digest(labels)
    for extra in ([], ["--overwrite"]):  # --overwrite never extends to the evaluation's own inputs
        proc = tracknet("eval", "--checkpoint", str(rel_checkpoint), "--data-root", str(gt), "--split", "all",
                        "--save-csv", str(gt), *extra)
        one_error_line(proc, 2, "--save-csv", "Label.csv", "reads")
        assert digest(labels) == before
    assert not list(gt.rglob(".*.tmp"))


def test_eval_save_csv_refuses_existing_files_unless_overwrite(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    args = ["eval", "--checkpoint", str(rel_checkpoint), "--data-root", str(rel_data), "--split", "all", "--save-csv", str(preds)]
    assert tracknet(*args).returncode == 0
    written = sorted(preds.rglob("Label.csv"))
    assert len(written) == 2
    for p in written:
        p.write_text("kept\n")
    one_error_line(tracknet(*args), 2, "already exists", "--overwrite")
    assert all(p.read_text() == "kept\n" for p in written)
    proc = tracknet(*args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert all(p.read_text().startswith("file name,") for p in written)
