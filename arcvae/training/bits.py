"""What a grid costs to code, in bits: the model's bounds on −log2 p(x) beside lossless codes.

A VAE is a code for x. Its rate is KL(q(z|x) ‖ p(z)), what z tells about the grid; its distortion
is −log p(x|z) at one z ~ q(z|x), what is left to code once z is known; rate + distortion is the
negative ELBO, the β = 1 bound on −log p(x). The importance-weighted bound (Burda et al. 2016,
https://arxiv.org/abs/1509.00519), −log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x) with z_k ~ q(z|x),
is tighter (never above the ELBO's, up to sampling noise) and tends to −log p(x) as K grows.
Everything is in bits per grid (nats / ln 2).

p(x|z) is the model's plain likelihood (docs/design.md): the unweighted cross-entropy of the grid's
own pixels plus the shape term (`shape_loss`) in symbol mode, of every pixel of the canvas in black
mode, as `losses.elbo` counts them with `loss.recon: ce`. Class weights and focal factors are
training devices and never enter it.

The lossless baselines code each grid as its shape (rows, cols) then one colour a pixel, row by row.
"""

from __future__ import annotations

import lzma
import math
import zlib

import numpy as np
import torch

from ..canvas import MAX_SIDE, N_COLOURS
from .losses import kl_per_sample_dim, reconstruction

LN2 = math.log(2)
# The draws of z ~ q(z|x) start from this seed in every evaluation, so that two evaluations of the
# same model give the same figures and a change in them is the model's.
SAMPLE_SEED = 0
# The importance samples' draws: a stream of their own, far from the seeds of the evaluation's
# processes (SAMPLE_SEED + rank).
IWAE_SEED = 2**31
SHAPE_BITS = math.log2(MAX_SIDE**2)  # rows and cols, each one of 1..30, uniform
# The figures an evaluation record and summary.json carry, bits per grid.
BIT_FIGURES = ("rate_bits", "distortion_bits", "neg_elbo_bits")


# ---------------------------------------------------------------- the model's code


def sample_generator(device: torch.device | str, seed: int = SAMPLE_SEED) -> torch.Generator:
    """A fresh generator for one evaluation's draws, on the device the draws are made on."""
    return torch.Generator(device=device).manual_seed(seed)


def draw(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """z = μ + σ·ε with ε ~ N(0, I) from `generator`: z and ε (B, D) float32."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device)
    return mu.float() + eps * (0.5 * logvar.float()).exp(), eps


def neg_log_likelihood(
    net: torch.nn.Module, z: torch.Tensor, grids: torch.Tensor, sizes: torch.Tensor
) -> torch.Tensor:
    """−log p(x|z) in nats per grid (B,): z (B, D) decoded on the grids' canvas, grids (B, C, C) as
    the model takes them (PAD outside the grids in symbol mode), sizes (B, 2). Call it where the
    model is evaluated (`evaluation.evaluating`). In symbol mode the pixels are decoded at the
    grid's own shape and the shape is coded at -log p(shape|z)."""
    logits, size_logits = net.decode(z, grids.shape[-1], sizes)
    pixels, shape = reconstruction(logits, size_logits, grids, sizes, net.padding)
    return pixels + shape


def new_bit_sums(device: torch.device | str) -> dict[str, torch.Tensor]:
    """Zeroed sums in nats over the grids seen; `add_bits` adds to them, `bit_figures` reads
    them."""
    return {
        k: torch.zeros((), dtype=torch.float64, device=device) for k in ("grids", "rate", "nll")
    }


def add_bits(
    sums: dict[str, torch.Tensor],
    net: torch.nn.Module,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    grids: torch.Tensor,
    sizes: torch.Tensor,
    generator: torch.Generator,
) -> None:
    """One batch's rate (the KL summed over dimensions) and distortion (at one z ~ q(z|x) a grid,
    one more decode of the batch), in place and without host syncs. mu, logvar (B, D) the
    posterior of grids (B, C, C)."""
    z, _ = draw(mu, logvar, generator)
    sums["grids"] += grids.shape[0]
    sums["rate"] += kl_per_sample_dim(mu, logvar).double().sum()
    sums["nll"] += neg_log_likelihood(net, z, grids, sizes).double().sum()


def bit_figures(sums: dict[str, torch.Tensor]) -> dict[str, float]:
    """The BIT_FIGURES of the sums: bits per grid, means over the grids."""
    n = max(sums["grids"].item(), 1.0)
    rate = sums["rate"].item() / n / LN2
    distortion = sums["nll"].item() / n / LN2
    figures = {"rate_bits": rate, "distortion_bits": distortion, "neg_elbo_bits": rate + distortion}
    if "iwae" in sums:  # the IWAE bound, where it was measured (`evaluate --k`)
        figures["iwae_bits"] = sums["iwae"].item() / n / LN2
    return figures


def iwae_nats(
    net: torch.nn.Module,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    grids: torch.Tensor,
    sizes: torch.Tensor,
    k: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """The importance-weighted bound with k samples, in nats per grid (B,) float64: k decodes of the
    batch, one after the other, so memory stays that of one batch. Call it as
    `neg_log_likelihood`."""
    log_weights = []
    for _ in range(k):
        z, eps = draw(mu, logvar, generator)
        # log p(z) − log q(z|x) of diagonal Gaussians, z = μ + σ·ε: the log 2π terms cancel
        log_prior_ratio = 0.5 * (eps.double().pow(2) + logvar.double() - z.double().pow(2)).sum(1)
        log_weights.append(log_prior_ratio - neg_log_likelihood(net, z, grids, sizes).double())
    # The weights span hundreds of nats: average them in log space.
    return math.log(k) - torch.logsumexp(torch.stack(log_weights), dim=0)


# ---------------------------------------------------------------- lossless baselines


def grid_bytes(grid: np.ndarray) -> bytes:
    """A grid as the lossless codes read it: 2 bytes of shape (rows, cols), then a byte a pixel."""
    return bytes(grid.shape) + grid.astype(np.uint8).tobytes()


def colour_entropy(grids: list[np.ndarray]) -> float:
    """Bits a pixel of the colours' frequencies over all the grids' pixels (order 0)."""
    counts = np.bincount(np.concatenate([g.ravel() for g in grids]), minlength=N_COLOURS)
    share = counts[counts > 0] / counts.sum()
    return float((share * np.log2(1 / share)).sum())


def baselines(grids: list[np.ndarray]) -> dict[str, float]:
    """Lossless codes of these grids (rows, cols; at least one grid), bits per grid, means over the
    grids: `uniform` (log2 10 a pixel), `order0` (the colour entropy a pixel), both plus SHAPE_BITS;
    `deflate_per_grid` (zlib level 9 of each grid's bytes); `xz_whole_set` (lzma -9e of all of them
    at once, per grid: what a code that sees the whole set can share between grids)."""
    pixels = float(np.mean([g.size for g in grids]))
    codes = [grid_bytes(g) for g in grids]
    whole = lzma.compress(b"".join(codes), preset=9 | lzma.PRESET_EXTREME)
    return {
        "uniform": pixels * math.log2(N_COLOURS) + SHAPE_BITS,
        "order0": pixels * colour_entropy(grids) + SHAPE_BITS,
        "deflate_per_grid": 8 * float(np.mean([len(zlib.compress(c, 9)) for c in codes])),
        "xz_whole_set": 8 * len(whole) / len(grids),
    }
