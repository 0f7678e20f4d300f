"""What the any-canvas models (`conv_any`, `resnet`, `patch`) share: the `AnyCanvas` mixin."""

from __future__ import annotations

import torch
from torch import nn

from ..canvas import MAX_SIDE, N_COLOURS, Padding, sizes_of_tokens
from ..config import ModelConfig
from .layers import (
    GlobalReadout,
    ShapeInput,
    VAEOutput,
    conv_gelu,
    down_convs,
    embed_tokens,
    halvings,
    sample_latent,
)


class AnyCanvas:
    """What the any-canvas models share: the canvas check, the encoder read out into one global
    vector (`PatchVAE` adds its cells), the shape head over the global vector (the first
    `global_dims` of z) and the shape inputs of the decoder. A mixin for nn.Module classes, not a
    model of its own."""

    grid_size: int
    global_dims: int
    embed: nn.Embedding
    encoder: nn.Sequential
    readout: GlobalReadout
    to_sizes: nn.Module | None
    shape_in: nn.ModuleList | None

    def build_encoder(
        self, cfg: ModelConfig, grid_size: int, padding: Padding, blocks: int
    ) -> None:
        """The encoder `conv_any` and `resnet` share: the token embedding, a full-resolution conv,
        one stride-2 conv per width (each followed by `blocks` residual blocks) and the readout
        into one global vector of `cfg.latent_dim` dims."""
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.global_dims = cfg.latent_dim
        self.grid_size = grid_size
        self.padding = Padding(padding)
        self.widths = widths
        self.embed = nn.Embedding(N_COLOURS + self.padding.symbol, cfg.embed_dim)
        self.encoder = nn.Sequential(
            conv_gelu(cfg.embed_dim, widths[0]), *down_convs([widths[0], *widths], blocks=blocks)
        )
        self.readout = GlobalReadout(
            widths[-1], halvings(grid_size, len(widths))[-1], cfg.latent_dim, cfg.hidden
        )

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, C) integer tokens -> μ, log σ² each (B, D)."""
        self.check_canvas(grids.shape[-1])
        return self.readout.encode(self.encoder(embed_tokens(self.embed, grids)))

    def check_canvas(self, canvas: int) -> None:
        if not 1 <= canvas <= self.grid_size:
            raise ValueError(
                f"{type(self).__name__} takes canvases 1..{self.grid_size} (data.grid_size), not "
                f"{canvas}"
            )

    def reached_dims(self, canvas: int, device: torch.device) -> torch.Tensor | None:
        return None  # one global vector: every dim on every canvas (`PatchVAE` has cells)

    def size_logits(self, z: torch.Tensor) -> torch.Tensor | None:
        """(B, D) -> (B, 2, 30) scores of rows and cols (k -> k+1 cells), or None in black mode."""
        if self.to_sizes is None:
            return None
        return self.to_sizes(z[:, : self.global_dims]).view(-1, 2, MAX_SIDE)

    def build_shape_inputs(self, channels: list[int]) -> None:
        """One `ShapeInput` for each decoder map (their channels, bottom first) in symbol mode."""
        symbol = self.padding.symbol
        self.shape_in = nn.ModuleList(ShapeInput(c) for c in channels) if symbol else None

    def decode_sizes(
        self, z: torch.Tensor, canvas: int, sizes: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The shapes to decode at: `sizes`, or the head's most likely shape within the canvas;
        None in black mode."""
        if self.shape_in is None:
            return None
        if sizes is None:
            sizes = (self.size_logits(z).argmax(-1) + 1).clamp(max=canvas)
        return sizes

    def with_shape(
        self, h: torch.Tensor, level: int, sizes: torch.Tensor | None, factor: int
    ) -> torch.Tensor:
        """h, a decoder map of cells of factor × factor pixels, told the shape by its
        `ShapeInput` (the level-th, bottom first); h itself in black mode."""
        return h if sizes is None else self.shape_in[level](h, sizes, factor)

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        mu, logvar = self.encode(grids)
        canvas = grids.shape[-1]
        sizes = sizes_of_tokens(grids) if self.padding.symbol else None
        logits, size_logits = self.decode(sample_latent(mu, logvar, sample), canvas, sizes)
        return VAEOutput(logits, mu, logvar, size_logits, self.reached_dims(canvas, grids.device))
