"""The ELBO and its parts, at the scale fixed in docs/design.md.

Reconstruction: sum over a grid's pixels of the per-pixel loss (`loss.reduction: mean` divides it by
the pixels counted, the scaling in which users met the collapse at β = 0.01); KL: sum over latent
dimensions; both per sample, then averaged over the batch; loss = recon + β·KL'. KL' applies free
bits (Kingma et al. 2016, https://arxiv.org/abs/1606.04934): Σ_d max(λ, KL_d) over the dims the
batch's canvas reaches (`VAEOutput.reached`); a cell beyond the canvas is the prior, KL 0, and is
granted no floor, so KL' − KL is what the floor exempts on grids that have the dim.

Padding (`data.padding`): black mode counts every pixel of the canvas (the padding is black, and
predicting it is part of the task). Symbol mode counts only each grid's own pixels, and adds the
shape term -log p(rows|z) - log p(cols|z) (plain cross-entropy on the size heads) to the
reconstruction, since the shape is part of x: recon = Σ_own pixels + shape.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..canvas import Padding
from ..config import LossConfig
from ..models.layers import VAEOutput


@dataclass
class LossBreakdown:
    loss: torch.Tensor  # scalar: recon + β·kl_clamped, what is minimised
    recon: torch.Tensor  # scalar: per-sample reconstruction (pixels + shape), batch mean
    # scalar: the shape term of recon, -log p(rows, cols | z), batch mean (0 in black mode)
    shape: torch.Tensor
    kl: torch.Tensor  # scalar: the true KL (Σ_d), batch mean
    kl_clamped: torch.Tensor  # scalar: KL' after free bits
    kl_per_dim: torch.Tensor  # (D,): true KL of each dimension, batch mean
    # (D,) float: the share of the batch's grids that reach the dim (`reached_share`): 1 or 0 for a
    # canvas, any share for a slot model's per-grid dims
    reached: torch.Tensor

    def kl_dim_mean(self) -> torch.Tensor:
        """The mean KL of a dim where it is in use (what `adaptive` holds): over the dims this
        batch's canvas reaches, and for a slot model over the grids that use each dim."""
        return (self.kl_per_dim * (self.reached > 0)).sum() / self.reached.sum()


# The scalar terms, by name: what is summed, logged and summarised wherever a breakdown is recorded.
LOSS_TERMS = tuple(f.name for f in fields(LossBreakdown) if f.name not in ("kl_per_dim", "reached"))


def uses_class_weights(cfg: LossConfig) -> bool:
    """The one rule: class weights apply to weighted_ce and focal; plain ce is unweighted by
    definition."""
    return cfg.class_weights != "none" and cfg.recon != "ce"


@dataclass(frozen=True)
class LossOptions:
    """Everything `elbo` needs besides the batch and β, typed (from the loss.* config)."""

    recon: str = "ce"  # ce | weighted_ce | focal
    reduction: str = "sum"  # sum | mean: over the counted pixels of each grid
    gamma: float = 2.0  # focal exponent
    free_bits: float = 0.0  # λ, nats per latent dimension
    free_bits_mode: str = "batch"  # batch | sample
    class_weights: torch.Tensor | None = None  # (10,) from the whole training set, or None
    padding: Padding = Padding.BLACK  # symbol: own pixels only, plus the shape term

    def __post_init__(self):
        object.__setattr__(self, "padding", Padding(self.padding))  # "symbol" given as a str

    @classmethod
    def from_config(
        cls,
        cfg: LossConfig,
        class_weights: torch.Tensor | None = None,
        padding: Padding = Padding.BLACK,
    ) -> LossOptions:
        """From loss.* and data.padding."""
        return cls(
            cfg.recon,
            cfg.reduction,
            cfg.focal_gamma,
            cfg.free_bits,
            cfg.free_bits_mode,
            class_weights if uses_class_weights(cfg) else None,
            Padding(padding),
        )


def recon_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    kind: str = "ce",
    class_weights: torch.Tensor | None = None,
    gamma: float = 2.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample reconstruction loss (B,), summed over pixels (over the pixels where `mask` is
    True).

    ce: cross-entropy; weighted_ce: cross-entropy × w[target]; focal (Lin et al. 2017,
    https://arxiv.org/abs/1708.02002): -α_t (1 - p_t)^γ log p_t with α = the class weights.
    Whether a kind takes weights is decided once, in `uses_class_weights`; weights given are
    applied. logits (B, 10, H, W), target (B, H, W); mask (B, H, W) bool or None (every pixel).
    Outside the mask the target may hold anything (PAD) and the logits anything (even inf): neither
    counts.
    """
    if kind not in ("ce", "weighted_ce", "focal"):
        raise ValueError(f"unknown reconstruction loss '{kind}'")
    target = target.long()
    if mask is not None:
        target = target.masked_fill(~mask, 0)
    log_p = F.log_softmax(logits.float(), dim=1)
    log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (B, H, W)
    per_pixel = -log_pt
    if kind == "focal" and gamma > 0:
        per_pixel = per_pixel * (1 - log_pt.exp()).pow(gamma)
    if class_weights is not None:
        per_pixel = per_pixel * class_weights[target]
    if mask is not None:
        per_pixel = torch.where(
            mask, per_pixel, torch.zeros((), dtype=per_pixel.dtype, device=per_pixel.device)
        )
    return per_pixel.flatten(1).sum(1)


def shape_loss(size_logits: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Per-sample -log p(rows|z) - log p(cols|z) (B,): size_logits (B, 2, 30), sizes (B, 2) in
    1..30."""
    B = size_logits.shape[0]
    nll = F.cross_entropy(
        size_logits.float().reshape(B * 2, -1), (sizes.long() - 1).reshape(B * 2), reduction="none"
    )
    return nll.view(B, 2).sum(1)


def kl_per_sample_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per sample and dimension, (B, D)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)


def reached_share(reached: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(D,) the share of a batch's grids where each dim is in use, in `like`'s dtype: `reached` as
    it is for a canvas's (D,) mask, the batch mean of a per-grid (B, D) one."""
    reached = reached.to(like.dtype)
    return reached.mean(0) if reached.ndim == 2 else reached


def free_bits_kl(
    kl: torch.Tensor, free_bits: float, mode: str = "batch", reached: torch.Tensor | None = None
) -> torch.Tensor:
    """KL' per sample (B,) with a floor of `free_bits` nats on each dimension where it is in use
    (`reached` (D,) or (B, D) bool, `VAEOutput.reached`; None: every one).

    batch: clamp each dimension's batch-mean KL (the docs/design.md default), so the gradient of a
    dimension is zero while its mean KL is below λ. sample: clamp each sample's KL_d.
    The result, averaged over the batch, is Σ_d max(λ, mean_b KL_bd) in batch mode.
    """
    if free_bits <= 0:
        return kl.sum(1)
    if mode == "sample":
        floor = kl.new_tensor(free_bits) if reached is None else free_bits * reached.to(kl.dtype)
        return torch.maximum(kl, floor).sum(1)
    # A dim beyond the canvas (or an absent slot's) is the prior there: KL 0, and no floor; a dim
    # in use in a share s of the grids is floored at s·λ, i.e. λ over the grids that use it.
    floor = free_bits * (torch.ones_like(kl[0]) if reached is None else reached_share(reached, kl))
    per_dim = kl.mean(0)  # (D,)
    clamped = torch.maximum(per_dim, floor)
    # Spread the clamped total evenly over samples so that .mean() gives Σ_d max(λ, KL_d).
    return clamped.sum().expand(kl.shape[0])


def reconstruction(
    logits: torch.Tensor,
    size_logits: torch.Tensor | None,
    grids: torch.Tensor,
    sizes: torch.Tensor | None,
    padding: Padding,
    kind: str = "ce",
    class_weights: torch.Tensor | None = None,
    gamma: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per grid (B,): the loss of the pixels the padding counts (every pixel of the canvas in black
    mode, black padding included; the grid's own in symbol mode) and of its shape (0 in black
    mode). The one place the padding decides what a likelihood counts: `elbo` and bits.py."""
    padding = Padding(padding)
    if not padding.symbol:
        pixels = recon_loss(logits, grids, kind, class_weights, gamma)
        return pixels, torch.zeros_like(pixels)
    if sizes is None or size_logits is None:
        raise ValueError("symbol-mode elbo needs the grids' sizes and the model's size logits")
    mask = padding.counted(sizes, grids.shape[-1])
    pixels = recon_loss(logits, grids, kind, class_weights, gamma, mask)
    return pixels, shape_loss(size_logits, sizes)


def elbo(
    out: VAEOutput,
    grids: torch.Tensor,
    sizes: torch.Tensor | None,
    beta: float | torch.Tensor,
    options: LossOptions = LossOptions(),
) -> LossBreakdown:
    """The loss of one batch: out, the model's output for `grids` (B, C, C) (colours, and in symbol
    mode anything, e.g. PAD, outside the grids); sizes (B, 2) the grids' rows and cols (used in
    symbol mode only: black mode may pass None)."""
    pixels, shape = reconstruction(
        out.logits,
        out.size_logits,
        grids,
        sizes,
        options.padding,
        options.recon,
        options.class_weights,
        options.gamma,
    )
    if options.reduction == "mean":  # the seed's scaling: a mean over the pixels counted
        counted = options.padding.counted(sizes, grids.shape[-1])
        pixels = pixels / (grids[0].numel() if counted is None else counted.flatten(1).sum(1))
    rec = pixels.mean() + shape.mean()
    kl = kl_per_sample_dim(out.mu, out.logvar)  # (B, D)
    kl_clamped = free_bits_kl(kl, options.free_bits, options.free_bits_mode, out.reached).mean()
    reached = torch.ones_like(kl[0]) if out.reached is None else reached_share(out.reached, kl)
    return LossBreakdown(
        loss=rec + beta * kl_clamped,
        recon=rec,
        shape=shape.mean(),
        kl=kl.sum(1).mean(),
        kl_clamped=kl_clamped,
        kl_per_dim=kl.mean(0),
        reached=reached,
    )
