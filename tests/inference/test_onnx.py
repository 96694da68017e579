"""ONNX export and the ONNX runtimes: the graph's contract (uint8 frames in, logits and no-ball logits out, dynamic
batch), the metadata round trip (a .onnx rebuilds the same `CheckpointMeta`), the same outputs and points as
torch in fp32, how `--runtime` is chosen, and the refusals.

Tolerances: logits within 1e-4 of torch's; decoded points within 0.05 source px and scores within 1e-4."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tracknet_cli.config.schema import TrackNetConfig
from tracknet_cli.errors import InputError, UsageError
from tracknet_cli.inference import onnx as tn_onnx
from tracknet_cli.inference.checkpoint import load_model, onnx_metadata, raw_metadata, read_metadata, save_checkpoint
from tracknet_cli.inference.engine import load_engine
from tracknet_cli.inference.onnx import ExportFailed, choose_runtime, export_checkpoint, load_onnx_model, missing
from tracknet_cli.models import build_model

XY_TOL = 0.05  # source pixels
needs_ort = pytest.mark.skipif(
    missing("onnxruntime") is not None,
    reason="onnxruntime is not installed (pip install 'tracknet-cli[onnxruntime]'; the dev extra has it)",
)
RUNTIMES = [
    "onnxruntime",
    pytest.param(
        "openvino",
        marks=pytest.mark.skipif(
            missing("openvino") is not None, reason="openvino is not installed (a dependency: pip install openvino)"
        ),
    ),
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _config(backbone: dict, *, decoder: str = "fpn", no_ball: bool = True) -> TrackNetConfig:
    return TrackNetConfig(
        data={"input_height": 40, "input_width": 72, "heatmap_height": 20, "heatmap_width": 36, "sequence_length": 3},
        model={
            "backbone": backbone,
            "decoder": decoder,
            "upsampling": {"channels": [12, 8, 8]},
            "fpn": {"lateral_dim": 8},
            "no_ball_logit": no_ball,
        },
    )


CONVNEXT = {
    "type": "convnext",
    "pretrained_model_name": "facebook/convnext-tiny-224",
    "pretrained": False,
    "config_overrides": {"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 24, 32]},
}


def _save(config: TrackNetConfig, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():  # weights unlike a fresh init, so peaks move with the content
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_checkpoint(
        path, model, config, threshold=0.4375, loss="softmax", metrics={"f1": 0.75, "tp": 3.0}, extra={"note": "tiny"}
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ConvNeXt + FPN with a no-ball head, 72x40 canvas, 3-frame windows."""
    return _save(_config(CONVNEXT), tmp_path_factory.mktemp("onnx") / "tiny.safetensors")


@pytest.fixture(scope="module")
def exported(checkpoint: Path) -> Path:
    if missing("export") is not None:
        pytest.skip("onnx is not installed (a dependency: pip install onnx)")
    return export_checkpoint(checkpoint, checkpoint.with_suffix(".onnx")).path


def _windows(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 3, 40, 72, 3), dtype=np.uint8)


def _torch_outputs(checkpoint: Path, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    model, _ = load_model(checkpoint)
    x = torch.from_numpy(windows).permute(0, 1, 4, 2, 3).float() / 255.0
    with torch.no_grad():
        return model(x, with_no_ball=True)


def test_the_graph_takes_uint8_frames_and_carries_the_checkpoint_metadata(checkpoint: Path, exported: Path) -> None:
    import onnx

    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto, full_check=True)
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, inp.type.tensor_type.elem_type, dims) == (
        "frames",
        onnx.TensorProto.UINT8,
        ["batch", 3, 40, 72, 3],
    )
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert outputs == {"logits": ["batch", 3, 20, 36], "no_ball": ["batch", 3]}
    assert proto.opset_import[0].version == tn_onnx.OPSET
    # The same tracknet.* strings, so the same CheckpointMeta, without torch weights.
    assert onnx_metadata(exported) == raw_metadata(checkpoint)
    meta, original = read_metadata(exported), read_metadata(checkpoint)
    assert meta == original
    assert (meta.threshold, meta.loss, meta.metrics, meta.extra) == (
        0.4375,
        "softmax",
        {"f1": 0.75, "tp": 3.0},
        {"note": "tiny"},
    )
    assert meta.config.data.input_width == 72 and meta.config.model.no_ball_logit
    assert meta.normalization == load_model(checkpoint)[0].normalization


@needs_ort
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtimes_compute_what_torch_computes(checkpoint: Path, exported: Path, runtime: str) -> None:
    windows = _windows(3)  # exported with batch 2: the batch is dynamic
    logits, no_ball = _torch_outputs(checkpoint, windows)
    for source in (checkpoint, exported):  # exported in memory, and the written .onnx
        model = load_onnx_model(source, read_metadata(source), runtime)
        assert (model.frames, model.runtime, model.no_ball is not None) == (3, runtime, True)
        got, got_nb = model.run_uint8(windows)
        assert got.dtype == torch.float32 and got.shape == (3, 3, 20, 36) and got_nb.shape == (3, 3)
        torch.testing.assert_close(got, logits, atol=1e-4, rtol=0)
        torch.testing.assert_close(got_nb, no_ball, atol=1e-4, rtol=0)
        # The float call contract (forward_logits, evaluate) quantises back to the same uint8.
        x = torch.from_numpy(windows).permute(0, 1, 4, 2, 3).float() / 255.0
        torch.testing.assert_close(model(x, with_no_ball=True)[0], got, atol=0, rtol=0)


def _clip(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Grey noise with a bright square moving right."""
    rng = np.random.default_rng(1)
    frames = []
    for i in range(n):
        f = rng.integers(40, 90, (size[1], size[0], 3), dtype=np.uint8)
        f[10:16, 4 + 4 * i : 10 + 4 * i] = 250
        frames.append(f)
    return frames


def _points(engine, frames: list[np.ndarray], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    xy, score = [], []
    for released in engine.run(frames, engine.codec(size)):
        xy.append(released.xy)
        score.append(released.score)
    return np.concatenate(xy), np.concatenate(score)


@needs_ort
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_engine_points_agree_with_torch(checkpoint: Path, exported: Path, runtime: str) -> None:
    """Frames smaller than the canvas (64x36 on 72x40): the engine pads the uint8 windows for the ONNX graph."""
    frames = _clip(9, (64, 36))
    ref, _ = load_engine(checkpoint, device="cpu", precision="fp32", runtime="torch", batch_size=2)
    assert ref.runtime == "torch"
    xy, score = _points(ref, frames, (64, 36))
    for source in (checkpoint, exported):
        engine, meta = load_engine(source, device="cpu", precision="fp32", runtime=runtime, batch_size=2)
        assert (engine.runtime, engine.autocast_dtype, engine.window, meta.threshold) == (runtime, None, 3, 0.4375)
        got_xy, got_score = _points(engine, frames, (64, 36))
        np.testing.assert_allclose(got_xy, xy, atol=XY_TOL, rtol=0)
        np.testing.assert_allclose(got_score, score, atol=1e-4, rtol=0)


@needs_ort
def test_vit_with_the_upsampling_decoder_exports(tmp_path: Path) -> None:
    """The staged upsampling decoder's intermediate sizes are plain numbers while tracing; no no-ball head."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    folder = tmp_path / "vit"
    torch.manual_seed(0)
    DINOv3ViTModel(
        DINOv3ViTConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_register_tokens=4
        )
    ).save_pretrained(str(folder))
    config = _config(
        {"type": "dinov3_vit", "pretrained_model_name": str(folder), "pretrained": True},
        decoder="upsampling",
        no_ball=False,
    )
    checkpoint = _save(config, tmp_path / "vit.safetensors")
    windows = _windows(2, seed=3)
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        logits = model(torch.from_numpy(windows).permute(0, 1, 4, 2, 3).float() / 255.0)
    onnx_model = load_onnx_model(checkpoint, read_metadata(checkpoint), "onnxruntime")
    got, no_ball = onnx_model.run_uint8(windows)
    assert no_ball is None and onnx_model.no_ball is None
    torch.testing.assert_close(got, logits, atol=1e-4, rtol=0)


def _choose(
    runtime: str,
    path: str = "m.safetensors",
    *,
    device: str = "auto",
    precision: str = "auto",
    device_type: str = "cpu",
    torch_precision: str = "fp32",
):
    return choose_runtime(
        runtime,
        Path(path),
        device=device,
        precision=precision,
        device_type=device_type,
        torch_precision=torch_precision,
    )


@needs_ort
def test_how_the_runtime_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    if missing("openvino") is None:
        assert _choose("auto").name == "openvino"  # a dependency: the fastest on CPUs with and without native bf16
        assert _choose("auto", torch_precision="bf16").name == "openvino"
        assert _choose("auto", "m.onnx", device_type="cuda", torch_precision="bf16").name == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed: onnxruntime, where torch runs fp32
    assert _choose("auto").name == "onnxruntime"
    assert _choose("auto", torch_precision="bf16").name == "torch"  # native bf16 torch, by the family table
    assert _choose("auto", device_type="cuda").name == "torch"
    assert _choose("auto", precision="bf16").name == "torch"  # only torch runs bf16
    assert _choose("torch").name == "torch"
    assert _choose("auto", "m.onnx", device_type="cuda", torch_precision="bf16").name == "onnxruntime"
    assert _choose("onnxruntime", "m.onnx", device="cpu").reason == "asked for"
    with pytest.raises(UsageError, match="is an ONNX model: run it with runtime onnxruntime"):
        _choose("torch", "m.onnx")
    with pytest.raises(UsageError, match="runtime onnxruntime runs on the CPU here: use device cpu, or runtime torch"):
        _choose("onnxruntime", device="cuda")
    with pytest.raises(UsageError, match="precision bf16 needs runtime torch"):
        _choose("onnxruntime", precision="bf16")
    with pytest.raises(UsageError, match="runtime 'onnx' is not one of auto, torch, onnxruntime, openvino"):
        _choose("onnx")


def test_a_runtime_that_is_not_installed_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "openvino", None)
    choice = _choose("auto")
    assert (choice.name, choice.reason) == ("torch", "auto: neither openvino nor onnxruntime is installed")
    with pytest.raises(UsageError) as err:
        _choose("onnxruntime")
    assert (
        err.value.line()
        == ("runtime onnxruntime needs onnxruntime, which is not installed: pip install 'tracknet-cli[onnxruntime]'")
        and err.value.exit_code == 2
    )
    with pytest.raises(UsageError, match=r"needs openvino, which is not installed: pip install openvino$"):
        _choose("openvino")
    with pytest.raises(
        UsageError, match=r"the ONNX model m.onnx needs openvino, which is not installed: pip install openvino$"
    ):
        _choose("auto", "m.onnx")


def test_export_without_the_onnx_package_names_the_extra(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(UsageError) as err:
        export_checkpoint(checkpoint, tmp_path / "m.onnx")
    assert err.value.line() == "tracknet export needs onnx, which is not installed: pip install onnx"
    assert not (tmp_path / "m.onnx").exists()


@needs_ort
def test_auto_falls_back_to_torch_when_the_export_fails(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> bytes:
        raise ExportFailed("torch could not export this model to ONNX (unsupported op)")

    monkeypatch.setattr(tn_onnx, "export_onnx", fail)
    engine, _ = load_engine(checkpoint, device="cpu", precision="fp32", runtime="auto")
    assert engine.runtime == "torch" and "running it in torch" in engine.runtime_note
    with pytest.raises(ExportFailed, match="unsupported op.*run it with runtime torch"):
        load_engine(checkpoint, device="cpu", precision="fp32", runtime="onnxruntime")


def test_export_refusals(checkpoint: Path, exported: Path, tmp_path: Path) -> None:
    """Each before any work, exit 2; an existing output is replaced only with overwrite, the input never."""
    with pytest.raises(UsageError, match="already exists; pass overwrite"):
        export_checkpoint(checkpoint, exported)
    stamp = exported.stat().st_mtime_ns
    with pytest.raises(UsageError, match="format 'tflite' is not one of onnx"):
        export_checkpoint(checkpoint, tmp_path / "m.onnx", fmt="tflite")
    with pytest.raises(UsageError, match="name the ONNX model NAME.onnx"):
        export_checkpoint(checkpoint, tmp_path / "m.safetensors")
    alias = tmp_path / "alias.onnx"
    os.symlink(checkpoint, alias)
    with pytest.raises(UsageError, match="is the checkpoint being exported"):
        export_checkpoint(checkpoint, alias, overwrite=True)
    with pytest.raises(UsageError, match="already an ONNX model"):
        export_checkpoint(exported, tmp_path / "again.onnx")
    assert exported.stat().st_mtime_ns == stamp and alias.resolve() == checkpoint.resolve()
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(b"old")
    assert export_checkpoint(checkpoint, copy, overwrite=True).bytes == copy.stat().st_size > 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_an_onnx_file_has_no_torch_weights_and_garbage_is_an_input_error(exported: Path, tmp_path: Path) -> None:
    from tracknet_cli.inference.checkpoint import check_init_from

    with pytest.raises(InputError, match="is an ONNX model: it holds no torch weights"):
        load_model(exported)
    with pytest.raises(InputError, match="init_from .* is an ONNX model: it holds no torch weights"):
        check_init_from(read_metadata(exported).config, exported)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not a protobuf" * 10)
    with pytest.raises(InputError) as err:
        read_metadata(garbage)
    assert "garbage.onnx" in err.value.line() and "\n" not in err.value.line()
    import onnx

    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    with pytest.raises(InputError, match="is an ONNX model but not a TrackNet checkpoint"):
        read_metadata(plain)
    assert json.loads(raw_metadata(exported.with_suffix(".safetensors"))["tracknet.extra"]) == {"note": "tiny"}
