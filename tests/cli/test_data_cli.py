"""`tracknet data inspect | import | synth` end to end: output, JSON, files written, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.helpers import tracknet
from tracknet_cli.cli.app import run

TENNIS = "file name,visibility,x-coordinate,y-coordinate,status\n"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clean_dataset(root: Path) -> Path:
    clip = root / "game1" / "Clip1"
    clip.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 16)).save(clip / f"{i:04d}.jpg")
    (clip / "Label.csv").write_text(TENNIS + "0000.jpg,1,4,4,0\n0001.jpg,0,,,0\n0002.jpg,2,8,8,2\n")
    return root


def test_inspect_handball_json(realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "data", "inspect", str(realdata / "handball-tracknet-layout"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["totals"]["frames"] == 276
    assert data["totals"]["visibility"] == {"0": 32, "1": 163, "2": 60, "3": 21}
    assert len(data["clips"]) == 1
    flagged = [(p["kind"], p["clip"], p["file"], p["row"]) for p in data["problems"]]
    assert flagged == [
        ("visible_without_coordinates", "game1/Clip1", "game1/Clip1/Label.csv", 184),
        ("visible_without_coordinates", "game1/Clip1", "game1/Clip1/Label.csv", 185),
    ]
    assert "0182.jpg" in data["problems"][0]["message"] and "0183.jpg" in data["problems"][1]["message"]


def test_inspect_badminton_json(realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "data", "inspect", str(realdata / "badminton-train"), "--json")
    assert code == 0
    data = json.loads(out)
    assert (len(data["clips"]), data["totals"]["frames"], data["totals"]["visible"]) == (33, 8018, 6852)
    assert "inspected 33 clips" in err  # timing goes to stderr, stdout stays pure JSON


def test_inspect_table_and_strict(realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "data", "inspect", str(realdata / "handball-tracknet-layout"))
    assert code == 0
    row = next(line for line in out.splitlines() if "Clip1" in line)
    assert all(cell in row for cell in ("game1", "320x180", "276", "32", "163", "60", "21", "0:164 1:86 2:26"))
    assert "visible (visibility > 0): 244 of 276 frames" in out
    assert "game1/Clip1/Label.csv:184" in out and "0183.jpg" in out
    assert _run(capsys, "data", "inspect", str(realdata / "handball-tracknet-layout"), "--strict")[0] == 1


def test_strict_passes_on_clean_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "data", "inspect", str(_clean_dataset(tmp_path / "ds")), "--strict")
    assert code == 0 and "no problems found" in out


def test_inspect_unusable_paths_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "data", "inspect", "/no/such/dir")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: /no/such/dir: no such folder")
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "data", "inspect", str(tmp_path / "empty"))
    assert code == 2 and err.count("\n") == 1 and "no labelled clips found" in err


def test_inspect_preview_and_check_images(realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "sheet.png"
    code, out, _ = _run(
        capsys,
        "data",
        "inspect",
        str(realdata / "badminton-1080p-example"),
        "--preview",
        str(sheet),
        "--check-images",
        "--json",
    )
    assert code == 0 and json.loads(out)["problems"] == []
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.size[0] == 4 * 320


def test_import_flat_videos_to_tennis_layout(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "rallies"
    src.mkdir()
    for stem in ("00001", "00050"):  # 254 + 138 frames, linked rather than copied
        for ext in (".mp4", ".csv"):
            os.symlink(realdata / "badminton-train" / f"{stem}{ext}", src / f"{stem}{ext}")
    out = tmp_path / "imported"
    code, stdout, _ = _run(capsys, "data", "import", str(src), str(out))
    assert code == 0 and "imported 2 clips" in stdout
    assert sorted(p.name for p in (out / "rallies").iterdir()) == ["00001", "00050"]
    assert (out / "rallies" / "00001" / "0000.jpg").is_file()
    assert (out / "rallies" / "00001" / "Label.csv").read_text().startswith(TENNIS + "0000.jpg,1,317.44,197.64,\n")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temp build folder is gone
    before = json.loads(_run(capsys, "data", "inspect", str(src), "--json")[1])
    after = json.loads(_run(capsys, "data", "inspect", str(out), "--json")[1])
    assert after["totals"] == {**before["totals"], "games": 1}  # flat clips gained the game folder "rallies"
    assert [c["id"] for c in after["clips"]] == ["rallies/00001", "rallies/00050"]
    assert [c["dialect"] for c in after["clips"]] == ["tennis", "tennis"]
    # a second import must not touch the existing output
    code, _, err = _run(capsys, "data", "import", str(src), str(out))
    assert code == 2 and "already exists and is not empty" in err and err.count("\n") == 1


def test_import_keeps_games_and_problems(realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hb"
    out.mkdir()  # an empty folder is fine
    code, _, err = _run(capsys, "data", "import", str(realdata / "handball-tracknet-layout"), str(out))
    assert code == 0 and "2 problems in the source" in err
    data = json.loads(_run(capsys, "data", "inspect", str(out), "--json")[1])
    assert data["totals"]["visibility"] == {"0": 32, "1": 163, "2": 60, "3": 21}
    assert [(p["clip"], p["row"]) for p in data["problems"]] == [("game1/Clip1", 184), ("game1/Clip1", 185)]
    src_bytes = (realdata / "handball-tracknet-layout" / "game1" / "Clip1" / "0100.jpg").read_bytes()
    assert (out / "game1" / "Clip1" / "0100.jpg").read_bytes() == src_bytes  # JPEGs copied, not re-encoded


def test_import_tracknetv2_layout(realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v2"
    assert _run(capsys, "data", "import", str(realdata / "badminton-1080p-example"), str(out))[0] == 0
    data = json.loads(_run(capsys, "data", "inspect", str(out), "--json")[1])
    (clip,) = data["clips"]
    assert clip["id"] == "badminton-1080p-example/1_10_12" and clip["resolution"] == "1920x1080"
    assert data["totals"]["visible"] == 6 and data["problems"] == []


def test_import_bad_source_and_out_inside_src(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "data", "import", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert code == 2 and "no such folder" in err
    src = _clean_dataset(tmp_path / "ds")
    code, _, err = _run(capsys, "data", "import", str(src), str(src / "converted"))
    assert code == 2 and "inside SRC" in err
    assert not (src / "converted").exists()


def test_synth_size_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "data", "synth", str(tmp_path / "s"), "--size", "512by288")
    assert code == 2 and "expected WIDTHxHEIGHT" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_synth_output_passes_strict_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tracknet_cli.data.synth", reason="data.synth is written by another change")
    out = tmp_path / "synth"
    code, _, err = _run(
        capsys,
        "data",
        "synth",
        str(out),
        "--games",
        "1",
        "--clips",
        "2",
        "--frames",
        "12",
        "--size",
        "128x72",
        "--seed",
        "1",
    )
    assert code == 0, err
    code, stdout, _ = _run(capsys, "data", "inspect", str(out), "--strict", "--json")
    data = json.loads(stdout)
    assert code == 0 and len(data["clips"]) == 2 and data["totals"]["frames"] == 24
    assert data["clips"][0]["resolution"] == "128x72"


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("inspect", "import", "synth"):
        code, out, _ = _run(capsys, "data", command, "--help")
        assert code == 0 and "Example: tracknet data " + command in out


def test_real_subprocess(realdata: Path) -> None:
    done = tracknet("data", "inspect", str(realdata / "handball-tracknet-layout"), "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["visible"] == 244
    missing = tracknet("data", "inspect", "/no/such/dir", timeout=120)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0 and "no such folder" in missing.stderr


def test_cache_builds_then_reuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tracknet_cli.data.synth import synthesize

    root = tmp_path / "synth"
    synthesize(root, games=1, clips=2, frames=10, size=(128, 72), seed=1)
    args = ["data", "cache", "--set", f"data.root={root}", "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    code, out, _ = _run(capsys, *args, "--set", "data.cache_format=npy")
    assert code == 0
    first = json.loads(out)
    assert (first["built"], first["reused"]) == (2, 0)
    pixels = 2 * 10 * 144 * 256 * 3  # 2 clips x 10 frames on the quickstart canvas 256x144, uint8 RGB
    assert pixels <= first["bytes"] <= pixels + 2 * 4096  # plus one .npy header per clip
    code, out, _ = _run(capsys, *args, "--set", "data.cache_format=npy")
    assert json.loads(out)["reused"] == 2
    # data.cache_format=jpeg: training clips are rebuilt as JPEG, far smaller; the exact validation clip is reused.
    code, out, _ = _run(capsys, *args, "--set", "data.cache_format=jpeg", "--set", "data.split.val=[game1/Clip1]")
    jpeg = json.loads(out)
    assert code == 0 and (jpeg["built"], jpeg["reused"]) == (1, 1) and jpeg["bytes"] < pixels / 2 + pixels / 8
    code, _, err = _run(capsys, "data", "cache", "--set", f"data.root={tmp_path / 'nope'}")
    assert code == 2 and err.startswith("error: ")
