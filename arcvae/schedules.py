"""β schedules: pure functions of training progress, and a feedback controller on KL.

Progress is measured in epochs as a float (step / steps_per_epoch), so β moves smoothly within
an epoch. Schedules:
- constant: max_beta throughout.
- linear_warmup / ultra_conservative: 0 for warmup_epochs, linear to max_beta over ramp_epochs.
- cyclical: Fu et al. 2019, https://arxiv.org/abs/1903.10145 - n_cycles cycles, β rising over the
  first `ratio` of each then held at max; shapes as in the paper's reference code.
- adaptive: a PI controller holding the mean KL per dimension at a target, in the manner of
  ControlVAE (Shao et al. 2020, https://arxiv.org/abs/2004.05988).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import BetaConfig


def ramp_shape(u: float, shape: str) -> float:
    """Map rise progress u in [0, 1] to [0, 1] the way the cyclical reference code does."""
    if shape == "linear":
        return u
    if shape == "cosine":
        return 0.5 - 0.5 * math.cos(u * math.pi)
    if shape == "sigmoid":  # the reference's logistic over v*12-6: starts at ~0.0025, not 0
        return 1.0 / (1.0 + math.exp(-(u * 12.0 - 6.0)))
    raise ValueError(f"unknown ramp shape '{shape}'")


def scheduled_beta(cfg: BetaConfig, epoch: float, total_epochs: float) -> float:
    """β at fractional epoch `epoch` of a run of `total_epochs`, for the non-adaptive schedules."""
    top = cfg.max_beta
    if cfg.schedule == "constant":
        return top
    if cfg.schedule in ("linear_warmup", "ultra_conservative"):
        if epoch < cfg.warmup_epochs:
            return 0.0
        if cfg.ramp_epochs == 0:
            return top
        return top * min(1.0, (epoch - cfg.warmup_epochs) / cfg.ramp_epochs)
    if cfg.schedule == "cyclical":
        period = total_epochs / cfg.n_cycles
        rise = period * cfg.ratio
        within = epoch - period * min(math.floor(epoch / period), cfg.n_cycles - 1)
        if within >= rise:
            return top
        return top * ramp_shape(within / rise, cfg.shape)
    raise ValueError(f"schedule '{cfg.schedule}' is not a function of progress")


def warmup_epochs(cfg: BetaConfig) -> float:
    """Epochs before which β is held at 0 by design (the collapse alarm waits for them)."""
    return cfg.warmup_epochs if cfg.schedule in ("linear_warmup", "ultra_conservative") else 0.0


def schedule_warnings(cfg: BetaConfig, total_epochs: int) -> list[str]:
    """Consistent-but-suspicious settings the user should hear about before training."""
    notes = []
    if cfg.schedule in ("linear_warmup", "ultra_conservative"):
        end = cfg.warmup_epochs + cfg.ramp_epochs
        if end > total_epochs:
            final = scheduled_beta(cfg, total_epochs, total_epochs)
            notes.append(f"beta: warm-up + ramp ({end:g} epochs) is longer than train.epochs={total_epochs}; "
                         f"beta will only reach {final:.3g} of max_beta={cfg.max_beta:g}")
    if cfg.schedule != "constant" and cfg.max_beta == 0:
        notes.append("beta.max_beta is 0: this trains a plain autoencoder")
    return notes


@dataclass
class AdaptiveBeta:
    """PI control of β on the mean KL per dimension, with conditional-integration anti-windup.

    error e = target - KL/dim (an EMA of the batch value, to damp step-to-step noise).
    β = clamp(min + kp·σ(-e) + I, min, max), I ← I - ki·e, except when β sits on a bound and the
    error pushes further past it (anti-windup: the integral cannot run away while saturated).
    KL above target raises β; KL below target lowers it. All state is tensors on the training
    device, so an update costs no host synchronisation.
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
    def from_config(cls, cfg: BetaConfig, device: torch.device | str = "cpu") -> "AdaptiveBeta":
        ctrl = cls(cfg.target_kl_per_dim, cfg.min_beta, cfg.max_beta, cfg.kp, cfg.ki)
        ctrl.integral = torch.zeros((), device=device)
        ctrl.kl_ema = torch.full((), float(cfg.target_kl_per_dim), device=device)
        ctrl.beta = torch.full((), float(cfg.min_beta), device=device)
        return ctrl

    def update(self, kl_per_dim_mean: torch.Tensor) -> torch.Tensor:
        """Feed the latest mean KL/dim (a detached scalar tensor); returns the β for the next step."""
        self.kl_ema = self.ema_decay * self.kl_ema + (1 - self.ema_decay) * kl_per_dim_mean.float()
        error = self.target - self.kl_ema
        proportional = self.kp * torch.sigmoid(-error)
        trial_integral = self.integral - self.ki * error
        raw = self.min_beta + proportional + trial_integral
        saturated = ((raw > self.max_beta) & (error < 0)) | ((raw < self.min_beta) & (error > 0))
        self.integral = torch.where(saturated, self.integral, trial_integral)
        self.beta = (self.min_beta + proportional + self.integral).clamp(self.min_beta, self.max_beta)
        return self.beta

    def state_dict(self) -> dict:
        return {"integral": self.integral, "kl_ema": self.kl_ema, "beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        device = self.integral.device
        self.integral, self.kl_ema, self.beta = (state[k].to(device) for k in ("integral", "kl_ema", "beta"))
