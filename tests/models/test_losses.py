"""Losses: masks, zero at a perfect prediction, finite on empty masks, softmax "no ball" handling, fp32."""

from __future__ import annotations

import math
from typing import get_args

import pytest
import torch

from tracknet_cli.config.schema import TrainingConfig
from tracknet_cli.errors import ConfigError
from tracknet_cli.models.losses import (
    LOSSES,
    LossName,
    build_loss,
    loss_class,
)

torch.set_num_threads(1)
BIG = 30.0  # logit that saturates sigmoid/softmax in fp32


def gaussian(h: int, w: int, cx: float, cy: float, sigma: float = 1.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def one_hot_targets() -> torch.Tensor:
    """(B=2,T=2,6,8): ball at (2,3), (5,1), none, (7,4)."""
    t = torch.zeros(2, 2, 6, 8)
    t[0, 0, 3, 2] = 1
    t[0, 1, 1, 5] = 1
    t[1, 1, 4, 7] = 1
    return t


def perfect_logits(loss: str, targets: torch.Tensor) -> torch.Tensor:
    if loss == "mse":
        return targets.clone()
    return torch.where(targets > 0, torch.tensor(BIG), torch.tensor(-BIG))


ALL = sorted(LOSSES)


def test_registry_matches_config_literal() -> None:
    assert set(LOSSES) == set(get_args(LossName)) == {"mse", "focal", "wbce", "softmax"}
    field_type = TrainingConfig.model_fields["loss"].annotation
    assert set(get_args(field_type)) == set(LOSSES)
    assert TrainingConfig().loss == "softmax"


@pytest.mark.parametrize("name", ALL)
def test_zero_at_perfect_prediction(name: str) -> None:
    targets = one_hot_targets()
    mask = torch.ones(2, 2, dtype=torch.bool)
    nb = None
    if name == "softmax":  # the no-ball frame needs its logit far above every cell logit (cells sit at -BIG)
        nb = torch.tensor([[-BIG, -BIG], [BIG, -BIG]])
    out = build_loss(name)(perfect_logits(name, targets), targets, mask, no_ball_logit=nb)
    assert out.total.item() == pytest.approx(0.0, abs=1e-6)
    wrong = build_loss(name)(torch.zeros_like(targets), targets, mask, no_ball_logit=nb)
    assert wrong.total.item() > 1e-3


@pytest.mark.parametrize("name", ALL)
def test_masked_frames_contribute_nothing(name: str) -> None:
    torch.manual_seed(0)
    targets = one_hot_targets()
    logits = torch.randn(2, 2, 6, 8)
    mask = torch.tensor([[True, False], [False, True]])
    loss = build_loss(name)
    base = loss(logits, targets, mask).total
    # Garbage (even NaN) in masked frames changes neither value nor gradient of the kept frames.
    spoiled = logits.clone()
    spoiled[0, 1] = float("nan")
    spoiled[1, 0] = 1e6
    spoiled.requires_grad_(True)
    total = loss(spoiled, targets, mask).total
    assert total.item() == pytest.approx(base.item(), rel=1e-6)
    total.backward()
    assert torch.all(spoiled.grad[0, 1] == 0) and torch.all(spoiled.grad[1, 0] == 0)
    assert spoiled.grad[0, 0].abs().sum() > 0 and spoiled.grad[1, 1].abs().sum() > 0
    # The kept frames alone give the same value.
    only = loss(logits[[0, 1], [0, 1]][:, None], targets[[0, 1], [0, 1]][:, None], torch.ones(2, 1, dtype=torch.bool))
    assert only.total.item() == pytest.approx(base.item(), rel=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_fully_masked_batch_is_zero_with_graph(name: str) -> None:
    logits = torch.randn(2, 3, 6, 8, requires_grad=True)
    out = build_loss(name)(logits, one_hot_targets().repeat(1, 2, 1, 1)[:, :3], torch.zeros(2, 3, dtype=torch.bool))
    assert out.total.item() == 0.0 and math.isfinite(out.total.item())
    out.total.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)
    assert all(math.isfinite(v) for v in out.terms.values())


@pytest.mark.parametrize("name", ALL)
def test_bf16_logits_computed_in_fp32(name: str) -> None:
    torch.manual_seed(1)
    targets = torch.stack([gaussian(12, 16, 5.3, 7.6), torch.zeros(12, 16)])[None]  # (1,2,12,16)
    logits = torch.randn(1, 2, 12, 16)
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss = build_loss(name)
    fp32 = loss(logits, targets, mask).total
    bf16 = loss(logits.bfloat16(), targets.bfloat16(), mask).total
    assert bf16.dtype == torch.float32
    # Only the inputs' rounding to bf16 (8 mantissa bits) differs: agree within 2 %.
    assert bf16.item() == pytest.approx(fp32.item(), rel=2e-2)


def test_mse_hand_value() -> None:
    logits = torch.zeros(1, 2, 2, 2)
    targets = torch.zeros(1, 2, 2, 2)
    targets[0, 0, 0, 0] = 1.0  # frame 0 error: 1/4; frame 1 error: 0
    out = build_loss("mse")(logits, targets, torch.ones(1, 2, dtype=torch.bool))
    assert out.total.item() == pytest.approx(0.125)
    # Per-frame weights: frame 0 weight 3, frame 1 weight 1 -> (3*0.25 + 0) / 4.
    w = torch.tensor([[3.0, 1.0]])
    assert build_loss("mse")(
        logits, targets, torch.ones(1, 2, dtype=torch.bool), weights=w
    ).total.item() == pytest.approx(0.1875)


def test_wbce_hand_value() -> None:
    # One frame, two cells: y = 1 with logit 0 (p = .5), y = 0 with logit 0.
    logits = torch.zeros(1, 1, 1, 2)
    targets = torch.tensor([[[[1.0, 0.0]]]])
    out = build_loss("wbce")(logits, targets, torch.ones(1, 1, dtype=torch.bool))
    expected = -(0.25 * math.log(0.5) + 0.25 * math.log(0.5)) / 2
    assert out.total.item() == pytest.approx(expected, rel=1e-6)


def test_focal_hand_value_and_soft_peak() -> None:
    # Peak 0.6 (a Gaussian centred between cells) is still the positive; its neighbour 0.5 is a negative.
    logits = torch.zeros(1, 1, 1, 3)
    targets = torch.tensor([[[[0.6, 0.5, 0.0]]]])
    out = build_loss("focal", alpha=2.0, beta=4.0)(logits, targets, torch.ones(1, 1, dtype=torch.bool))
    log_half = math.log(0.5)
    pos = -(0.25 * log_half)
    neg = -((0.5**4) * 0.25 * log_half + 1.0 * 0.25 * log_half)
    assert out.total.item() == pytest.approx(pos + neg, rel=1e-6)
    assert out.terms["pos"] == pytest.approx(pos, rel=1e-6)


def test_softmax_hand_value_and_no_ball() -> None:
    # Frame with a ball: target one-hot on cell 0 of 3 cells; all logits 0 with fixed no-ball 0 -> 4 classes, -log(1/4).
    logits = torch.zeros(1, 2, 1, 3)
    targets = torch.zeros(1, 2, 1, 3)
    targets[0, 0, 0, 0] = 1.0
    mask = torch.ones(1, 2, dtype=torch.bool)
    out = build_loss("softmax")(logits, targets, mask)
    assert out.total.item() == pytest.approx(math.log(4), rel=1e-6)  # both frames: -log(1/4)
    assert out.terms["ball_frames"] == 1.0 and out.terms["p_no_ball"] == pytest.approx(0.25)
    # A learned no-ball logit of log 3 makes the no-ball frame's loss -log(3/6) and the ball frame's -log(1/6).
    nb = torch.full((1, 2), math.log(3.0))
    out = build_loss("softmax")(logits, targets, mask, no_ball_logit=nb)
    assert out.total.item() == pytest.approx((math.log(6) + math.log(2)) / 2, rel=1e-6)


def test_softmax_gradient_pushes_the_right_way() -> None:
    targets = torch.zeros(1, 2, 4, 4)
    targets[0, 0] = gaussian(4, 4, 1.0, 2.0)
    logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    nb = torch.zeros(1, 2, requires_grad=True)
    build_loss("softmax")(logits, targets, torch.ones(1, 2, dtype=torch.bool), no_ball_logit=nb).total.backward()
    # Ball frame: the peak cell's logit must rise (negative gradient), the no-ball logit must fall.
    assert logits.grad[0, 0, 2, 1] < 0 and nb.grad[0, 0] > 0
    # No-ball frame: every cell must fall, the no-ball logit must rise.
    assert torch.all(logits.grad[0, 1] > 0) and nb.grad[0, 1] < 0


def test_softmax_gaussian_target_zero_at_matching_distribution() -> None:
    target = gaussian(6, 8, 3.4, 2.2, sigma=1.5)
    logits = torch.log(target / target.sum()) + 20.0  # cell distribution = target's, no-ball ~ e^-20
    out = build_loss("softmax")(logits[None, None], target[None, None], torch.ones(1, 1, dtype=torch.bool))
    assert out.total.item() == pytest.approx(0.0, abs=1e-5)


def test_probabilities_per_loss() -> None:
    logits = torch.tensor([[[[-1.0, 0.0], [2.0, 0.5]]]])  # (1,1,2,2)
    assert torch.equal(LOSSES["mse"].probabilities(logits), torch.tensor([[[[0.0, 0.0], [1.0, 0.5]]]]))
    assert torch.allclose(LOSSES["focal"].probabilities(logits), torch.sigmoid(logits))
    assert torch.allclose(LOSSES["wbce"].probabilities(logits.bfloat16()), torch.sigmoid(logits))
    # softmax with no-ball logit 1: peak cell holds P(ball) = 1 - e/(e + Σ e^x); others keep their ratio to it.
    p = LOSSES["softmax"].probabilities(logits, no_ball_logit=torch.tensor([[1.0]]))
    z = math.exp(-1) + 1 + math.exp(2) + math.exp(0.5) + math.e
    p_ball = 1 - math.e / z
    assert p[0, 0, 1, 0].item() == pytest.approx(p_ball, rel=1e-6)
    assert p[0, 0, 0, 1].item() == pytest.approx(p_ball * math.exp(-2), rel=1e-6)
    assert p.dtype == torch.float32 and p.min() >= 0 and p.max() <= 1
    assert int(p.flatten().argmax()) == int(logits.flatten().argmax())


def test_softmax_probability_peak_is_presence_not_spread() -> None:
    # A perfectly trained softmax model on a σ=1.5 Gaussian spreads mass: raw peak cell ≈ 0.07 only.
    target = gaussian(20, 20, 10.0, 10.0, sigma=1.5)
    logits = torch.log(target / target.sum()).clamp(min=-60) + 10.0
    raw_peak = torch.softmax(torch.cat([logits.flatten(), torch.zeros(1)]), 0).max().item()
    r = 6  # a normalised 2-D Gaussian of sigma 1.5 keeps 1 / sum(exp(-d²/2σ²)) on its centre cell
    centre = 1.0 / sum(math.exp(-(i * i + j * j) / 4.5) for i in range(-r, r + 1) for j in range(-r, r + 1))
    assert raw_peak == pytest.approx(centre, rel=1e-3) and raw_peak < 0.08
    p = LOSSES["softmax"].probabilities(logits[None])
    assert p.max().item() > 0.99  # decoded score = P(ball), so one threshold means the same everywhere
    # Frames with a strong no-ball logit score near 0.
    assert LOSSES["softmax"].probabilities(logits[None], no_ball_logit=torch.tensor([30.0])).max().item() < 1e-3


def test_every_loss_has_a_probability_map() -> None:
    """Each training loss's logits decode to scores in [0, 1] of the heatmap's shape, peaking where the logits do."""
    logits = torch.full((2, 3, 6, 8), -4.0)
    logits[..., 2, 5] = 4.0
    for name in LOSSES:
        probs = LOSSES[name].probabilities(logits)
        assert probs.shape == logits.shape and 0.0 <= probs.min() and probs.max() <= 1.0, name
        assert (probs.flatten(-2).argmax(-1) == 2 * 8 + 5).all(), name


def test_build_loss_errors() -> None:
    with pytest.raises(ConfigError, match="loss 'focl' is not one of") as err:
        build_loss("focl")
    assert "focal" in err.value.line()
    with pytest.raises(ConfigError, match="bad options"):
        build_loss("mse", alpha=2)
    with pytest.raises(ConfigError, match="did you mean 'softmax'"):
        loss_class("sotfmax")
    assert build_loss("focal", alpha=1.0).options() == {"alpha": 1.0, "beta": 4.0}
