"""Bad input, second round (issue 32, cases 7-10 and 12-14): each runs the real command in a subprocess on
real files, the label server over real HTTP (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import ROOT, tracknet
from tests.label.conftest import synth_clip, synth_video, video  # noqa: F401 - the label tests' fixtures
from tests.label.server import label_server
from tests.reliability.conftest import one_error_line
from tracknet_cli.pretrained import PACKAGE_DIR

BUNDLED = PACKAGE_DIR / "unet-fast-tennis.safetensors"
ESC = "\x1b]0;pwned\x07\x1b[2J"  # retitles the terminal, then clears it


def _rewrite_metadata(src: Path, dst: Path, change) -> Path:
    """`src` with `change(metadata)` applied to its metadata strings; the tensors as they were."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    change(metadata)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


# ---------------------------------------------------------------- case 7: a checkpoint asking for gigabytes
def test_checkpoint_whose_metadata_asks_for_a_huge_model_is_refused_before_allocating(
    rel_data: Path, tmp_path: Path
) -> None:
    def widen(metadata: dict[str, str]) -> None:
        config, backbone = json.loads(metadata["tracknet.config"]), json.loads(metadata["tracknet.backbone_config"])
        config["model"]["unet"]["widths"] = backbone["widths"] = [8192] * 4
        metadata["tracknet.config"], metadata["tracknet.backbone_config"] = json.dumps(config), json.dumps(backbone)

    crafted = _rewrite_metadata(BUNDLED, tmp_path / "crafted.safetensors", widen)
    assert crafted.stat().st_size < 3_000_000

    def four_gib() -> None:  # building that model takes 9.7 GB: it must fail here, not on the machine
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracknet_cli",
            "predict",
            str(rel_data / "game1" / "Clip1"),
            "-c",
            str(crafted),
            "--csv",
            str(tmp_path / "o.csv"),
            "--no-video",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        preexec_fn=four_gib,
    )
    one_error_line(
        proc, 2, str(crafted), "do not match the architecture in its own metadata", "GB", "backbone.stages.0.0.0.weight"
    )
    assert not (tmp_path / "o.csv").exists()


# ---------------------------------------------------------------- case 8: terminal escapes in names
def test_control_characters_in_names_are_printed_escaped(rel_data: Path, tmp_path: Path) -> None:
    gt = tmp_path / f"g{ESC}"
    shutil.copytree(rel_data / "game1" / "Clip1", gt / "game1" / f"C{ESC}")
    shutil.copytree(rel_data / "game1" / "Clip2", gt / "game1" / "Clip2")
    preds = tmp_path / "preds"
    shutil.copytree(gt / "game1" / "Clip2", preds / "game1" / "Clip2")  # none for the escape clip: a warning names it
    runs = {
        "inspect": tracknet("data", "inspect", str(gt)),
        "eval": tracknet("eval", "--pred-csv", str(preds), "--gt", str(gt)),
        "error": tracknet("predict", str(tmp_path / f"v{ESC}.mp4"), "-c", str(BUNDLED), "--no-video"),
    }
    for name, proc in runs.items():
        assert "\x1b" not in proc.stdout + proc.stderr, (name, proc.stdout, proc.stderr)
    assert runs["inspect"].returncode == 0 and "C\\x1b]0;pwned" in runs["inspect"].stdout
    assert runs["eval"].returncode == 0 and "C\\x1b]0;pwned" in runs["eval"].stderr  # the warning
    one_error_line(runs["error"], 2, "v\\x1b]0;pwned\\x07\\x1b[2J.mp4")


# ---------------------------------------------------------------- cases 9, 10: the label server's 413 and 4xx
def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _raw_put(base: str, path: str, headers: dict[str, str], body_chunks) -> tuple[int, bytes]:
    """A PUT over a plain socket (the body may be streamed or chunked); (status, response body) — the
    server may answer and close before the whole body is sent."""
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall((head + "\r\n").encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early: what we want
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + 10:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


def test_label_server_refuses_a_large_body_before_reading_it(video: Path) -> None:
    with label_server(str(video), "--no-model") as srv:
        path = f"/api/labels?token={srv.token}"
        before = _rss_mb(srv.proc.pid)
        mb = b"[" + b" " * ((1 << 20) - 1)
        status, body = _raw_put(
            srv.base,
            path,
            {"Content-Type": "application/json", "Content-Length": str(200 << 20)},
            (mb for _ in range(200)),
        )
        assert status == 413 and b"over 8 MB" in body, (status, body[:200])
        # no Content-Length: a chunked body is counted as it comes
        chunked = (f"{len(mb):x}\r\n".encode() + mb + b"\r\n" for _ in range(40))
        status, body = _raw_put(
            srv.base, path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, chunked
        )
        assert status == 413, (status, body[:200])
        assert _rss_mb(srv.proc.pid) - before < 60, (before, _rss_mb(srv.proc.pid))  # it read 200 MB before


def test_label_server_answers_4xx_for_huge_numbers_and_deep_json(video: Path) -> None:
    with label_server(str(video), "--no-model") as srv:
        huge = json.dumps({"changes": [{"frame": 1, "visibility": 1, "x": 10**400, "y": 5}]}).encode()
        deep = b'{"changes": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        for name, raw in (("400 digits", huge), ("200,000 deep", deep)):
            status, data, kind = srv.request("PUT", "/api/labels", raw=raw)
            assert 400 <= status < 500 and kind.startswith("application/json"), (name, status, data[:200])
            assert "error" in json.loads(data), (name, data[:200])
        status, data = srv.json("GET", "/api/labels")
        assert status == 200 and data["labels"][1] is None  # nothing applied
        ok = json.dumps({"changes": [{"frame": 1, "visibility": 1, "x": 128, "y": 5}]}).encode()
        assert srv.request("PUT", "/api/labels", raw=ok)[0] == 200


# ---------------------------------------------------------------- case 12: a 16-bit PNG
def test_sixteen_bit_png_frames_are_scaled_not_white(rel_data: Path, tmp_path: Path) -> None:
    from PIL import Image

    clip = tmp_path / "src" / "game1" / "Clip1"
    clip.mkdir(parents=True)
    shutil.copy(rel_data / "game1" / "Clip1" / "Label.csv", clip / "Label.csv")
    for jpg in sorted((rel_data / "game1" / "Clip1").glob("*.jpg")):
        grey = np.asarray(Image.open(jpg).convert("L")).astype(np.uint16) * 256  # the same picture in 16 bits
        Image.fromarray(grey).save(clip / f"{jpg.stem}.png")
        assert Image.open(clip / f"{jpg.stem}.png").mode == "I;16"
    proc = tracknet("data", "import", str(tmp_path / "src"), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    frame = np.asarray(Image.open(next((tmp_path / "out").rglob("0000.jpg"))))
    original = np.asarray(Image.open(rel_data / "game1" / "Clip1" / "0000.jpg").convert("RGB"))
    assert frame.mean() < 200 and abs(frame.mean() - original.mean()) < 10, (frame.mean(), original.mean())


# ---------------------------------------------------------------- case 13: eval --checkpoint with --gt
def test_eval_checkpoint_with_gt_scores_that_dataset(rel_checkpoint: Path, tmp_path: Path) -> None:
    from tests.reliability.conftest import synth

    other = synth(tmp_path / "other", clips=1, frames=12)
    proc = tracknet("eval", "-c", str(rel_checkpoint), "--gt", str(other), "--split", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["data_root"] == str(other) and len(payload["clips"]) == 1, payload
    assert f"of {other}" in proc.stderr  # the scoring line names it
    one_error_line(
        tracknet("eval", "-c", str(rel_checkpoint), "--gt", str(other), "--data-root", str(tmp_path)),
        2,
        "--gt",
        "--data-root",
    )
    one_error_line(
        tracknet("eval", "-c", str(rel_checkpoint), "--gt", str(tmp_path / "missing")), 2, str(tmp_path / "missing")
    )


# ---------------------------------------------------------------- case 14: exit 2 (or a warning), never "unexpected"
def test_garbled_label_sidecar_is_ignored_with_a_warning(video: Path) -> None:
    labels = video.with_suffix(".csv")
    with label_server(str(video), "--no-model") as srv:
        assert srv.json("PUT", "/api/labels", {"changes": [{"frame": 2, "visibility": 1, "x": 10, "y": 5}]})[0] == 200
        code, _, err = srv.stop()
        assert code == 0, err
    sidecar = labels.with_name(labels.name + ".label.json")
    side = json.loads(sidecar.read_text())
    side["position"] = "abc"  # the sha still matches the label file
    sidecar.write_text(json.dumps(side))
    with label_server(str(video), "--no-model") as srv:
        status, data = srv.json("GET", "/api/labels")
        assert status == 200 and data["labels"][2]["x"] == 10  # the labels are kept
        code, _, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err
    assert any(
        line.startswith("warning: ") and str(sidecar) in line and "ignored" in line for line in err.splitlines()
    ), err


def test_checkpoint_with_list_metrics_is_one_line(rel_data: Path, tmp_path: Path) -> None:
    bad = _rewrite_metadata(BUNDLED, tmp_path / "m.safetensors", lambda m: m.update({"tracknet.metrics": "[1, 2]"}))
    proc = tracknet(
        "predict", str(rel_data / "game1" / "Clip1"), "-c", str(bad), "--csv", str(tmp_path / "o.csv"), "--no-video"
    )
    one_error_line(proc, 2, str(bad), "tracknet.metrics is a JSON list")


def _header_file(path: Path, header: bytes) -> Path:
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


def test_models_folder_with_a_bad_file_lists_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(BUNDLED, folder / "good.safetensors")
    _header_file(folder / "deep.safetensors", b"[" * 100_000 + b"]" * 100_000)
    _header_file(folder / "list.safetensors", b"[1, 2, 3]")
    entry = {"sport": "tennis", "description": "x", "data": []}
    catalogue = {
        "format": 1,
        "models": {name: {**entry, "file": f"{name}.safetensors"} for name in ("good", "deep", "list")},
    }
    (folder / "catalogue.yaml").write_text(json.dumps(catalogue))
    proc = tracknet("models", "--json", env={"TRACKNET_MODELS_DIR": str(folder)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    names = [m["name"] for m in json.loads(proc.stdout)["models"]]
    assert "good" in names and "deep" not in names and "list" not in names, names
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "deep.safetensors" in warnings[0] + warnings[1], proc.stderr


def _read_only_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_read_only_output_folder_is_one_line_naming_it(rel_data: Path, tmp_path: Path) -> None:
    """A read-only bind mount in a private mount namespace (root ignores chmod; `unshare -rm` needs no root)."""
    if not _read_only_mount_works():
        pytest.skip("cannot make a read-only bind mount here (unshare -rm refused)")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 99; shift; exec "$@"'
    tiny = ["--profile", "quickstart", "--set", f"data.root={rel_data}", "--set", "training.max_steps=1"]
    for args in (
        ["data", "synth", str(ro / "ds"), "--games", "1", "--clips", "1", "--frames", "5", "--size", "64x36"],
        ["data", "import", str(rel_data), str(ro / "ds")],
        ["train", *tiny, "--out", str(ro / "ds")],
    ):
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", str(ro), sys.executable, "-m", "tracknet_cli", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
        )
        line = one_error_line(proc, 2, f"cannot write {ro / 'ds'}: {ro} is on a read-only file system")
        assert ".ds." not in line and ".tmp" not in line, line
    assert list(ro.iterdir()) == []


# ---------------------------------------------------------------- the smaller ones (issue 32's last paragraph)
def test_label_host_errors_blame_the_host_and_host_0_prints_a_url_that_opens(video: Path) -> None:
    proc = tracknet("label", str(video), "--no-model", "--host", "10.255.255.1", "--port", "0")
    line = one_error_line(proc, 2, "--host 10.255.255.1", "not an address of this machine")
    assert "--port" not in line and "reachable" not in proc.stderr
    one_error_line(
        tracknet("label", str(video), "--no-model", "--host", "no.such.host.invalid"), 2, "--host no.such.host.invalid"
    )
    with label_server(str(video), "--no-model", "--host", "0", "--port", "0") as srv:
        assert srv.url.startswith("http://127.0.0.1:"), srv.url
        assert srv.json("GET", "/api/meta")[0] == 200


def test_checkpoint_threshold_out_of_range_blames_the_file(rel_data: Path, tmp_path: Path) -> None:
    bad = _rewrite_metadata(BUNDLED, tmp_path / "t.safetensors", lambda m: m.update({"tracknet.threshold": "1.5"}))
    proc = tracknet(
        "predict", str(rel_data / "game1" / "Clip1"), "-c", str(bad), "--csv", str(tmp_path / "o.csv"), "--no-video"
    )
    line = one_error_line(proc, 2, str(bad), "threshold in its metadata, 1.5")
    assert "(--threshold)" not in line


def test_init_from_a_model_name_is_named_as_given(rel_data: Path) -> None:
    proc = tracknet("train", "--profile", "quickstart", "--set", f"data.root={rel_data}", "--init-from", "tennis")
    line = one_error_line(proc, 2, "--init-from tennis was trained with other model settings")
    assert ".safetensors" not in line


def test_negative_normalised_coordinates_are_outside_the_frame(rel_data: Path, tmp_path: Path) -> None:
    from tests.reliability.conftest import write_mp4

    write_mp4(tmp_path / "ds" / "rally.mp4", rel_data / "game1" / "Clip1")
    (tmp_path / "ds" / "rally.csv").write_text("frame,ball,x,y\n0,1,-0.2,0.5\n1,1,-1,-1\n2,0,-1,-1\n")
    proc = tracknet("data", "inspect", str(tmp_path / "ds"), "--json")
    assert proc.returncode == 0, proc.stderr
    problems = {p["frame"]: p["message"] for p in json.loads(proc.stdout)["problems"] if p["frame"] in (0, 1)}
    assert "outside" in problems[0] and "no coordinates" in problems[1], problems


def test_training_out_of_file_space_names_the_file(rel_data: Path, tmp_path: Path) -> None:
    import signal

    from tests.reliability.conftest import TINY, one_error_line_after_info

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tracknet_cli", "train", *TINY, "--set", f"data.root={rel_data}", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        preexec_fn=limit,
    )
    one_error_line_after_info(proc, 1, "File too large while writing", f"{out}/weights/", ".safetensors")
