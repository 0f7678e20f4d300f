"""The batch, the training step, evaluation and running sums: what the trainer and the overfit check share.

Batches are built on the device (index, then augment); the step runs in bf16 autocast on CUDA,
skips non-finite updates on the device, and returns the loss breakdown without a host sync.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import cache

import torch

from .config import Config
from .data import Grids, augment, batch_generator
from .distributed import World, sum_across
from .losses import LOSS_TERMS, LossBreakdown, LossOptions, elbo, kl_per_sample_dim
from .metrics import add_batch, new_stats, summarize
from .model import VAEOutput


@cache
def native_bf16(device_type: str) -> bool:
    """Does this device compute bf16 natively (CUDA; a CPU with AVX-512 BF16 or AMX), not by emulation?"""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own CPU probes (private, present since 2.3); without them we cannot tell, so fp32.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    """train.precision: bf16, fp32, or auto = bf16 where the device has it natively."""
    return cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and native_bf16(device.type))


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast where `uses_bf16`; losses and figures are still computed in fp32/fp64."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if uses_bf16(cfg, device) else nullcontext()


def make_batch(train: Grids, order: torch.Tensor, cfg: Config, epoch: int, b: int, world: World = World()) -> torch.Tensor:
    """This process's share of global batch b: (B, S, S) uint8, indexed and augmented on the data's device."""
    chunk = b * world.size + world.rank  # chunk k of the epoch order; a single process takes chunk b
    idx = order[chunk * cfg.train.batch_size:(chunk + 1) * cfg.train.batch_size]
    pixels = train.pixels[idx]
    if not cfg.data.augment:
        return pixels
    return augment(pixels, train.sizes[idx], batch_generator(cfg.train.seed, epoch, chunk + 1, pixels.device))


def make_optimizer(model: torch.nn.Module, cfg: Config, lr: float) -> torch.optim.Optimizer:
    # fused AdamW reads `found_inf` and skips the whole update on device: a NaN step costs no sync.
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.train.weight_decay, fused=True)


def train_step(model, optimizer, batch, beta, options, cfg: Config, device) -> tuple[LossBreakdown, torch.Tensor, torch.Tensor]:
    """One optimisation step; returns the loss breakdown, the gradient norm and whether both were finite.

    A non-finite loss or gradient skips the update (on the device, no sync) instead of poisoning
    the weights; the caller counts skipped steps.
    """
    with autocast(cfg, device):
        out = model(batch)
    parts = elbo(out.logits, batch, out.mu, out.logvar, beta, options)
    optimizer.zero_grad(set_to_none=True)
    parts.loss.backward()
    max_norm = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    finite = torch.isfinite(grad_norm) & torch.isfinite(parts.loss)
    optimizer.found_inf = (~finite).float()
    optimizer.grad_scale = None
    optimizer.step()
    return parts, grad_norm, finite


@torch.no_grad()
def decode_at_mean(net: torch.nn.Module, batch: torch.Tensor, cfg: Config, device: torch.device) -> VAEOutput:
    """The model's output at z = μ (where DESIGN.md measures accuracy), in eval mode, restoring its mode."""
    was_training = net.training
    net.eval()
    with autocast(cfg, device):
        out = net(batch, sample=False)
    net.train(was_training)
    return out


@torch.no_grad()
def evaluate(net: torch.nn.Module, pixels: torch.Tensor, beta: float, options: LossOptions, cfg: Config, device,
             world: World = World(), batch_size: int | None = None) -> dict:
    """Figures over grids (N, S, S) at z = μ, in batches of `batch_size` (default train.batch_size).

    Under torchrun each process evaluates every world.size-th batch and the sums are added up.
    """
    stats = new_stats(cfg.model.latent_dim, device)
    step = batch_size or cfg.train.batch_size
    for start in range(world.rank * step, len(pixels), step * world.size):
        batch = pixels[start:start + step].to(device)
        out = decode_at_mean(net, batch, cfg, device)
        parts = elbo(out.logits, batch, out.mu, out.logvar, beta, options)
        add_batch(stats, out.logits, batch, out.mu, kl_per_sample_dim(out.mu, out.logvar), parts)
    return summarize(sum_across(stats, world), cfg.monitor.active_threshold)


def new_running(latent_dim: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Sums of the loss terms (in LOSS_TERMS order) over the steps since the last log, kept on the device;
    `metrics.loss_figures` turns them into means."""
    return {"terms": torch.zeros(len(LOSS_TERMS), device=device), "kl_per_dim": torch.zeros(latent_dim, device=device),
            "n": torch.zeros((), device=device)}


def add_running(running: dict, parts: LossBreakdown, finite: torch.Tensor) -> None:
    weight = finite.float()  # a skipped step's NaNs must not poison the means: multiply, then nan_to_num
    terms = torch.stack([getattr(parts, t) for t in LOSS_TERMS]).detach().float()
    running["terms"] += torch.nan_to_num(terms) * weight
    running["kl_per_dim"] += torch.nan_to_num(parts.kl_per_dim.detach().float()) * weight
    running["n"] += weight
