"""β and learning-rate schedules: pure functions of training progress, and a feedback controller on
KL.

Progress is measured in epochs as a float (step / steps_per_epoch), so β moves smoothly within
an epoch. Schedules:
- constant: max_beta throughout.
- linear_warmup / ultra_conservative: 0 for warmup_epochs, linear to max_beta over ramp_epochs.
- cyclical: Fu et al. 2019, https://arxiv.org/abs/1903.10145 - n_cycles cycles, β rising over the
  first `ratio` of each then held at max; shapes as in the paper's reference code.
- adaptive: a PI controller holding the mean KL per dimension at a target, in the manner of
  ControlVAE (Shao et al. 2020, https://arxiv.org/abs/2004.05988).
The learning rate (`train.lr_schedule`): constant, or a cosine decay over the run to lr_floor·lr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import BetaConfig, TrainConfig

RAMPED = ("linear_warmup", "ultra_conservative")
_RAMP_PARAMS = ("max_beta", "warmup_epochs", "ramp_epochs")
# The beta.* keys each schedule reads (what --show-schedule prints); a new schedule adds its line
# here.
SCHEDULE_PARAMS = {
    "constant": ("max_beta",),
    "linear_warmup": _RAMP_PARAMS,
    "ultra_conservative": _RAMP_PARAMS,
    "cyclical": ("max_beta", "n_cycles", "ratio", "shape"),
    "adaptive": ("target_kl_per_dim", "min_beta", "max_beta", "kp", "ki"),
}
# A position computed as (step / steps_per_epoch) * n_cycles / epochs can land a hair off a whole
# cycle or the end of a rise; without this slack the first step of a new cycle would get max β
# instead of 0, and the rise's last step would depend on rounding.
_CYCLE_SLACK = 1e-9


def ramp_shape(u: float, shape: str) -> float:
    """Map rise progress u in [0, 1] to [0, 1] the way the cyclical reference code does."""
    if shape == "linear":
        return u
    if shape == "cosine":
        return 0.5 - 0.5 * math.cos(u * math.pi)
    if shape == "sigmoid":  # the reference's logistic over u*12-6: 0.0025 at u=0, 0.9975 at u=1
        return 1.0 / (1.0 + math.exp(-(u * 12.0 - 6.0)))
    raise ValueError(f"unknown ramp shape '{shape}'")


def cyclical_fraction(progress: float, n_cycles: int, ratio: float, shape: str) -> float:
    """β / max_beta at `progress` (0 = start, 1 = end of the run) for Fu et al.'s cyclical schedule.

    The reference rises over u = 0..1 inclusive (`while v <= stop`) and holds 1 after, so u = 1
    itself gets the shape's value (0.9975 for sigmoid) and only u > 1 is held at 1.
    """
    position = progress * n_cycles  # cycles elapsed
    # the last cycle holds to the end
    cycle = min(math.floor(position + _CYCLE_SLACK), n_cycles - 1)
    u = max(0.0, position - cycle) / ratio
    return 1.0 if u > 1.0 + _CYCLE_SLACK else ramp_shape(min(u, 1.0), shape)


def scheduled_beta(cfg: BetaConfig, epoch: float, total_epochs: float) -> float:
    """β at fractional epoch `epoch` of a run of `total_epochs`, for the non-adaptive schedules."""
    top = cfg.max_beta
    if cfg.schedule == "constant":
        return top
    if cfg.schedule in RAMPED:
        if epoch < cfg.warmup_epochs:
            return 0.0
        if cfg.ramp_epochs == 0:
            return top
        return top * min(1.0, (epoch - cfg.warmup_epochs) / cfg.ramp_epochs)
    if cfg.schedule == "cyclical":
        return top * cyclical_fraction(epoch / total_epochs, cfg.n_cycles, cfg.ratio, cfg.shape)
    raise ValueError(f"schedule '{cfg.schedule}' is not a function of progress")


def cosine_share(progress: float, floor: float) -> float:
    """Share of the peak learning rate at `progress` (0..1, clamped) of a cosine decay from 1 to
    `floor`."""
    u = min(max(progress, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * u))


def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """train.lr at `progress` of the run (0 = first step, 1 = the end) under train.lr_schedule."""
    return (
        cfg.lr if cfg.lr_schedule == "constant" else cfg.lr * cosine_share(progress, cfg.lr_floor)
    )


def warmup_epochs(cfg: BetaConfig) -> float:
    """Epochs before which β is held at 0 by design (the collapse alarm waits for them)."""
    return cfg.warmup_epochs if cfg.schedule in RAMPED else 0.0


def schedule_warnings(cfg: BetaConfig, total_epochs: int, free_bits: float = 0.0) -> list[str]:
    """Consistent-but-suspicious settings the user should hear about before training."""
    notes = []
    if cfg.schedule in RAMPED:
        end = cfg.warmup_epochs + cfg.ramp_epochs
        if end > total_epochs:
            final = scheduled_beta(cfg, total_epochs, total_epochs)
            notes.append(
                f"beta: warm-up + ramp ({end:g} epochs) is longer than "
                f"train.epochs={total_epochs}; beta ends at {final:.3g} instead of "
                f"max_beta={cfg.max_beta:g}"
            )
    elif cfg.warmup_epochs or cfg.ramp_epochs:
        notes.append(
            f"beta.warmup_epochs / beta.ramp_epochs are ignored by the {cfg.schedule} schedule"
        )
    if cfg.max_beta == 0:
        notes.append("beta.max_beta is 0: this trains a plain autoencoder")
    if cfg.schedule == "adaptive" and cfg.target_kl_per_dim <= free_bits:
        # Below λ a dimension's KL has no gradient, so β cannot pull the mean KL down to the target.
        notes.append(
            f"beta.target_kl_per_dim={cfg.target_kl_per_dim:g} is not above "
            f"loss.free_bits={free_bits:g}; the controller cannot reach it and will push beta to "
            "max_beta"
        )
    return notes


@dataclass
class AdaptiveBeta:
    """PI control of β on the mean KL per dimension, with conditional-integration anti-windup.

    error e = target - KL/dim (an EMA of the batch value, to damp step-to-step noise).
    β = clamp(min + kp·σ(-e) + I, min, max), I ← I - ki·e (ControlVAE's form), except when β sits on
    a bound and the error pushes further past it: then I is frozen, so a long spell pinned at a
    bound cannot wind it up and β leaves the bound as soon as the error changes sign.
    KL above target raises β; KL below target lowers it. Gains are in β units (per step for ki);
    the defaults (kp 0.1, ki 0.002) come from a toy-plant sweep, see docs/schedules.md.
    All state is tensors on the training device, so an update costs no host synchronisation.
    """

    target: float
    min_beta: float
    max_beta: float
    kp: float
    ki: float
    ema_decay: float = 0.9
    integral: torch.Tensor | None = None
    kl_ema: torch.Tensor | None = None
    beta: torch.Tensor | None = None

    @classmethod
    def from_config(cls, cfg: BetaConfig, device: torch.device | str = "cpu") -> AdaptiveBeta:
        ctrl = cls(cfg.target_kl_per_dim, cfg.min_beta, cfg.max_beta, cfg.kp, cfg.ki)
        ctrl.integral = torch.zeros((), device=device)
        ctrl.kl_ema = torch.full((), float(cfg.target_kl_per_dim), device=device)
        ctrl.beta = torch.full((), float(cfg.min_beta), device=device)
        return ctrl

    def update(self, kl_per_dim_mean: torch.Tensor) -> torch.Tensor:
        """Feed the latest mean KL/dim (a detached scalar tensor); returns the β for the next
        step."""
        self.kl_ema = self.ema_decay * self.kl_ema + (1 - self.ema_decay) * kl_per_dim_mean.float()
        error = self.target - self.kl_ema
        proportional = self.kp * torch.sigmoid(-error)
        trial_integral = self.integral - self.ki * error
        raw = self.min_beta + proportional + trial_integral
        saturated = ((raw > self.max_beta) & (error < 0)) | ((raw < self.min_beta) & (error > 0))
        self.integral = torch.where(saturated, self.integral, trial_integral)
        self.beta = (self.min_beta + proportional + self.integral).clamp(
            self.min_beta, self.max_beta
        )
        return self.beta

    def state_dict(self) -> dict:
        return {"integral": self.integral, "kl_ema": self.kl_ema, "beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        device = self.integral.device
        self.integral, self.kl_ema, self.beta = (
            state[k].to(device) for k in ("integral", "kl_ema", "beta")
        )
