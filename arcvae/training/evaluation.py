"""Figures of a model over batches of grids, in eval mode at the run's precision: accuracy and the
loss terms at z = μ, the bits (bits.py) at one z drawn from q(z|x)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from itertools import islice

import numpy as np
import torch

from ..data.batches import Batch
from ..models.layers import VAEOutput
from .bits import (
    IWAE_SEED,
    LN2,
    SAMPLE_SEED,
    add_bits,
    bit_figures,
    iwae_nats,
    new_bit_sums,
    sample_generator,
)
from .distributed import ONE_PROCESS, World, sum_across
from .losses import LossOptions, elbo, kl_per_sample_dim
from .metrics import add_batch, free_bits_figures, new_stats, summarize
from .precision import Precision


@contextmanager
def evaluating(net: torch.nn.Module, precision: Precision):
    """Eval mode, no gradients, the run's precision; the net's mode is restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), precision.autocast():
            yield
    finally:
        net.train(was_training)


def decode_at_mean(net: torch.nn.Module, grids: torch.Tensor, precision: Precision) -> VAEOutput:
    """The model's output at z = μ (where docs/design.md measures accuracy), decoded on the input's
    canvas."""
    with evaluating(net, precision):
        return net(grids, sample=False)


@torch.no_grad()
def evaluate(
    net: torch.nn.Module,
    batches: Iterable[Batch],
    beta: float,
    options: LossOptions,
    precision: Precision,
    active_threshold: float,
    world: World = ONE_PROCESS,
    iwae_samples: int = 0,
) -> dict:
    """Figures at z = μ over these batches, what free bits did to them (`free_bits_figures`), and
    the bits at one seeded draw of z a grid; with `iwae_samples` K > 0 also the IWAE bound with K
    draws a grid (`iwae_bits`, what `evaluate` reports). The one loop training's evaluations and
    the `evaluate` command share. Under torchrun each process evaluates every world.size-th batch
    (drawing from a seed of its own) and the sums are added up."""
    device = precision.device
    stats = new_stats(net.latent_dim, device)
    bits = new_bit_sums(device)
    generator = sample_generator(device, SAMPLE_SEED + world.rank)
    importance = sample_generator(device, IWAE_SEED + world.rank)
    if iwae_samples:
        bits["iwae"] = torch.zeros((), dtype=torch.float64, device=device)
    for grids, sizes in islice(batches, world.rank, None, world.size):
        grids, sizes = grids.to(device), sizes.to(device)
        out = decode_at_mean(net, grids, precision)
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
        with evaluating(net, precision):
            add_bits(bits, net, out.mu, out.logvar, grids, sizes, generator)
            if iwae_samples:
                bounds = iwae_nats(net, out.mu, out.logvar, grids, sizes, iwae_samples, importance)
                bits["iwae"] += bounds.sum()
    figures = summarize(sum_across(stats, world), active_threshold)
    if names := getattr(net, "dim_names", None):  # a model that names its dims: the rate by part
        figures["rate_bits_by_part"] = rate_by_part(stats["kl_per_dim"] / stats["n"], names)
    return {
        **figures,
        **bit_figures(sum_across(bits, world)),
        **free_bits_figures(figures, options.free_bits),
    }


def rate_by_part(kl_per_dim: torch.Tensor, dim_names: list[str]) -> dict[str, float]:
    """Bits a grid of each named part (the name after 'slot k: ', a shape code's dims together),
    summed over the slots: kl_per_dim (D,) nats a grid, averaged over every grid."""
    parts: dict[str, float] = {}
    for kl, name in zip(kl_per_dim.tolist(), dim_names):
        part = name.split(": ")[-1].split(" ")[0]  # 'slot 2: shape 5' -> 'shape'
        parts[part] = parts.get(part, 0.0) + kl / LN2
    return parts


def predicted_grids(out: VAEOutput, sizes: torch.Tensor) -> list[np.ndarray]:
    """The argmax grids of an output decoded at the grids' own shapes (`forward`): cropped to
    those shapes, sizes (B, 2), where the model has a shape, the whole canvas otherwise."""
    pixels = out.logits.argmax(1).to(torch.uint8).cpu().numpy()  # (B, C, C)
    if out.size_logits is None:
        return list(pixels)
    return [grid[:h, :w] for grid, (h, w) in zip(pixels, sizes.tolist())]
