"""`train_step` and the training state: loss scaling (fp16's GradScaler, exercised on CPU), skipped
overflowing steps, and a state that carries the scale across a resume."""

from __future__ import annotations

import copy

import pytest
import torch

from tracknet_cli.data.datasets import Batch
from tracknet_cli.models.losses import build_loss
from tracknet_cli.training.callbacks import BestCheckpoint, EarlyStopping, build_schedule
from tracknet_cli.training.step import TrainState, make_scaler, train_step

torch.set_num_threads(1)


class Tiny(torch.nn.Module):
    """(B, T, 3, H, W) → (B, T, H/2, W/2) logits: one conv per frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.conv(x.flatten(0, 1))[:, 0].reshape(b, t, x.shape[-2] // 2, x.shape[-1] // 2)


def batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    heat = torch.zeros(2, 3, 8, 8)
    heat[:, :, 3, 4] = 1.0
    return Batch(
        frames=torch.randint(0, 256, (2, 3, 3, 16, 16), generator=g, dtype=torch.uint8),
        heatmaps=heat,
        mask=torch.ones(2, 3, dtype=torch.bool),
        xy=torch.zeros(2, 3, 2),
        visibility=torch.ones(2, 3, dtype=torch.int8),
        clip_ids=["a", "a"],
        frame_ids=torch.zeros(2, 3, dtype=torch.int64),
        source_size=torch.tensor([[16, 16]] * 2),
    )


def step(
    model: torch.nn.Module, scaler: torch.amp.GradScaler, autocast_dtype: torch.dtype | None = None, **kw
) -> torch.optim.Optimizer:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_step(
        model, [batch(0), batch(1)], build_loss("softmax"), opt, autocast_dtype=autocast_dtype, scaler=scaler, **kw
    )
    return opt


def test_scaler_is_enabled_for_fp16_only() -> None:
    assert make_scaler(torch.device("cpu"), "fp16").is_enabled()
    assert not make_scaler(torch.device("cpu"), "bf16").is_enabled()
    assert not make_scaler(torch.device("cpu"), "fp32").is_enabled()


@pytest.mark.parametrize("grad_clip", [None, 0.5])
def test_a_scaled_step_applies_the_unscaled_update(grad_clip: float | None) -> None:
    torch.manual_seed(0)
    plain, scaled = Tiny(), None
    scaled = copy.deepcopy(plain)
    step(plain, torch.amp.GradScaler("cpu", enabled=False), grad_clip=grad_clip)
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0**12)
    step(scaled, scaler, grad_clip=grad_clip)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**12  # no overflow: the scale stays (it grows after growth_interval steps)


def test_fp16_autocast_step_with_the_scaler_trains() -> None:
    torch.manual_seed(0)
    model = Tiny()
    before = [p.detach().clone() for p in model.parameters()]
    step(model, make_scaler(torch.device("cpu"), "fp16"), autocast_dtype=torch.float16, grad_clip=1.0)
    assert all(torch.isfinite(p).all() and not torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_an_overflowing_step_is_skipped_and_the_scale_backs_off() -> None:
    torch.manual_seed(0)
    model = Tiny()
    before = [p.detach().clone() for p in model.parameters()]
    model.conv.weight.register_hook(lambda g: g * float("inf"))  # what an fp16 overflow leaves in a gradient
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0**16)
    opt = step(model, scaler, grad_clip=1.0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert scaler.get_scale() == 2.0**15 and not opt.state  # AdamW never ran
    assert all(p.grad is None for p in model.parameters())


def state_of(model: torch.nn.Module, scaler: torch.amp.GradScaler) -> TrainState:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return TrainState(
        model=model,
        optimizer=opt,
        schedule=build_schedule("none", warmup_steps=0),
        best=BestCheckpoint("f1"),
        early=EarlyStopping("f1", patience=None),
        scaler=scaler,
        threshold=0.5,
    )


def test_the_state_carries_the_loss_scale_across_a_resume(tmp_path) -> None:
    torch.manual_seed(0)
    run = state_of(Tiny(), torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0**10, growth_interval=1))
    train_step(run.model, [batch()], build_loss("softmax"), run.optimizer, autocast_dtype=None, scaler=run.scaler)
    run.step = 1
    assert run.scaler.get_scale() == 2.0**11  # grown after one good step
    torch.save(run.state_dict(elapsed=1.0, rng={}, world_size=1), tmp_path / "last.pt")
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    resumed = state_of(Tiny(), make_scaler(torch.device("cpu"), "fp16"))
    resumed.load_state_dict(saved, tmp_path / "last.pt")
    assert resumed.scaler.get_scale() == 2.0**11 and resumed.step == 1
    assert resumed.scaler.state_dict() == run.scaler.state_dict()
    # A state written by an fp32/bf16 run (or before loss scaling) has no scale to restore.
    del saved["scaler"]
    state_of(Tiny(), make_scaler(torch.device("cpu"), "fp16")).load_state_dict(saved, tmp_path / "last.pt")
