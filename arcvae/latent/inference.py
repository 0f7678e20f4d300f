"""A trained model on grids: encode each on its own canvas, decode latents to grids of given
shapes or free-running to their predicted shape. What `load_run`, the latent commands and the
run's pictures use."""

from __future__ import annotations

import numpy as np
import torch

from ..config import Config, latent_size
from ..data.batches import canvases_of, grid_batches
from ..data.grids import Grids
from ..models.build import generate
from ..training.evaluation import evaluating
from ..training.losses import kl_per_sample_dim
from ..training.precision import Precision


def encode_grids(
    net: torch.nn.Module, grids: Grids, cfg: Config, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and log σ² (N, D) float32 on the CPU: each grid encoded on its own canvas, in the grids'
    order."""
    mu = torch.empty(len(grids), latent_size(cfg.model, cfg.data.grid_size))
    logvar = torch.empty(len(grids), latent_size(cfg.model, cfg.data.grid_size))
    for idx, batch in grid_batches(grids, cfg, cfg.train.batch_size):
        with evaluating(net, Precision.decide(cfg.train.precision, device)):
            batch_mu, batch_logvar = net.encode(batch.grids.to(device))
        idx = idx.cpu()
        mu[idx] = batch_mu.float().cpu()
        logvar[idx] = batch_logvar.float().cpu()
    return mu, logvar


def reached_by(net: torch.nn.Module, grids: Grids, cfg: Config) -> torch.Tensor:
    """(N, D) bool: the dims each grid reaches, as training judges them: those of its canvas
    (`reached_dims`; the cells beyond a small canvas are the prior for that grid) and, for a
    model whose dims are in use per grid (`grid_dims`: a slot model's present slots), the grid's."""
    reached = torch.ones(len(grids), latent_size(cfg.model, cfg.data.grid_size), dtype=torch.bool)
    canvases = canvases_of(grids.sizes, cfg.data)
    for canvas in canvases.unique().tolist():
        dims = net.reached_dims(canvas, torch.device("cpu"))
        if dims is not None:
            reached[canvases == canvas] = dims
    if hasattr(net, "grid_dims"):  # weightless: parsed where the grids are
        for start in range(0, len(grids), 4096):
            chunk = grids.pixels[start : start + 4096].long()
            reached[start : start + 4096] &= net.grid_dims(chunk).cpu()
    return reached


def kl_over_reached(mu: torch.Tensor, logvar: torch.Tensor, reached: torch.Tensor) -> np.ndarray:
    """(D,) each dim's KL(q(z|x) ‖ p(z)) averaged over the grids that reach it (0 where none does):
    the figure training logs as kl_per_dim. mu, logvar (N, D); reached (N, D) bool."""
    kl = kl_per_sample_dim(mu, logvar) * reached
    return (kl.sum(0) / reached.sum(0).clamp(min=1)).numpy()


def decode_latents(
    net: torch.nn.Module,
    z: torch.Tensor,
    cfg: Config,
    device: torch.device,
    sizes: torch.Tensor | None = None,
) -> list[np.ndarray]:
    """z (N, D) decoded (`generate`), a batch at a time: in symbol mode grids of the shapes `sizes`
    (N, 2), or free-running of their predicted shape; the whole canvas in black mode."""
    out: list[np.ndarray] = []
    for start in range(0, len(z), cfg.train.batch_size):
        chunk = z[start : start + cfg.train.batch_size].to(device)
        shapes = None if sizes is None else sizes[start : start + cfg.train.batch_size]
        with evaluating(net, Precision.decide(cfg.train.precision, device)):
            out += generate(net, chunk, cfg.data.bucket_multiple, cfg.data.grid_size, shapes)
    return out


def reconstruct(
    net: torch.nn.Module, grids: Grids, cfg: Config, device: torch.device
) -> list[np.ndarray]:
    """Each grid encoded at z = μ on its own canvas and decoded at its own shape (the shape is
    coded exactly), in the grids' order."""
    mu = encode_grids(net, grids, cfg, device)[0]
    return decode_latents(net, mu, cfg, device, grids.sizes)
