"""β-VAEs for categorical grids (Kingma & Welling 2014; Higgins et al. 2017), made by `build_model`.

The contract every architecture meets (what training, evaluation, checkpoints and pictures rely on):
- `encode(grids) -> (mu, logvar)`: grids (B, S, S) integer colours 0-9 padded to the canvas S;
  mu and logvar (B, D), the diagonal Gaussian posterior q(z|x) with D = `latent_dim`.
- `decode(z) -> logits`: z (B, D) -> (B, 10, S, S) unnormalised colour scores per pixel.
- `forward(grids, sample=True) -> VAEOutput(logits, mu, logvar)`: encode, draw z = μ + σ·ε
  (z = μ when `sample` is False: where accuracy is measured), decode.
- `latent_dim`: D. Parameters only; no loss inside (β is scheduled by the trainer).
A new architecture is a class meeting this contract, a name in `ARCHITECTURES` and in the
`model.arch` choices of config.py.

`conv`: colours are embedded (not one-hot) so the first convolution sees a dense input; strided
convolutions halve the grid down to a few cells, a linear layer gives μ and log σ²; the decoder
mirrors it with nearest-neighbour upsampling to the exact encoder sizes and ends in 10 logits per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, ModelConfig
from .data import N_COLOURS


@dataclass
class VAEOutput:
    logits: torch.Tensor  # (B, 10, S, S)
    mu: torch.Tensor      # (B, D)
    logvar: torch.Tensor  # (B, D)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GELU())


class GridVAE(nn.Module):
    def __init__(self, cfg: ModelConfig, grid_size: int):
        super().__init__()
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.embed = nn.Embedding(N_COLOURS, cfg.embed_dim)
        # Encoder: a full-resolution conv, then one stride-2 conv per width.
        self.sizes = [grid_size]
        for _ in widths:
            self.sizes.append((self.sizes[-1] + 1) // 2)
        self.encoder = nn.Sequential(
            _conv(cfg.embed_dim, widths[0]),
            *[_conv(c_in, c_out, stride=2) for c_in, c_out in zip([widths[0]] + widths[:-1], widths)],
        )
        bottom = widths[-1] * self.sizes[-1] ** 2
        self.to_stats = nn.Linear(bottom, 2 * cfg.latent_dim)
        # Decoder: the mirror image; upsample to each stored size then convolve.
        self.from_latent = nn.Linear(cfg.latent_dim, bottom)
        self.up_convs = nn.ModuleList(
            _conv(c_in, c_out) for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [widths[0]])
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)
        self.widths = widths

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, S) integer colours -> μ, log σ² each (B, D)."""
        h = self.embed(grids.long()).permute(0, 3, 1, 2)  # (B, E, S, S)
        h = self.encoder(h).flatten(1)                    # (B, C * s * s)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> logits (B, 10, S, S)."""
        s = self.sizes[-1]
        h = F.gelu(self.from_latent(z)).view(-1, self.widths[-1], s, s)
        for conv, size in zip(self.up_convs, self.sizes[-2::-1]):
            h = conv(F.interpolate(h, size=(size, size), mode="nearest"))
        return self.to_logits(h)

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        """Encode, reparameterise (z = μ + σ·ε, or z = μ when `sample` is False), decode."""
        mu, logvar = self.encode(grids)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return VAEOutput(self.decode(z), mu, logvar)


ARCHITECTURES = {"conv": GridVAE}


def build_model(cfg: Config) -> nn.Module:
    """The one place a model is made: the `model.arch` architecture for the data's canvas."""
    return ARCHITECTURES[cfg.model.arch](cfg.model, cfg.data.grid_size)
