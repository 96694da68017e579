"""Heatmap losses, chosen by `training.loss`, each with the logits → probabilities map that matches it.

Training calls a loss; inference (`inference.engine`) calls `LOSSES[name].probabilities`, the per-cell
probabilities the codec decodes. Both import it, so it lives with the models, below both.

Every loss takes the model's logits `(B,T,Hh,Wh)`, the codec's Gaussian targets `(B,T,Hh,Wh)` and
the dataset's frame mask `(B,T)`, and works in fp32 whatever the logits' dtype. A masked frame
contributes nothing (not even NaN); a fully masked batch gives a zero loss that still has a graph,
so the loop never needs a special case. Losses are pure functions of their inputs: anything learned
(the "no ball" logit of the softmax loss) comes from the model as an argument.

torch is imported inside functions: importing this module for `LOSSES` costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

from tracknet_cli.choices import LOSS_NAMES, LossName, check, registry
from tracknet_cli.errors import ConfigError

if TYPE_CHECKING:
    import torch


class LossOutput:
    """The scalar to backpropagate plus named float terms for logs and the non-finite-loss message.

    The losses pass their terms as a function, computed on first access: reading a GPU value is a
    host-device synchronisation, and a training step that never looks at the terms makes none.
    """

    def __init__(
        self, total: "torch.Tensor", terms: "dict[str, float] | Callable[[], dict[str, float]] | None" = None
    ) -> None:
        self.total = total
        self._terms = terms

    @property
    def terms(self) -> dict[str, float]:
        if callable(self._terms):
            self._terms = self._terms()
        return {} if self._terms is None else self._terms


# ---------------------------------------------------------------- shared helpers
def _prepare(
    logits: "torch.Tensor",
    targets: "torch.Tensor",
    mask: "torch.Tensor",
    weights: "torch.Tensor | None",
) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """fp32 logits and targets plus per-frame weights `(B,T)` that are 0 on masked frames.

    Masked frames' logits and targets are replaced by zeros first, so whatever they hold (NaN after a
    padded frame, say) reaches neither the value nor the gradient.
    """
    import torch

    if logits.dim() != 4:
        raise ValueError(f"logits must be (B,T,Hh,Wh), got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}")
    if mask.shape != logits.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} must be (B,T) = {tuple(logits.shape[:2])}")
    frame_w = mask.to(device=logits.device, dtype=torch.float32)
    if weights is not None:
        if weights.shape != mask.shape:
            raise ValueError(f"weights {tuple(weights.shape)} must be (B,T) like the mask")
        frame_w = frame_w * weights.to(device=logits.device, dtype=torch.float32)
    keep = (frame_w > 0)[..., None, None]
    x = torch.where(keep, logits.float(), torch.zeros((), dtype=torch.float32, device=logits.device))
    tgt = torch.where(
        keep, targets.to(device=logits.device, dtype=torch.float32), torch.zeros((), device=logits.device)
    )
    return x, tgt, frame_w


def _zero_outside(values: "torch.Tensor", frame_w: "torch.Tensor") -> "torch.Tensor":
    """Per-frame values with masked frames set to 0 (`where`, so a NaN in a masked frame cannot leak)."""
    import torch

    return torch.where(frame_w > 0, values, torch.zeros_like(values))


def _weighted_frame_mean(per_frame: "torch.Tensor", frame_w: "torch.Tensor", x: "torch.Tensor") -> "torch.Tensor":
    """Σ w·loss / Σ w over frames; 0 (with the logits' graph) when every frame is masked."""
    denom = frame_w.sum()
    numer = (_zero_outside(per_frame, frame_w) * frame_w).sum()
    return numer / denom.clamp(min=1e-12) + _graph_keeper(x)


def _graph_keeper(x: "torch.Tensor") -> "torch.Tensor":
    """A zero tied to the (masked-to-zero) logits so backward() works on an all-masked batch."""
    return x.sum() * 0.0


def _frame_has_ball(targets: "torch.Tensor") -> "torch.Tensor":
    """A frame shows the ball when its target heatmap has a peak (the codec encodes NaN as all zero)."""
    return targets.flatten(2).amax(dim=-1) > 0


# ---------------------------------------------------------------- the losses
class Loss:
    """Base: `loss(logits, targets, mask, no_ball_logit=None, weights=None) -> LossOutput`, and
    `Loss.probabilities(logits, no_ball_logit=None)`: per-cell scores in [0, 1] `(…,Hh,Wh)`, fp32, for the
    codec to decode, of a model that loss trained."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __call__(
        self,
        logits: "torch.Tensor",
        targets: "torch.Tensor",
        mask: "torch.Tensor",
        no_ball_logit: "torch.Tensor | None" = None,
        weights: "torch.Tensor | None" = None,
    ) -> LossOutput:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The options it was built with (recorded next to the loss name in checkpoints)."""
        return {}

    @staticmethod
    def probabilities(logits: "torch.Tensor", no_ball_logit: "torch.Tensor | None" = None) -> "torch.Tensor":
        raise NotImplementedError


class MSELoss(Loss):
    """Mean squared error between the raw output and the Gaussian target (TrackNet-style regression).

    The model output is the heatmap itself (no sigmoid), so `probabilities` only clamps it to [0, 1].
    """

    name = "mse"
    summary = "mean squared error on the raw output (the output is the heatmap)"

    def __call__(self, logits, targets, mask, no_ball_logit=None, weights=None) -> LossOutput:
        out, tgt, frame_w = _prepare(logits, targets, mask, weights)
        per_frame = (out - tgt).pow(2).mean(dim=(-2, -1))
        total = _weighted_frame_mean(per_frame, frame_w, out)
        return LossOutput(total, lambda: {"mse": float(total.detach()), "frames": float((frame_w > 0).sum())})

    @staticmethod
    def probabilities(logits: "torch.Tensor", no_ball_logit: "torch.Tensor | None" = None) -> "torch.Tensor":
        """The output is the heatmap itself, clamped to [0, 1]."""
        return logits.float().clamp(0.0, 1.0)


class FocalLoss(Loss):
    """CenterNet's penalty-reduced focal loss (Zhou et al., "Objects as Points", 2019) on sigmoid logits.

    Positives are each frame's peak cell(s) (the codec's Gaussian may be centred between cells, so no
    cell need be exactly 1); the other cells are negatives down-weighted by (1 - y)^beta near the peak.
    The sum over unmasked frames is divided by their number of positive cells (at least 1).
    """

    name = "focal"
    summary = "CenterNet penalty-reduced focal loss on sigmoid logits"

    def __init__(self, alpha: float = 2.0, beta: float = 4.0) -> None:
        if alpha < 0 or beta < 0:
            raise ConfigError(f"focal loss needs alpha, beta >= 0, got alpha={alpha}, beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def options(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta}

    @staticmethod
    def probabilities(logits: "torch.Tensor", no_ball_logit: "torch.Tensor | None" = None) -> "torch.Tensor":
        """The sigmoid of each cell."""
        import torch

        return torch.sigmoid(logits.float())

    def __call__(self, logits, targets, mask, no_ball_logit=None, weights=None) -> LossOutput:
        import torch
        import torch.nn.functional as F

        x, tgt, frame_w = _prepare(logits, targets, mask, weights)
        peak = tgt.flatten(2).amax(dim=-1)[..., None, None]
        pos = (tgt >= peak) & (peak > 0)
        log_p, log_not_p = F.logsigmoid(x), F.logsigmoid(-x)
        p = torch.sigmoid(x)
        pos_cells = torch.where(pos, (1 - p).pow(self.alpha) * log_p, torch.zeros_like(x))
        neg_cells = torch.where(pos, torch.zeros_like(x), (1 - tgt).pow(self.beta) * p.pow(self.alpha) * log_not_p)
        pos_frame = -pos_cells.sum(dim=(-2, -1))
        neg_frame = -neg_cells.sum(dim=(-2, -1))
        num_pos = (_zero_outside(pos.sum(dim=(-2, -1)).float(), frame_w) * (frame_w > 0)).sum().clamp(min=1.0)
        pos_term = (_zero_outside(pos_frame, frame_w) * frame_w).sum() / num_pos
        neg_term = (_zero_outside(neg_frame, frame_w) * frame_w).sum() / num_pos
        total = pos_term + neg_term + _graph_keeper(x)
        return LossOutput(
            total,
            lambda: {
                "focal": float(total.detach()),
                "pos": float(pos_term.detach()),
                "neg": float(neg_term.detach()),
                "frames": float((frame_w > 0).sum()),
            },
        )


class WeightedBCELoss(Loss):
    """TrackNetV2's weighted binary cross-entropy on sigmoid logits, averaged over cells.

    -[(1-p)^2 · y · log p + p^2 · (1-y) · log(1-p)] (TrackNetV2 paper; `WBCELoss` in TrackNetV3's
    utils/metric.py). log p and log(1-p) come from logsigmoid instead of clamping p at 1e-7.
    """

    name = "wbce"
    summary = "TrackNetV2 weighted binary cross-entropy on sigmoid logits"

    def __call__(self, logits, targets, mask, no_ball_logit=None, weights=None) -> LossOutput:
        import torch
        import torch.nn.functional as F

        x, tgt, frame_w = _prepare(logits, targets, mask, weights)
        p = torch.sigmoid(x)
        cells = -((1 - p).pow(2) * tgt * F.logsigmoid(x) + p.pow(2) * (1 - tgt) * F.logsigmoid(-x))
        per_frame = cells.mean(dim=(-2, -1))
        total = _weighted_frame_mean(per_frame, frame_w, x)
        return LossOutput(total, lambda: {"wbce": float(total.detach()), "frames": float((frame_w > 0).sum())})

    @staticmethod
    def probabilities(logits: "torch.Tensor", no_ball_logit: "torch.Tensor | None" = None) -> "torch.Tensor":
        """The sigmoid of each cell."""
        import torch

        return torch.sigmoid(logits.float())


class SpatialSoftmaxLoss(Loss):
    """Per-frame classification over the Hh·Wh cells plus one "no ball" class.

    Target: the frame's Gaussian normalised to a distribution over cells when the ball is visible (the
    target has a peak), the "no ball" class when it is not. The "no ball" logit comes from the model as
    `no_ball_logit (B,T)`; without one it is a fixed 0, which the model can match by moving all cell
    logits (a head bias suffices). The value is KL(target ‖ prediction) = cross-entropy minus the
    target's entropy: the same gradients as cross-entropy, and exactly 0 at a perfect prediction.
    """

    name = "softmax"
    summary = "spatial softmax over all cells plus a 'no ball' class (learns in minutes)"

    def __call__(self, logits, targets, mask, no_ball_logit=None, weights=None) -> LossOutput:
        import torch

        x, tgt, frame_w = _prepare(logits, targets, mask, weights)
        b, t = x.shape[:2]
        cells = x.flatten(2)
        nb = torch.where(frame_w > 0, _no_ball_column(no_ball_logit, b, t, x), torch.zeros((), device=x.device))
        log_q = torch.log_softmax(torch.cat([cells, nb[..., None]], dim=-1), dim=-1)
        has_ball = _frame_has_ball(tgt)
        dist = tgt.flatten(2).clamp(min=0)
        dist = dist / dist.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        # Σ p·(log p - log q) over cells with p > 0 (0·log 0 = 0, so zero cells are skipped).
        safe_log_p = torch.log(torch.where(dist > 0, dist, torch.ones_like(dist)))
        kl_ball = (dist * (safe_log_p - log_q[..., :-1])).sum(dim=-1)
        kl_no_ball = -log_q[..., -1]
        per_frame = torch.where(has_ball, kl_ball, kl_no_ball)
        total = _weighted_frame_mean(per_frame, frame_w, x)
        counted = frame_w > 0
        p_no_ball = log_q[..., -1].detach().exp()
        return LossOutput(
            total,
            lambda: {
                "softmax": float(total.detach()),
                "frames": float(counted.sum()),
                "ball_frames": float((counted & has_ball).sum()),
                "p_no_ball": float(p_no_ball[counted].mean()) if bool(counted.any()) else 0.0,
            },
        )

    @staticmethod
    def probabilities(logits: "torch.Tensor", no_ball_logit: "torch.Tensor | None" = None) -> "torch.Tensor":
        """The softmax over cells + "no ball" (`no_ball_logit` shaped like the logits' leading dims; None: 0),
        rescaled per frame so that the peak cell holds P(ball) = 1 - P(no ball) and the other cells keep
        their ratio to it. The raw per-cell probability of a perfect model is only about 1/(2πσ²) (0.07 at
        σ = 1.5 cells), because the target spreads the mass over the Gaussian; the rescaled map keeps the
        shape for peak finding and makes the decoded score the calibrated probability that the frame shows
        a ball, so 0.5 means the same in every frame."""
        import torch

        x = logits.float()
        lead, (hh, ww) = x.shape[:-2], x.shape[-2:]
        cells = x.reshape(*lead, hh * ww)
        if no_ball_logit is None:
            nb = torch.zeros(lead, dtype=torch.float32, device=x.device)
        else:
            if tuple(no_ball_logit.shape) != tuple(lead):
                raise ValueError(f"no_ball_logit must have shape {tuple(lead)}, got {tuple(no_ball_logit.shape)}")
            nb = no_ball_logit.float()
        probs = torch.softmax(torch.cat([cells, nb[..., None]], dim=-1), dim=-1)
        cell_p, p_ball = probs[..., :-1], 1.0 - probs[..., -1:]
        # p / max(p) computed from logits (exp(x - max x)) so tiny probabilities do not underflow to 0/0.
        relative = torch.exp(cells - cells.amax(dim=-1, keepdim=True))
        scaled = torch.where(cell_p.amax(dim=-1, keepdim=True) > 0, relative * p_ball, cell_p)
        return scaled.clamp(0.0, 1.0).reshape(*lead, hh, ww)


def _no_ball_column(no_ball_logit: "torch.Tensor | None", b: int, t: int, like: "torch.Tensor") -> "torch.Tensor":
    import torch

    if no_ball_logit is None:
        return torch.zeros((b, t), dtype=torch.float32, device=like.device)
    if tuple(no_ball_logit.shape) != (b, t):
        raise ValueError(f"no_ball_logit must be (B,T) = {(b, t)}, got {tuple(no_ball_logit.shape)}")
    return no_ball_logit.float()


# ---------------------------------------------------------------- registry
LOSSES: dict[str, type[Loss]] = registry(
    {cls.name: cls for cls in (MSELoss, FocalLoss, WeightedBCELoss, SpatialSoftmaxLoss)}, LossName
)
"""Every loss by name, keyed by `choices.LossName` (which feeds the config schema)."""


def loss_class(name: str) -> type[Loss]:
    """The loss class called `name` (`ConfigError` with a suggestion for an unknown one)."""
    return LOSSES[check(name, LOSS_NAMES, "loss")]


def build_loss(name: str, **opts: Any) -> Loss:
    """The loss called `name`, with its options (focal: alpha, beta)."""
    cls = loss_class(name)
    try:
        return cls(**opts)
    except TypeError as exc:
        raise ConfigError(f"bad options for loss '{name}': {exc}") from exc
