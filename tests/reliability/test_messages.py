"""What the user reads: one plain line per failure, user text printed as itself, no unsafe advice,
no line wrapped or bloated (docs/reliability.md, cases 2, 5, 6, 7, 8, 10, 13)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import tracknet
from tests.reliability.conftest import TINY, one_error_line, write_mp4


# ---------------------------------------------------------------- case 2: user text is never markup
def test_predict_prints_a_markup_like_folder_name_as_itself(
    rel_data: Path, rel_checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mk[/b]"
    video = write_mp4(folder / "v[red].mp4", rel_data / "game1" / "Clip1")
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])  # truncated: predict warns, naming the file
    proc = tracknet("predict", str(video), "-c", str(rel_checkpoint), "--csv", str(folder / "o.csv"), "--no-video")
    assert proc.returncode == 0, proc.stderr
    assert "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr
    assert "v[red]: " in proc.stdout and str(folder / "o.csv") in proc.stdout  # the summary line is kept
    assert str(folder) in proc.stderr  # the model line and the truncation warning name the path as given
    assert (folder / "o.csv").is_file()


def test_eval_and_inspect_print_a_markup_like_clip_id_as_itself(rel_data: Path, tmp_path: Path) -> None:
    gt = tmp_path / "gt"
    shutil.copytree(rel_data / "game1" / "Clip1", gt / "g[" / "b]")  # clip id `g[/b]`
    shutil.copytree(rel_data / "game1" / "Clip2", gt / "h[bold]" / "Clip2")
    preds = tmp_path / "preds"
    shutil.copytree(gt / "g[", preds / "g[")  # h[bold]/Clip2 has none: a warning names it
    proc = tracknet("eval", "--pred-csv", str(preds), "--gt", str(gt))
    assert proc.returncode == 0, proc.stderr
    assert "g[/b]" in proc.stdout and "MarkupError" not in proc.stderr
    assert "h[bold]/Clip2" in proc.stderr
    proc = tracknet("data", "inspect", str(gt))
    assert proc.returncode == 0, proc.stderr
    assert "g[" in proc.stdout and "b]" in proc.stdout and "h[bold]" in proc.stdout  # game and clip columns


# ---------------------------------------------------------------- case 6: a profile that is not UTF-8
def test_non_utf8_profile_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    profile = tmp_path / "latin1.yaml"
    profile.write_bytes("description: r\xe9glage\nextends: quickstart\n".encode("latin-1"))
    for args in (
        ["config", "show", "--profile", str(profile)],
        ["train", "--dry-run", "--profile", str(profile)],
        ["config", "show", "--data", str(profile)],
    ):
        one_error_line(tracknet(*args), 2, str(profile), "UTF-8")
    run = tmp_path / "run"
    (run / "state").mkdir(parents=True)
    (run / "config.yaml").write_bytes(b"data:\n  root: \xff\n")
    (run / "state" / "last.pt").write_bytes(b"x")
    one_error_line(tracknet("train", "--resume", str(run)), 2, "config.yaml", "UTF-8")


# ---------------------------------------------------------------- case 7: a foreign state/last.pt
def test_resume_refuses_a_raw_pickle_state_in_one_line_without_unsafe_advice(
    rel_checkpoint: Path, tmp_path: Path
) -> None:
    run = shutil.copytree(rel_checkpoint.parents[1], tmp_path / "run")
    marker = tmp_path / "code-ran"
    state = run / "state" / "last.pt"
    payloads = {
        "plain pickle": f"import pickle; pickle.dump({{'step': 1}}, open({str(state)!r}, 'wb'), protocol=4)",
        "code in a pickle": (
            "import os, pickle\n"
            "class Evil:\n"
            f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
            f"pickle.dump({{'step': Evil()}}, open({str(state)!r}, 'wb'))"
        ),
    }
    for name, code in payloads.items():
        subprocess.run([sys.executable, "-c", code], check=True)
        line = one_error_line(tracknet("train", "--resume", str(run)), 2, "last.pt", "cannot be loaded")
        assert "weights_only" not in line and "Warning" not in line, (name, line)
        assert not marker.exists()
    state.write_bytes(b"PK\x03\x04 truncated")
    line = one_error_line(tracknet("train", "--resume", str(run)), 2, "last.pt", "cannot be loaded")
    assert "weights_only" not in line


# ---------------------------------------------------------------- case 8: log lines are not wrapped
def test_info_and_warning_lines_stay_whole_on_a_pipe(rel_data: Path, rel_checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / ("a-folder-name-long-enough-that-no-line-naming-it-fits-in-eighty-columns-" * 2)
    video = write_mp4(folder / "clip.mp4", rel_data / "game1" / "Clip1")
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])
    proc = tracknet(
        "predict",
        str(video),
        "-c",
        str(rel_checkpoint),
        "--csv",
        str(folder / "o.csv"),
        "--no-video",
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert any(line.startswith("model ") and str(rel_checkpoint) in line for line in lines), proc.stderr
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert warnings and str(video) in warnings[0], proc.stderr
    assert all(line.startswith(("model ", "warning: ")) for line in lines), proc.stderr  # no continuation lines


# ---------------------------------------------------------------- case 13: an error repeats little of the input
def _bomb(levels: int) -> str:
    names = "abcdefghij"
    parts = ["&a [x,x,x,x,x,x,x,x,x]"] + [
        f"&{names[i]} [{','.join([f'*{names[i - 1]}'] * 9)}]" for i in range(1, levels)
    ]
    return f"[{', '.join(parts)}]"


def test_yaml_alias_bomb_gets_a_short_error_line(tmp_path: Path) -> None:
    for levels in (5, 9):  # 9**5 values reach validation; 9**9 are refused before they are built
        for key in ("training.lr", "model.backbone", "data.root"):
            line = one_error_line(tracknet("config", "show", "--set", f"{key}={_bomb(levels)}", timeout=60), 2, key)
            assert len(line) < 400, line[:400]
    profile = tmp_path / "bomb.yaml"
    profile.write_text(f"extends: quickstart\ndescription: {_bomb(9)}\n")
    line = one_error_line(tracknet("config", "show", "--profile", str(profile), timeout=60), 2, str(profile), "aliases")
    assert len(line) < 400 + len(str(profile))


# ---------------------------------------------------------------- case 5: malformed prediction CSVs
def test_malformed_prediction_rows_are_reported_and_strict_refuses_them(rel_data: Path, tmp_path: Path) -> None:
    preds = shutil.copytree(rel_data, tmp_path / "preds")
    label = preds / "game1" / "Clip1" / "Label.csv"
    rows = label.read_text().splitlines()
    rows[2] = "0001.jpg,abc,10,10,0"  # line 3
    rows[3] = "0002.jpg,9,10,10,0"  # line 4
    rows[4] = "0003.jpg,1,1e400,10,0"  # line 5
    rows[5] = "0004.jpg,1,NaN,10,0"  # line 6
    rows[-1] = '0029.jpg,1,"10,10,0'  # line 31: an unterminated quote
    label.write_text("\n".join(rows) + "\n")
    scored = preds / "game1" / "Clip2" / "Label.csv"  # the predict dialect, with a Score column
    scored.write_text(
        "Frame,Visibility,X,Y,Score,Interpolated\n"
        + "".join(f"{i},1,20,20,{'NaN' if i == 7 else '0.9'},0\n" for i in range(30))
    )
    proc = tracknet("eval", "--pred-csv", str(preds), "--gt", str(rel_data))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(proc.stderr.strip().splitlines()), proc.stderr
    for row, kind in (
        (3, "bad_value"),
        (4, "bad_value"),
        (5, "outside_image"),
        (6, "visible_without_coordinates"),
        (31, "bad_value"),
    ):
        assert any(f"{label}:{row}: {kind}" in w for w in warnings), (row, kind, proc.stderr)
    assert any(f"{scored}:9: bad_value" in w and "score" in w for w in warnings), proc.stderr
    assert "--strict" in warnings[-1]
    proc = tracknet("eval", "--pred-csv", str(preds), "--gt", str(rel_data), "--json")
    assert proc.returncode == 0, proc.stderr
    assert {(p["file"], p["row"]) for p in json.loads(proc.stdout)["problems"]} >= {(str(label), 3), (str(scored), 9)}
    one_error_line(
        tracknet("eval", "--pred-csv", str(preds), "--gt", str(rel_data), "--strict"),
        2,
        "problems in the prediction CSVs",
        f"{label}:3",
    )


# ---------------------------------------------------------------- case 10: training names the clips it leaves out
def test_train_warns_about_an_unreadable_clip_and_strict_refuses(rel_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for clip in ("Clip1", "Clip2"):
        write_mp4(root / f"{clip}.mp4", rel_data / "game1" / clip)
        shutil.copy(rel_data / "game1" / clip / "Label.csv", root / f"{clip}.csv")
    (root / "bad.mp4").write_text("not a video\n")
    shutil.copy(rel_data / "game1" / "Clip1" / "Label.csv", root / "bad.csv")
    proc = tracknet("train", *TINY, "--set", f"data.root={root}", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "bad.mp4" in warnings[0] and "--strict" in warnings[0], proc.stderr
    proc = tracknet("train", *TINY, "--set", f"data.root={root}", "--out", str(tmp_path / "run2"), "--strict")
    one_error_line(proc, 2, "bad.mp4", "--strict")
    assert not (tmp_path / "run2").exists()
