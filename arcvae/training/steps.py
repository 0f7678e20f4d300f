"""One training step, and the running sums of its loss terms between two log records: what the
trainer and the overfit check share.

The step runs in the run's precision (precision.py), skips a non-finite update on the device, and
returns the loss breakdown without a host sync.
"""

from __future__ import annotations

import torch

from ..data.batches import Batch
from .losses import LOSS_TERMS, LossBreakdown, LossOptions, elbo
from .precision import Precision


def make_optimizer(model: torch.nn.Module, weight_decay: float, lr: float) -> torch.optim.Optimizer:
    # fused AdamW reads `found_inf` and skips the whole update on device: a NaN step costs no sync.
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def train_step(
    model,
    optimizer,
    batch: Batch,
    beta,
    options: LossOptions,
    precision: Precision,
    grad_clip: float,
    lr: float | None = None,
) -> tuple[LossBreakdown, torch.Tensor, torch.Tensor]:
    """One optimisation step at learning rate `lr` (None: the optimizer's as it is); returns the
    loss breakdown, the gradient norm and whether both were finite.

    A non-finite loss or gradient skips the update (on the device, no sync) instead of poisoning
    the weights; the caller counts skipped steps.
    """
    with precision.autocast():
        out = model(batch.grids)
    parts = elbo(out, batch.grids, batch.sizes, beta, options)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    parts.loss.backward()
    max_norm = grad_clip if grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    finite = torch.isfinite(grad_norm) & torch.isfinite(parts.loss)
    optimizer.found_inf = (~finite).float()
    optimizer.grad_scale = None
    optimizer.step()
    return parts, grad_norm, finite


def new_running(latent_dim: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Sums of the loss terms (in LOSS_TERMS order) over the steps since the last log, kept on the
    device; `metrics.loss_figures` turns them into means."""
    return {
        "terms": torch.zeros(len(LOSS_TERMS), device=device),
        "kl_per_dim": torch.zeros(latent_dim, device=device),
        "reached": torch.zeros(latent_dim, device=device),
        "n": torch.zeros((), device=device),
    }


def add_running(running: dict, parts: LossBreakdown, finite: torch.Tensor) -> None:
    # a skipped step's NaNs must not poison the means: multiply, then nan_to_num
    weight = finite.float()
    terms = torch.stack([getattr(parts, t) for t in LOSS_TERMS]).detach().float()
    running["terms"] += torch.nan_to_num(terms) * weight
    running["kl_per_dim"] += torch.nan_to_num(parts.kl_per_dim.detach().float()) * weight
    running["reached"] += parts.reached.float() * weight
    running["n"] += weight
