"""The labelling server over real HTTP: `tracknet label` in a subprocess, the URL read from stdout."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT
from tests.label.server import label_server, labels_of, wait_for

pytest.importorskip("starlette", reason="the label extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the label extra (starlette, uvicorn) is not installed")


def test_api_serves_frames_validates_writes_and_saves_on_ctrl_c(video: Path) -> None:
    target = video.with_suffix(".csv")
    with label_server(str(video), "--no-model") as srv:
        assert srv.url.startswith("http://127.0.0.1:") and len(srv.token) >= 24
        status, meta = srv.json("GET", "/api/meta")
        assert status == 200 and (meta["kind"], meta["width"], meta["height"], meta["frames"]) == ("video", 128, 72, 12)
        assert meta["labels_path"] == str(target)
        assert any(k == "Shift+→" for k, _ in meta["keys"])

        status, data, kind = srv.request("GET", "/api/frames/11")
        assert status == 200 and kind == "image/jpeg"
        from PIL import Image

        assert Image.open(io.BytesIO(data)).size == (128, 72)
        status, body = srv.json("GET", "/api/frames/12")
        assert status == 404 and body["error"] == "frame 12 is outside 0..11"
        assert srv.json("GET", "/api/frames/..%2f..%2fetc%2fpasswd")[0] == 404
        assert srv.json("GET", "/static/..%2fserver.py")[0] == 404

        for token in (None, "wrong"):
            status, body = srv.json("GET", "/api/meta", token=token)
            assert status == 403 and "token" in body["error"]
        assert srv.request("GET", "/", token=None)[0] == 403
        status, page, kind = srv.request("GET", "/")
        assert status == 200 and kind.startswith("text/html") and srv.token.encode() in page
        assert srv.request("GET", "/static/app.js")[0] == 200

        for bad, needle in (
            ({"changes": [{"frame": 99, "visibility": 1, "x": 1, "y": 1}]}, "outside 0..11"),
            ({"changes": [{"frame": 1, "visibility": 1, "x": 500, "y": 1}]}, "outside the image"),
            ({"changes": [{"frame": 1, "visibility": 7}]}, "visibility must be"),
            ([1, 2], "must be an object"),
        ):
            status, body = srv.json("PUT", "/api/labels", bad)
            assert status == 422 and needle in body["error"], body
        status, body = srv.json("PUT", "/api/labels", raw=b"{not json")
        assert status == 422 and "not JSON" in body["error"]
        assert srv.json("DELETE", "/api/labels")[0] == 405
        assert srv.json("GET", "/nothing/here")[0] == 404
        assert not target.exists()  # nothing valid was sent yet

        status, body = srv.json(
            "PUT",
            "/api/labels",
            {
                "changes": [{"frame": 3, "visibility": 1, "x": 40.5, "y": 30}, {"frame": 4, "visibility": 0}],
                "position": 4,
            },
        )
        assert status == 200 and body["changed"] == [3, 4]
        assert wait_for(lambda: labels_of(target) == "Frame,Visibility,X,Y\n3,1,40.5,30\n4,0,0,0\n", timeout=5)
        status, snap = srv.json("GET", "/api/labels")
        assert snap["states"][3:5] == ["confirmed", "confirmed"] and snap["states"][5] == "empty"
        assert snap["position"] == 4 and snap["labels"][3] == {"visibility": 1, "x": 40.5, "y": 30.0}
        assert srv.json("GET", "/api/next?after=2")[1] == {"frame": 5}
        assert srv.json("GET", "/api/previous?before=5")[1] == {"frame": 2}
        assert srv.json("GET", "/api/previous?before=x")[0] == 422

        srv.request("PUT", "/api/labels", {"changes": [{"frame": 5, "visibility": 2, "x": 1, "y": 2}]})
        code, out, err = srv.stop(signal.SIGINT)  # at once: the save is still pending
    assert code == 0, err
    assert "Traceback" not in err, err
    assert labels_of(target) == "Frame,Visibility,X,Y\n3,1,40.5,30\n4,0,0,0\n5,2,1,2\n"
    assert out.splitlines()[-1] == f"{target}: 3 of 12 frames labelled (3 confirmed in this session)"


def test_reopening_resumes_and_the_server_survives_a_dropped_connection(video: Path) -> None:
    target = video.with_suffix(".csv")
    with label_server(str(video), "--no-model", "--port", "0") as srv:
        srv.request("PUT", "/api/labels", {"changes": [{"frame": 7, "visibility": 3, "x": 9, "y": 9}], "position": 7})
        host, port = srv.base.split("//")[1].split(":")
        for _ in range(3):  # a browser tab closed in the middle of a request
            with socket.create_connection((host, int(port))) as s:
                s.sendall(f"GET /api/frames/1?token={srv.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert srv.request("GET", "/api/frames/2")[0] == 200
        code, _, err = srv.stop(signal.SIGTERM)
    assert code == 0, err
    with label_server(str(video), "--no-model") as srv:
        snap = srv.json("GET", "/api/labels")[1]
        assert snap["position"] == 7 and snap["labels"][7] == {"visibility": 3, "x": 9.0, "y": 9.0}
        assert snap["confirmed_here"] == [7]
    assert labels_of(target) == "Frame,Visibility,X,Y\n7,3,9,9\n"


def test_model_proposals_arrive_in_the_background(video: Path) -> None:
    """The bundled default model proposes every frame; proposals are not labels until confirmed."""
    target = video.with_suffix(".csv")
    with label_server(str(video)) as srv:
        assert wait_for(lambda: srv.json("GET", "/api/status")[1]["model"]["status"] in ("done", "failed"), timeout=600)
        status = srv.json("GET", "/api/status")[1]
        assert status["model"]["status"] == "done" and status["model"]["done"] == 12, status
        assert status["model"]["name"].startswith("tennis")
        snap = srv.json("GET", "/api/labels")[1]
        assert all(p is not None for p in snap["proposals"])
        assert set(snap["states"]) <= {"proposed", "uncertain"}
        assert all((s == "uncertain") == bool(p[4]) for s, p in zip(snap["states"], snap["proposals"]))
        first = srv.json("GET", "/api/next?after=-1")[1]["frame"]
        if "uncertain" in snap["states"]:
            assert snap["states"][first] == "uncertain"
        code, _, err = srv.stop()
    assert code == 0, err
    assert labels_of(target) == "Frame,Visibility,X,Y\n"  # only proposals: no label rows
    side = target.with_name("rally.csv.label.json").read_text()
    assert '"complete":true' in side
    with label_server(str(video)) as srv:  # the same model again: its proposals come from the sidecar
        status = srv.json("GET", "/api/status")[1]
        assert status["model"]["status"] == "done", status
        assert srv.json("GET", "/api/labels")[1]["proposals"] == snap["proposals"]


def test_other_hosts_are_warned_about(video: Path) -> None:
    with label_server(str(video), "--no-model", "--host", "0.0.0.0") as srv:
        assert srv.json("GET", "/api/meta")[0] == 200
        code, out, err = srv.stop()
    assert code == 0 and "warning: --host 0.0.0.0: the page is reachable from other machines" in err


def test_without_the_label_extra_one_line_says_what_to_install(video: Path) -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; from tracknet_cli.cli.app import main; "
        f"sys.argv = ['tracknet', 'label', {str(video)!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr == "error: tracknet label needs the label extra: pip install 'tracknet-cli[label]'\n"


def test_unusable_inputs_fail_in_one_line(tmp_path: Path) -> None:
    from tests.cli.helpers import tracknet

    text = tmp_path / "notes.txt"
    text.write_text("x")
    for args, needle in (
        ([str(tmp_path / "missing.mp4")], "input not found"),
        ([str(text)], "neither a video"),
        ([str(tmp_path)], "holds no frame images"),
        ([str(text), "--no-model", "--checkpoint", "tennis"], "--no-model turns the model off"),
    ):
        proc = tracknet("label", *args, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
