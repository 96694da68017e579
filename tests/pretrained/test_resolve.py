"""The one checkpoint resolver: files, run folders, model names (with suggestions), hub repo ids;
and the catalogues it reads (a $TRACKNET_MODELS_DIR folder before the bundled models)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import ROOT
from tests.pretrained.conftest import CATALOGUE, HUB_REV, HUB_REV_V1
from tracknet_cli.cli.options import flag
from tracknet_cli.errors import ConfigError, InputError
from tracknet_cli.pretrained import MODELS_DIR_ENV
from tracknet_cli.pretrained.catalogue import load_catalogue, weights_info
from tracknet_cli.pretrained.resolve import HubRef, default_checkpoint, default_notice, parse_hub_id, resolve_checkpoint


def _env(models_dir: Path) -> dict[str, str]:
    return {MODELS_DIR_ENV: str(models_dir)}


def test_a_file_and_run_folders_resolve_as_before(tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert resolve_checkpoint(tiny_checkpoint, environ={}).kind == "file"
    for n in (1, 3):
        (tmp_path / "runs" / f"exp{n}" / "weights").mkdir(parents=True)
        shutil.copy(tiny_checkpoint, tmp_path / "runs" / f"exp{n}" / "weights" / "best.safetensors")
    run = resolve_checkpoint(tmp_path / "runs" / "exp1", environ={})
    assert (run.kind, run.path) == ("run", tmp_path / "runs" / "exp1" / "weights" / "best.safetensors")
    newest = resolve_checkpoint(str(tmp_path / "runs"), environ={})
    assert newest.path == tmp_path / "runs" / "exp3" / "weights" / "best.safetensors"
    with pytest.raises(InputError, match="no weights/best.safetensors"):
        resolve_checkpoint(tmp_path, environ={})


def test_names_resolve_through_the_models_folder_two_names_one_file(models_dir: Path) -> None:
    court = resolve_checkpoint("tiny-court", environ=_env(models_dir))
    shuttle = resolve_checkpoint("Tiny-Shuttle", environ=_env(models_dir))  # names are matched in lower case
    assert court.kind == shuttle.kind == "catalogue"
    assert court.path == shuttle.path == models_dir / "tiny-quickstart.safetensors"
    assert (court.entry.spec.sport, shuttle.entry.spec.sport) == ("tennis", "badminton")
    assert court.entry.origin == str(models_dir)
    assert "tiny-court (from " in court.label


def test_unknown_names_get_suggestions(models_dir: Path) -> None:
    with pytest.raises(InputError) as info:
        resolve_checkpoint("tiny-cort", environ=_env(models_dir))
    assert (
        info.value.line() == "checkpoint tiny-cort: no such file, run folder or model name; "
        "did you mean tiny-court? (tracknet models lists them)"
    )
    with pytest.raises(InputError, match=r"known models: tiny-court, tiny-shuttle"):
        resolve_checkpoint("volleyball", parameter="init_from", environ=_env(models_dir))
    with pytest.raises(
        InputError, match=r"^checkpoint best.safetensors: checkpoint not found \(no such file or run folder\)$"
    ):
        resolve_checkpoint("best.safetensors", environ=_env(models_dir))  # a file name, not a model name


def test_a_folder_named_like_a_model_that_is_no_run_is_the_model(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiny-court").mkdir()  # e.g. a folder of clips
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("tiny-court", environ=_env(models_dir)).kind == "catalogue"


def test_a_mistyped_local_path_is_not_sent_to_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        resolve_checkpoint("runs/exp9/best.safetensors", environ={})
    assert info.value.line() == (
        "checkpoint runs/exp9/best.safetensors: checkpoint not found (no such file or run "
        "folder; for the Hugging Face repo runs/exp9, write hf:runs/exp9/best.safetensors)"
    )


def test_the_default_comes_from_the_first_catalogue_that_sets_one(models_dir: Path, tmp_path: Path) -> None:
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    shutil.copy(models_dir / "tiny-quickstart.safetensors", bundled / "b.safetensors")
    (bundled / "catalogue.yaml").write_text(
        yaml.safe_dump(
            {
                "default": "tiny-court",
                "models": {
                    "tiny-court": {"file": "b.safetensors", "sport": "squash"},
                    "other": {"file": "b.safetensors", "sport": "padel"},
                },
            }
        )
    )
    both = load_catalogue(_env(models_dir), bundled_dir=bundled)
    assert list(both.entries) == ["tiny-court", "tiny-shuttle", "other"]
    assert both.entries["tiny-court"].spec.sport == "tennis"  # the folder comes first
    assert both.default == "tiny-court"
    resolved = default_checkpoint(catalogue=both)
    assert resolved.entry.origin == str(models_dir)
    notice = default_notice(resolved)
    assert "default model tiny-court" in notice and "held-out F1 0.25 (tracknet protocol, game9)" in notice
    assert "Pick another with checkpoint NAME|FILE|RUN" in notice  # the Python names; the CLI's flags:
    assert "Pick another with --checkpoint NAME|FILE|RUN" in default_notice(resolved, flag)
    only_bundled = load_catalogue({}, bundled_dir=bundled)
    assert only_bundled.default == "tiny-court" and only_bundled.entries["tiny-court"].spec.sport == "squash"


def test_no_default_model_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "catalogue.yaml").write_text("format: 1\ndefault: null\nmodels: {}\n")
    with pytest.raises(
        InputError,
        match=r"no checkpoint given and no default model \(this install bundles none\): pass checkpoint NAME",
    ):
        default_checkpoint(catalogue=load_catalogue({}, bundled_dir=tmp_path))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models: {a: {file: a.safetensors}}", "models.a.sport: Field required"),
        ("models: {a: {file: sub/a.safetensors, sport: x}}", "no path"),
        ("default: b\nmodels: {a: {file: a.safetensors, sport: x}}", "default 'b' is not one of its models (a)"),
        ("models: {Big: {file: a.safetensors, sport: x}}", "lower-case"),
        ("format: 2", "upgrade tracknet-cli"),
        ("models: {a: {file: a.safetensors, sport: x, colour: red}}", "models.a.colour"),
        ("models: [", "unreadable catalogue"),
    ],
)
def test_a_broken_catalogue_names_its_file(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "catalogue.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_catalogue(_env(tmp_path))
    assert str(tmp_path / "catalogue.yaml") in info.value.line() and fragment in info.value.line()


def test_models_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRACKNET_MODELS_DIR names .* which is not a folder"):
        load_catalogue(_env(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="no catalogue.yaml there"):
        load_catalogue(_env(tmp_path))
    (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE))  # names a file that is not there
    with pytest.raises(
        InputError, match="model tiny-court: its catalogue names .*tiny-quickstart.safetensors, which is missing"
    ):
        resolve_checkpoint("tiny-court", environ=_env(tmp_path))
    from tests.cli.helpers import invoke

    listing = invoke("models", env=_env(tmp_path))
    assert listing.exit_code == 2 and "which is missing (fix " in listing.stderr


def test_weights_info_reads_the_header_only(tiny_checkpoint: Path) -> None:
    from tracknet_cli.inference.checkpoint import load_model

    info = weights_info(tiny_checkpoint)
    model, meta = load_model(tiny_checkpoint)
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert (info.input_width, info.input_height, info.frames) == (128, 72, meta.config.data.sequence_length)
    assert info.threshold == meta.threshold == 0.375
    assert info.backbone == "convnext"


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("org/name", HubRef("org/name")),
        ("org/name@v1", HubRef("org/name", revision="v1")),
        ("org/name/sub/model.safetensors", HubRef("org/name", "sub/model.safetensors")),
        ("org/name/model.safetensors@" + "a" * 40, HubRef("org/name", "model.safetensors", "a" * 40)),
        ("hf://org/name/weights.bin", HubRef("org/name", "weights.bin")),
        ("hf:org/name", HubRef("org/name")),
        ("runs/quickstart/exp1", None),  # a path, not a file in a repo
        ("runs/best.safetensors", None),  # a file in a folder
        ("./org/name", None),
        ("/abs/path", None),
        ("tennis", None),
    ],
)
def test_hub_ids(text: str, ref: HubRef | None) -> None:
    assert parse_hub_id(text) == ref


# huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE when imported: a fresh interpreter sees the test cache.
_HUB_SCRIPT = """
import json, sys
from tracknet_cli.errors import TrackNetError
from tracknet_cli.pretrained.resolve import resolve_checkpoint
out = {}
for spec in sys.argv[1:]:
    try:
        r = resolve_checkpoint(spec, environ={})
        out[spec] = {"kind": r.kind, "path": str(r.path), "label": r.label}
    except TrackNetError as exc:
        out[spec] = {"error": exc.line(), "code": exc.exit_code}
print(json.dumps(out))
"""


def _hub_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(cache.parent / "hf-home")}


def test_hub_repo_ids_resolve_from_the_cache_offline(hf_cache: Path) -> None:
    specs = [
        "tracknet-test/tiny",
        "tracknet-test/tiny@v1",
        "tracknet-test/tiny/model.safetensors",
        "hf:tracknet-test/multi/sub/b.safetensors",
        "tracknet-test/renamed",
        "tracknet-test/multi",
        "tracknet-test/absent",
        "tracknet-test/tiny/other.safetensors",
        "tracknet-test/tiny@v2",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _HUB_SCRIPT, *specs],
        cwd=ROOT,
        env=_hub_env(hf_cache),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    snap = hf_cache / "models--tracknet-test--tiny" / "snapshots"
    assert got["tracknet-test/tiny"]["path"] == str(snap / HUB_REV / "model.safetensors")
    assert got["tracknet-test/tiny"]["kind"] == "hub"
    assert (
        got["tracknet-test/tiny"]["label"]
        == "tracknet-test/tiny/model.safetensors (Hugging Face hub, model.safetensors)"
    )
    assert got["tracknet-test/tiny@v1"]["path"] == str(snap / HUB_REV_V1 / "model.safetensors")
    assert got["tracknet-test/tiny/model.safetensors"]["path"] == str(snap / HUB_REV / "model.safetensors")
    assert got["hf:tracknet-test/multi/sub/b.safetensors"]["path"].endswith(f"{HUB_REV}/sub/b.safetensors")
    assert got["tracknet-test/renamed"]["path"].endswith("tracknet.safetensors")  # its only .safetensors
    assert got["tracknet-test/multi"] == {
        "code": 2,
        "error": (
            "checkpoint tracknet-test/multi: no such file or run folder, and as a Hugging Face repo id: the repo "
            "tracknet-test/multi holds several .safetensors files (a.safetensors, sub/b.safetensors): name one, "
            "e.g. tracknet-test/multi/a.safetensors"
        ),
    }
    for spec, missing in (
        ("tracknet-test/absent", "tracknet-test/absent/model.safetensors"),
        ("tracknet-test/tiny/other.safetensors", "tracknet-test/tiny/other.safetensors"),
        ("tracknet-test/tiny@v2", "tracknet-test/tiny/model.safetensors@v2"),
    ):
        assert got[spec]["code"] == 2, got[spec]
        assert (
            f"{missing} is not in the Hugging Face cache ({hf_cache}) and HF_HUB_OFFLINE is set" in got[spec]["error"]
        )
