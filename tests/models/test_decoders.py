"""Decoder geometry: the heatmap covers exactly the unpadded canvas, at the configured size, from any grid."""

from __future__ import annotations

import pytest
import torch

from tracknet_cli.models.decoders import Canvas, resize_to_canvas
from tracknet_cli.models.decoders.fpn import FPNDecoder
from tracknet_cli.models.decoders.upsampling import UpsamplingDecoder


def _x_coordinate_map(width_cells: int, stride: int, height_cells: int = 3) -> torch.Tensor:
    """A (1,1,h,w) map whose value is the input-pixel x of each cell centre: stride·k + stride/2."""
    xs = torch.arange(width_cells, dtype=torch.float32) * stride + stride / 2
    return xs.expand(1, 1, height_cells, width_cells).clone()


def test_resize_to_canvas_samples_the_unpadded_part_exactly() -> None:
    """Input 250 wide padded to 256 (16 patches of 16); heatmap 125 wide: cell j covers input [2j, 2j+2),
    centre 2j+1. Bilinear is exact on a linear ramp away from the clamped borders (x < 8 or x > 248)."""
    fmap = _x_coordinate_map(16, 16)
    out = resize_to_canvas(fmap, Canvas(size=(3, 125), valid=(1.0, 250 / 256)))
    assert out.shape == (1, 1, 3, 125)
    centres = torch.arange(125, dtype=torch.float32) * 2 + 1
    interior = (centres >= 8) & (centres <= 248)
    torch.testing.assert_close(out[0, 0, 1, interior], centres[interior])
    assert out[0, 0, 1, 0] == 8  # clamped at the first cell centre
    # padding that is not cropped would put cell 124 at 256·(124.5/125) = 255 instead of 249
    assert out[0, 0, 1, -1].item() == pytest.approx(248, abs=1e-4)  # 249 clamps to the last real-ish centre 248


def test_resize_to_canvas_without_padding_is_plain_interpolation() -> None:
    fmap = torch.randn(2, 4, 18, 32)
    out = resize_to_canvas(fmap, Canvas(size=(72, 128)))
    torch.testing.assert_close(out, torch.nn.functional.interpolate(fmap, size=(72, 128), mode="bilinear"))
    same = resize_to_canvas(fmap, Canvas(size=(18, 32)))
    assert same is fmap


def test_padded_and_unpadded_paths_agree() -> None:
    """The grid_sample path with valid=1 would equal interpolate: check through a canvas of 0.999999 ≈ 1."""
    fmap = torch.randn(1, 2, 9, 16)
    a = resize_to_canvas(fmap, Canvas(size=(36, 64), valid=(1.0 - 1e-7, 1.0)))
    b = resize_to_canvas(fmap, Canvas(size=(36, 64)))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "grid,heatmap", [((18, 32), (72, 128)), ((45, 80), (72, 128)), ((3, 5), (50, 90)), ((20, 20), (10, 10))]
)
def test_upsampling_decoder_reaches_the_heatmap_from_any_grid(grid: tuple[int, int], heatmap: tuple[int, int]) -> None:
    decoder = UpsamplingDecoder([12, 12], [16, 8, 4])
    out = decoder([torch.randn(1, 12, *grid), torch.randn(1, 12, *grid)], Canvas(size=heatmap))
    assert out.shape == (1, 4, *heatmap)


def test_upsampling_decoder_stages_double_a_vit_grid() -> None:
    """18×32 (512×288 / 16) to 72×128 in three blocks: 18×32 → 36×64 → 72×128."""
    decoder = UpsamplingDecoder([8], [8, 8, 8])
    sizes = []
    hooks = [b.register_forward_hook(lambda _m, _i, o: sizes.append(tuple(o.shape[-2:]))) for b in decoder.blocks]
    decoder([torch.randn(1, 8, 18, 32)], Canvas(size=(72, 128)))
    for h in hooks:
        h.remove()
    assert sizes == [(18, 32), (36, 64), (72, 128)]


@pytest.mark.parametrize("fuse", ["sum", "concat"])
def test_fpn_fuses_every_level_at_the_heatmap_size(fuse: str) -> None:
    decoder = FPNDecoder([8, 16, 24, 32], lateral_dim=8, fuse=fuse)  # C2..C5 of a 64×96 input
    feats = [torch.randn(2, c, 64 // s, 96 // s) for c, s in zip([8, 16, 24, 32], [4, 8, 16, 32])]
    out = decoder(feats, Canvas(size=(16, 24), valid=(50 / 64, 90 / 96)))
    assert out.shape == (2, 8, 16, 24)
    out.sum().backward()
    assert all(p.grad is not None for p in decoder.parameters())
    assert (decoder.merge is not None) == (fuse == "concat")
