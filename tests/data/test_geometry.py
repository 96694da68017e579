"""The codec: mappings, padding, Gaussian targets and their decoding (numpy and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracknet_cli.data.geometry import Affine, Codec
from tracknet_cli.errors import InputError

SIZES = [
    ((1920, 1080), (512, 288), (128, 72)),  # 16:9, no padding
    ((640, 480), (512, 288), (128, 72)),  # 4:3, padded right
    ((300, 500), (512, 288), (128, 72)),  # portrait, mostly padding
    ((1280, 720), (500, 300), (125, 75)),  # padded bottom, non-integer ratios
    ((1280, 720), (512, 288), (512, 288)),  # heatmap at full input size
]


def _random_points(codec: Codec, n: int, margin: float, rng: np.random.Generator) -> np.ndarray:
    w, h = codec.source_size
    return np.stack([rng.uniform(margin * w, (1 - margin) * w, n), rng.uniform(margin * h, (1 - margin) * h, n)], -1)


def _cells(codec: Codec, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between source points measured in heatmap cells (per axis, the larger)."""
    return np.abs(codec.source_to_heatmap(a) - codec.source_to_heatmap(b)).max(axis=-1)


def test_resized_size_keeps_aspect_and_pads_right_or_bottom() -> None:
    assert Codec((1920, 1080), (512, 288), (128, 72)).resized_size == (512, 288)
    assert Codec((640, 480), (512, 288), (128, 72)).resized_size == (384, 288)
    assert Codec((300, 500), (512, 288), (128, 72)).resized_size == (173, 288)  # 300 * 288/500 = 172.8
    assert Codec((1280, 720), (500, 300), (125, 75)).resized_size == (500, 281)  # 720 * 500/1280 = 281.25


def test_point_mappings_by_hand() -> None:
    codec = Codec((640, 480), (512, 288), (128, 72))  # 0.6 input px per source px, 1/4 cell per input px
    xy = np.array([[0.0, 0.0], [640.0, 480.0], [100.0, 50.0]])
    np.testing.assert_allclose(codec.source_to_input(xy), [[0, 0], [384, 288], [60, 30]])
    np.testing.assert_allclose(codec.source_to_heatmap(xy), [[0, 0], [96, 72], [15, 7.5]])
    np.testing.assert_allclose(codec.input_to_source(codec.source_to_input(xy)), xy)
    np.testing.assert_allclose(codec.heatmap_to_source(codec.source_to_heatmap(xy)), xy)


def test_nan_passes_through_every_mapping() -> None:
    codec = Codec((640, 480), (512, 288), (128, 72))
    xy = np.array([[np.nan, np.nan], [10.0, 20.0]])
    for fn in (codec.source_to_input, codec.input_to_source, codec.source_to_heatmap, codec.heatmap_to_source):
        out = fn(xy)
        assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    out = codec.source_to_heatmap(torch.tensor(xy))
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


def test_encode_peak_sits_on_the_cell_containing_the_point() -> None:
    codec = Codec((1280, 720), (512, 288), (128, 72), sigma=1.5)
    # Source (501, 301) -> heatmap (50.1, 30.1): cell column 50, row 30.
    targets = codec.encode(np.array([[501.0, 301.0]]))
    assert targets.shape == (1, 72, 128) and targets.dtype == np.float32
    assert np.unravel_index(targets[0].argmax(), (72, 128)) == (30, 50)
    # A point exactly on a cell centre gets 1.0 there; one cell away exp(-1 / (2 sigma^2)).
    centre = codec.heatmap_to_source(np.array([[50.5, 30.5]]))
    t = codec.encode(centre)[0]
    assert t[30, 50] == pytest.approx(1.0)
    assert t[30, 51] == pytest.approx(np.exp(-1 / (2 * 1.5**2)), rel=1e-5)
    assert t[32, 50] == pytest.approx(np.exp(-4 / (2 * 1.5**2)), rel=1e-5)


def test_encode_gives_zeros_for_nan_rows() -> None:
    codec = Codec((1280, 720), (512, 288), (128, 72))
    t = codec.encode(np.array([[np.nan, np.nan], [642.0, 362.0]]))  # cell centre (64.5, 36.5) - 0.3
    assert t[0].max() == 0.0 and t[1].max() == pytest.approx(np.exp(-(0.3**2) / 1.5**2), rel=1e-5)


@pytest.mark.parametrize("source,input_size,heatmap", SIZES)
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.5])
def test_round_trip_error_is_well_under_half_a_cell(source, input_size, heatmap, sigma) -> None:
    codec = Codec(source, input_size, heatmap, sigma=sigma)
    rng = np.random.default_rng(0)
    n = 200 if heatmap[0] * heatmap[1] < 20_000 else 40  # keep full-resolution targets small in memory
    # Away from the canvas edges the soft-argmax window is whole: error < 0.05 cells.
    inner_margin = (codec.radius + 1) / min(codec.source_to_heatmap(np.array(source, float)))
    inner = _random_points(codec, n, inner_margin, rng)
    xy, score = codec.decode(codec.encode(inner))
    assert _cells(codec, xy, inner).max() < 0.05
    # The peak cell is at most half a cell from the point on each axis.
    assert (score >= np.exp(-0.25 / sigma**2) - 1e-6).all() and (score <= 1.0).all()
    # Anywhere in the source, edges included: under half a cell.
    anywhere = _random_points(codec, n + 100, 0.0, rng)
    anywhere[:4] = [[0.2, 0.2], [source[0] - 0.2, source[1] - 0.2], [0.2, source[1] - 0.2], [source[0] - 0.2, 0.2]]
    xy, _ = codec.decode(codec.encode(anywhere))
    err = _cells(codec, xy, anywhere)
    assert err.max() < 0.5
    assert np.median(err) < 0.05


def test_torch_decode_matches_numpy_on_batches() -> None:
    codec = Codec((640, 480), (512, 288), (128, 72), sigma=1.5)
    rng = np.random.default_rng(1)
    pts = _random_points(codec, 2 * 3, 0.0, rng)
    probs = codec.encode(pts).reshape(2, 3, 72, 128)
    probs[1, 2] = 0.0  # an empty heatmap decodes to the first cell with score 0, no NaN
    xy_np, score_np = codec.decode(probs)
    xy_t, score_t = codec.decode(torch.from_numpy(probs))
    assert isinstance(xy_t, torch.Tensor) and xy_t.shape == (2, 3, 2) and score_t.shape == (2, 3)
    np.testing.assert_allclose(xy_t.numpy(), xy_np, atol=1e-3)
    np.testing.assert_allclose(score_t.numpy(), score_np, atol=1e-6)
    assert score_np[1, 2] == 0.0 and np.isfinite(xy_np).all()
    assert _cells(codec, xy_np.reshape(-1, 2)[:5], pts[:5]).max() < 0.5


def test_decode_picks_the_higher_of_two_peaks_and_reports_its_height() -> None:
    codec = Codec((512, 288), (512, 288), (128, 72), sigma=1.5)
    a = codec.encode(np.array([[100.0, 100.0]]))[0] * 0.4
    b = codec.encode(np.array([[400.0, 200.0]]))[0] * 0.9
    xy, score = codec.decode(np.maximum(a, b))
    np.testing.assert_allclose(xy, [400.0, 200.0], atol=0.2)
    assert score == pytest.approx(0.9 * codec.encode(np.array([[400.0, 200.0]])).max(), rel=1e-5)


def test_decode_rejects_heatmaps_of_another_size() -> None:
    with pytest.raises(InputError, match="64x36"):
        Codec((1280, 720), (512, 288), (128, 72)).decode(np.zeros((36, 64), np.float32))


def test_resize_frame_pads_with_black_and_keeps_content_where_the_mapping_says() -> None:
    codec = Codec((640, 480), (512, 288), (128, 72))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[200:240, 300:340] = (255, 0, 0)  # block centred at source (320, 220)
    canvas = codec.resize_frame(frame)
    assert canvas.shape == (288, 512, 3) and canvas.dtype == np.uint8
    assert canvas[:, 384:].max() == 0  # padding on the right
    ys, xs = np.nonzero(canvas[..., 0] > 127)
    centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]])
    np.testing.assert_allclose(centre, codec.source_to_input(np.array([[320.0, 220.0]])), atol=0.6)


def test_resize_frame_accepts_reduced_and_canvas_frames() -> None:
    codec = Codec((1280, 960), (512, 288), (128, 72))
    canvas = codec.resize_frame(np.full((960, 1280, 3), 7, np.uint8))
    assert np.array_equal(codec.resize_frame(canvas), canvas)  # already the canvas
    draft = np.full((480, 640, 3), 7, np.uint8)  # JPEG draft at 1/2
    assert np.array_equal(codec.resize_frame(draft), canvas)
    pre = np.full((288, 384, 3), 7, np.uint8)  # decoded straight to resized_size
    assert np.array_equal(codec.resize_frame(pre), canvas)
    with pytest.raises(InputError, match="aspect"):
        codec.resize_frame(np.zeros((100, 400, 3), np.uint8))


def test_bad_sizes_raise_project_errors() -> None:
    with pytest.raises(InputError):
        Codec((0, 720), (512, 288), (128, 72))


def test_affine_compose_inverse_and_flip() -> None:
    flip = Affine.hflip(512)
    np.testing.assert_allclose(flip.apply(np.array([[0.5, 3.0], [511.5, 4.0]])), [[511.5, 3.0], [0.5, 4.0]])
    zoom = Affine.zoom_crop((512, 288), (200.0, 100.0), 2.0)
    np.testing.assert_allclose(zoom.apply(np.array([[200.0, 100.0], [210.0, 100.0]])), [[256, 144], [276, 144]])
    both = zoom.then(flip)
    np.testing.assert_allclose(both.apply(np.array([[210.0, 100.0]])), [[236.0, 144.0]])
    np.testing.assert_allclose(both.inverse().apply(both.apply(np.array([[3.0, 4.0]]))), [[3.0, 4.0]])
    assert np.isnan(both.apply(np.array([[np.nan, np.nan]]))).all()
