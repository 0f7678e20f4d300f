"""`conv`: the seed's network, one fixed canvas, black padding only (`FixedCanvasVAE`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import N_COLOURS, Padding
from ..config import ModelConfig
from .layers import (
    VAEOutput,
    conv_gelu,
    down_convs,
    embed_tokens,
    halvings,
    sample_latent,
)


class FixedCanvasVAE(nn.Module):
    """`conv`, the seed's network: one grid_size canvas, black padding, so its linear layers can be
    tied to that canvas.

    Colours are embedded (not one-hot) so the first convolution sees a dense input; strided
    convolutions halve the grid down to a few cells, a linear layer gives μ and log σ²; the decoder
    mirrors it with nearest-neighbour upsampling to the exact encoder sizes and ends in 10 logits
    per pixel.
    """

    padding = Padding.BLACK

    def __init__(self, cfg: ModelConfig, grid_size: int):
        super().__init__()
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.grid_size = grid_size
        self.widths = widths
        self.sizes = halvings(grid_size, len(widths))
        self.embed = nn.Embedding(N_COLOURS, cfg.embed_dim)
        self.encoder = nn.Sequential(
            conv_gelu(cfg.embed_dim, widths[0]), *down_convs([widths[0], *widths])
        )
        bottom = widths[-1] * self.sizes[-1] ** 2
        self.to_stats = nn.Linear(bottom, 2 * cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim, bottom)
        self.up_convs = nn.ModuleList(
            conv_gelu(c_in, c_out)
            for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [widths[0]])
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, S) integer colours -> μ, log σ² each (B, D)."""
        h = self.encoder(embed_tokens(self.embed, grids)).flatten(1)  # (B, c * s * s)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar

    def size_logits(self, z: torch.Tensor) -> None:
        return None

    def reached_dims(self, canvas: int, device: torch.device) -> None:
        return None  # one canvas: every dim, always

    def decode(
        self, z: torch.Tensor, canvas: int, sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        """(B, D) -> logits (B, 10, S, S) and None (no shape: `sizes` is not used); canvas must be
        grid_size."""
        if canvas != self.grid_size:
            raise ValueError(
                f"model.arch=conv decodes only its {self.grid_size}x{self.grid_size} canvas, not "
                f"{canvas}x{canvas} (use conv_any for other canvases)"
            )
        s = self.sizes[-1]
        h = F.gelu(self.from_latent(z)).view(-1, self.widths[-1], s, s)
        for conv, size in zip(self.up_convs, self.sizes[-2::-1]):
            h = conv(F.interpolate(h, size=(size, size), mode="nearest"))
        return self.to_logits(h), None

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        mu, logvar = self.encode(grids)
        logits, _ = self.decode(sample_latent(mu, logvar, sample), grids.shape[-1])
        return VAEOutput(logits, mu, logvar)
