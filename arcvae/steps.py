"""The batch, the training step, evaluation and running sums: what the trainer and the overfit check
share.

Batches are built on the device (index, then augment); the step runs in bf16 autocast on CUDA,
skips non-finite updates on the device, and returns the loss breakdown without a host sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from itertools import islice
from typing import NamedTuple

import numpy as np
import torch

from .batches import (
    augment,
    batch_generator,
    bucket_batches,
    canvases_of,
    epoch_indices,
    eval_batches,
    mark_outside,
    take,
)
from .config import Config
from .data import Grids
from .distributed import World, sum_across
from .losses import LOSS_TERMS, LossBreakdown, LossOptions, elbo, kl_per_sample_dim
from .metrics import add_batch, new_stats, summarize
from .model import VAEOutput, generate


@cache
def native_bf16(device_type: str) -> bool:
    """Does this device compute bf16 natively (CUDA; a CPU with AVX-512 BF16 or AMX), not by
    emulation?"""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own CPU probes (private, present since 2.3); without them we cannot tell, so fp32.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    """train.precision: bf16, fp32, or auto = bf16 where the device has it natively."""
    return cfg.train.precision == "bf16" or (
        cfg.train.precision == "auto" and native_bf16(device.type)
    )


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast where `uses_bf16`; losses and figures are still computed in fp32/fp64."""
    return (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if uses_bf16(cfg, device)
        else nullcontext()
    )


class Batch(NamedTuple):
    """What a step trains on and a figure is measured on."""

    grids: (
        torch.Tensor
    )  # (B, C, C) uint8: the model's input and target; PAD outside the grids in symbol mode
    sizes: torch.Tensor  # (B, 2) each grid's rows and cols


def model_input(grids: torch.Tensor, sizes: torch.Tensor, cfg: Config) -> Batch:
    """Grids on a canvas as the model takes them: in symbol mode the padding is marked PAD."""
    return Batch(mark_outside(grids, sizes) if cfg.data.padding == "symbol" else grids, sizes)


def epoch_plan(
    train: Grids, cfg: Config, epoch: int, n_batches: int
) -> list[tuple[int, torch.Tensor]]:
    """The epoch's `n_batches` global batches as (canvas, grid indices), rebuilt from (seed, epoch)
    on resume.

    The grids drawn are the first n_batches·batch_size of shuffled passes over the data
    (`epoch_indices`): every grid equally often. Black mode batches them in that order on the one
    canvas; symbol mode groups the same grids into size buckets (`bucket_batches`), so a batch is
    padded only to its bucket.
    """
    size = cfg.train.batch_size
    generator = batch_generator(cfg.train.seed, epoch, 0, train.pixels.device)
    order = epoch_indices(len(train), cfg.data.samples_per_epoch, generator, train.pixels.device)[
        : n_batches * size
    ]
    if cfg.data.padding == "black":
        return [(cfg.data.grid_size, chunk) for chunk in order.view(n_batches, size).unbind(0)]
    return bucket_batches(order, canvases_of(train.sizes, cfg.data), size, generator)


def make_batch(
    train: Grids, plan: list, cfg: Config, epoch: int, b: int, world: World = World()
) -> Batch:
    """This process's share of global batch b, cropped to its canvas and augmented on the data's
    device."""
    chunk = b * world.size + world.rank  # plan entry k; a single process takes entry b
    canvas, idx = plan[chunk]
    grids, sizes = take(train, idx, canvas)
    if cfg.data.augment:
        grids, sizes = augment(
            grids, sizes, batch_generator(cfg.train.seed, epoch, chunk + 1, grids.device)
        )
    return model_input(grids, sizes, cfg)


def grid_batches(
    grids: Grids, cfg: Config, batch_size: int
) -> Iterator[tuple[torch.Tensor, Batch]]:
    """Every grid once, unaugmented, as (indices, batch) on its own canvas, grouped by canvas."""
    for canvas, idx in eval_batches(grids, batch_size, canvases_of(grids.sizes, cfg.data)):
        yield idx, model_input(*take(grids, idx, canvas), cfg)


def make_optimizer(model: torch.nn.Module, cfg: Config, lr: float) -> torch.optim.Optimizer:
    # fused AdamW reads `found_inf` and skips the whole update on device: a NaN step costs no sync.
    return torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=cfg.train.weight_decay, fused=True
    )


def train_step(
    model, optimizer, batch: Batch, beta, options, cfg: Config, device, lr: float | None = None
) -> tuple[LossBreakdown, torch.Tensor, torch.Tensor]:
    """One optimisation step at learning rate `lr` (None: the optimizer's as it is); returns the
    loss breakdown, the gradient norm and whether both were finite.

    A non-finite loss or gradient skips the update (on the device, no sync) instead of poisoning
    the weights; the caller counts skipped steps.
    """
    with autocast(cfg, device):
        out = model(batch.grids)
    parts = elbo(out, batch.grids, batch.sizes, beta, options)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    parts.loss.backward()
    max_norm = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    finite = torch.isfinite(grad_norm) & torch.isfinite(parts.loss)
    optimizer.found_inf = (~finite).float()
    optimizer.grad_scale = None
    optimizer.step()
    return parts, grad_norm, finite


@contextmanager
def evaluating(net: torch.nn.Module, cfg: Config, device: torch.device):
    """Eval mode, no gradients, the run's precision; the net's mode is restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), autocast(cfg, device):
            yield
    finally:
        net.train(was_training)


def decode_at_mean(
    net: torch.nn.Module, grids: torch.Tensor, cfg: Config, device: torch.device
) -> VAEOutput:
    """The model's output at z = μ (where docs/design.md measures accuracy), decoded on the input's
    canvas."""
    with evaluating(net, cfg, device):
        return net(grids, sample=False)


@torch.no_grad()
def evaluate(
    net: torch.nn.Module,
    batches: Iterable[Batch],
    beta: float,
    options: LossOptions,
    cfg: Config,
    device,
    world: World = World(),
) -> dict:
    """Figures at z = μ over these batches. Under torchrun each process evaluates every
    world.size-th batch and the sums are added up."""
    stats = new_stats(cfg.model.latent_dim, device)
    for grids, sizes in islice(batches, world.rank, None, world.size):
        grids, sizes = grids.to(device), sizes.to(device)
        out = decode_at_mean(net, grids, cfg, device)
        parts = elbo(out, grids, sizes, beta, options)
        add_batch(
            stats,
            out.logits,
            grids,
            sizes,
            out.mu,
            kl_per_sample_dim(out.mu, out.logvar),
            parts,
            out.size_logits,
        )
    return summarize(sum_across(stats, world), cfg.monitor.active_threshold)


def predicted_grids(out: VAEOutput) -> list[np.ndarray]:
    """The argmax grids of a teacher-forced output: cropped to the predicted shape where the model
    predicts it (and it fits the canvas), the whole canvas otherwise."""
    pixels = out.logits.argmax(1).to(torch.uint8).cpu().numpy()  # (B, C, C)
    if out.size_logits is None:
        return list(pixels)
    sizes = (out.size_logits.argmax(-1) + 1).tolist()
    return [grid[:h, :w] for grid, (h, w) in zip(pixels, sizes)]


def encode_grids(
    net: torch.nn.Module, grids: Grids, cfg: Config, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and log σ² (N, D) float32 on the CPU: each grid encoded on its own canvas, in the grids'
    order."""
    mu = torch.empty(len(grids), cfg.model.latent_dim)
    logvar = torch.empty(len(grids), cfg.model.latent_dim)
    for idx, batch in grid_batches(grids, cfg, cfg.train.batch_size):
        with evaluating(net, cfg, device):
            batch_mu, batch_logvar = net.encode(batch.grids.to(device))
        idx = idx.cpu()
        mu[idx] = batch_mu.float().cpu()
        logvar[idx] = batch_logvar.float().cpu()
    return mu, logvar


def decode_latents(
    net: torch.nn.Module, z: torch.Tensor, cfg: Config, device: torch.device
) -> list[np.ndarray]:
    """z (N, D) decoded free-running (`generate`), a batch at a time: grids of their predicted shape
    in symbol mode, the whole canvas in black mode."""
    out: list[np.ndarray] = []
    for chunk in z.split(cfg.train.batch_size):
        with evaluating(net, cfg, device):
            out += generate(net, chunk.to(device), cfg.data.bucket_multiple, cfg.data.grid_size)
    return out


def reconstruct(
    net: torch.nn.Module, grids: Grids, cfg: Config, device: torch.device
) -> list[np.ndarray]:
    """Each grid encoded at z = μ on its own canvas and decoded free-running, in the grids'
    order."""
    return decode_latents(net, encode_grids(net, grids, cfg, device)[0], cfg, device)


def new_running(latent_dim: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Sums of the loss terms (in LOSS_TERMS order) over the steps since the last log, kept on the
    device; `metrics.loss_figures` turns them into means."""
    return {
        "terms": torch.zeros(len(LOSS_TERMS), device=device),
        "kl_per_dim": torch.zeros(latent_dim, device=device),
        "n": torch.zeros((), device=device),
    }


def add_running(running: dict, parts: LossBreakdown, finite: torch.Tensor) -> None:
    weight = (
        finite.float()
    )  # a skipped step's NaNs must not poison the means: multiply, then nan_to_num
    terms = torch.stack([getattr(parts, t) for t in LOSS_TERMS]).detach().float()
    running["terms"] += torch.nan_to_num(terms) * weight
    running["kl_per_dim"] += torch.nan_to_num(parts.kl_per_dim.detach().float()) * weight
    running["n"] += weight
