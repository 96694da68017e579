"""The inference engine: every frame once, in order, whatever the stride, batch or clip length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracknet_cli.errors import UsageError
from tracknet_cli.inference.engine import Engine

torch.set_num_threads(1)


class PerFrame(torch.nn.Module):
    """Logits from each frame alone (a bright blob becomes the peak): window averaging cannot change them."""

    frames = 3
    no_ball = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        pooled = torch.nn.functional.avg_pool2d(x.flatten(0, 1).mean(1, keepdim=True), 4)
        return (pooled[:, 0] * 40.0).reshape(b, t, *pooled.shape[-2:])


def engine(stride: int, batch: int = 2) -> Engine:
    return Engine(
        model=PerFrame(),
        loss_name="softmax",
        input_size=(64, 32),
        heatmap_size=(16, 8),
        sigma=1.0,
        window=3,
        device=torch.device("cpu"),
        batch_size=batch,
        stride=stride,
    )


def clip(n: int, size: tuple[int, int] = (64, 32)) -> list[np.ndarray]:
    """Frames with a white 4x4 square, one heatmap cell, moving right by one cell a frame."""
    frames = []
    for i in range(n):
        f = np.zeros((size[1], size[0], 3), np.uint8)
        x = 4 + 4 * i
        f[12:16, x : x + 4] = 255
        frames.append(f)
    return frames


def points(e: Engine, frames: list[np.ndarray], source: tuple[int, int] = (64, 32)) -> tuple[list[int], np.ndarray]:
    ids, xy = [], []
    for released in e.run(frames, e.codec(source)):
        ids += released.frame_ids
        xy.append(released.xy)
    return ids, np.concatenate(xy)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12])
def test_every_frame_once_in_order_whatever_the_stride(n: int) -> None:
    frames = clip(n)
    ids1, xy1 = points(engine(1), frames)
    ids3, xy3 = points(engine(3, batch=1), frames)
    assert ids1 == ids3 == list(range(n))
    np.testing.assert_allclose(xy1, xy3, atol=1e-4)
    np.testing.assert_allclose(xy1[:, 0], 6 + 4 * np.arange(n), atol=1e-3)  # the square's centre


def test_frames_smaller_than_the_canvas_are_padded_black() -> None:
    full, small = clip(5), [f[:, :48] for f in clip(5)]  # the square stays inside the first 48 columns
    assert np.allclose(points(engine(1), full)[1], points(engine(1), small, source=(48, 32))[1], atol=1e-4)


def test_on_batch_sees_every_window_and_its_padding() -> None:
    seen = []
    list(
        engine(1, batch=4).run(
            clip(5),
            engine(1).codec((64, 32)),
            on_batch=lambda b, logits, nb: seen.append((b.frame_ids.tolist(), b.valid.tolist(), tuple(logits.shape))),
        )
    )
    windows = [w for ids, _, _ in seen for w in ids]
    assert windows == [[0, 1, 2], [1, 2, 3], [2, 3, 4]] and seen[0][2] == (3, 3, 8, 16)


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="stride 4"):
        engine(4)
    with pytest.raises(UsageError, match="batch_size 0 must be at least 1"):
        engine(1, batch=0)


def test_default_batch_keeps_a_cpu_pass_within_its_pixel_budget() -> None:
    from types import SimpleNamespace

    from tracknet_cli.inference.engine import CPU_PIXELS_PER_PASS, default_batch

    cpu = torch.device("cpu")
    assert CPU_PIXELS_PER_PASS == 73_728
    assert default_batch(cpu, (256, 144)) == 2  # the quickstart and cpu_small input
    assert default_batch(cpu, (512, 288)) == 1  # the bundled models
    assert default_batch(cpu, (1280, 720)) == 1  # never 0
    assert default_batch(cpu, (128, 128)) == 4
    assert default_batch(torch.device("cuda"), (512, 288)) == 8
    assert default_batch("cuda:1", (512, 288), accelerator=32) == 32  # validation on a GPU: the training batch
    # An engine built without a batch takes the rule for its device and canvas.
    data = SimpleNamespace(
        input_width=512,
        input_height=288,
        heatmap_width=512,
        heatmap_height=288,
        sigma=1.0,
        sequence_length=3,
        inference_stride=1,
    )
    assert Engine.for_model(PerFrame(), data, loss_name="softmax", device=cpu).batch_size == 1
    assert Engine.for_model(PerFrame(), data, loss_name="softmax", device=cpu, batch_size=5).batch_size == 5
    with pytest.raises(
        UsageError, match="batch_size 0 must be at least 1"
    ):  # 0 is refused, not taken for "the default"
        Engine.for_model(PerFrame(), data, loss_name="softmax", device=cpu, batch_size=0)


def test_the_engine_places_windows_as_the_model_was_configured() -> None:
    """``data.inference_stride`` travels in the checkpoint's config: a model trained for non-overlapping
    windows is validated, evaluated and run that way unless a caller asks otherwise."""
    from types import SimpleNamespace

    cpu = torch.device("cpu")
    data = SimpleNamespace(
        input_width=64,
        input_height=48,
        heatmap_width=32,
        heatmap_height=24,
        sigma=1.0,
        sequence_length=3,
        inference_stride=3,
    )
    assert Engine.for_model(PerFrame(), data, loss_name="softmax", device=cpu).stride == 3
    assert Engine.for_model(PerFrame(), data, loss_name="softmax", device=cpu, stride=1).stride == 1
