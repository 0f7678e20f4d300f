"""Figures of a model over batches of grids, in eval mode at the run's precision: accuracy and the
loss terms at z = μ, the bits (bits.py) at one z drawn from q(z|x)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from itertools import islice

import numpy as np
import torch

from .batches import Batch
from .bits import SAMPLE_SEED, add_bits, bit_figures, new_bit_sums, sample_generator
from .config import Config, latent_size
from .distributed import World, sum_across
from .layers import VAEOutput
from .losses import LossOptions, elbo, kl_per_sample_dim
from .metrics import add_batch, free_bits_figures, new_stats, summarize
from .precision import autocast


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
    """Figures at z = μ over these batches, what free bits did to them (`free_bits_figures`), and
    the bits at one seeded draw of z a grid. Under torchrun each process evaluates every
    world.size-th batch (drawing from a seed of its own) and the sums are added up."""
    stats = new_stats(latent_size(cfg.model, cfg.data.grid_size), device)
    bits = new_bit_sums(device)
    generator = sample_generator(device, SAMPLE_SEED + world.rank)
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
        with evaluating(net, cfg, device):
            add_bits(bits, net, out.mu, out.logvar, grids, sizes, generator)
    figures = summarize(sum_across(stats, world), cfg.monitor.active_threshold)
    return {
        **figures,
        **bit_figures(sum_across(bits, world)),
        **free_bits_figures(figures, options.free_bits),
    }


def predicted_grids(out: VAEOutput, sizes: torch.Tensor) -> list[np.ndarray]:
    """The argmax grids of an output decoded at the grids' own shapes (`forward`): cropped to
    those shapes, sizes (B, 2), where the model has a shape, the whole canvas otherwise."""
    pixels = out.logits.argmax(1).to(torch.uint8).cpu().numpy()  # (B, C, C)
    if out.size_logits is None:
        return list(pixels)
    return [grid[:h, :w] for grid, (h, w) in zip(pixels, sizes.tolist())]
