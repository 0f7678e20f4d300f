"""`patch` (the default): 2x2 patches in, a global vector plus a latent per cell (`PatchVAE`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import N_COLOURS, Padding
from ..config import ModelConfig, latent_size
from .any_canvas import AnyCanvas
from .layers import (
    GlobalReadout,
    ResBlock,
    SpatialReadout,
    conv_gelu,
    down_convs,
    embed_tokens,
    halvings,
    size_head,
)


class PatchVAE(AnyCanvas, nn.Module):
    """`patch` (the default): `conv_any`'s canvases, readout and widths with nothing at full
    resolution, and a latent that grows with the grid.

    Each 2×2 patch of token embeddings becomes one cell (space-to-depth, `pixel_unshuffle`; an odd
    canvas is padded with zero vectors, "nothing here" rather than a colour), which is the first
    halving; the decoder's half-resolution map gives 40 logits per cell, 10 for each of its 4 pixels
    (`pixel_shuffle`), cropped to the canvas. `model.blocks` residual blocks per level.

    z = [the global vector (`model.latent_dim`), the cells (`model.cell_dims` for each 2×2-pixel
    cell of the half-resolution map)]. The cells are read from the first level's output by a shared
    1×1 conv (`SpatialReadout`), are the prior where the canvas does not reach, and are added
    through a 3×3 conv to the decoder's upsampled map before its last conv. The shape head reads
    the global vector only.
    """

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: Padding = Padding.SYMBOL):
        super().__init__()
        widths = list(cfg.channels)
        if len(widths) < 2:
            raise ValueError("model.arch=patch needs two or more model.channels")
        half = halvings(grid_size, 1)[1]  # the half-resolution map's side at the largest canvas
        self.global_dims = cfg.latent_dim
        self.latent_dim = latent_size(cfg, grid_size)
        self.grid_size = grid_size
        self.padding = Padding(padding)
        self.widths = widths
        self.embed = nn.Embedding(N_COLOURS + self.padding.symbol, cfg.embed_dim)
        # The first level (2×2 patches in, at half resolution), then one stride-2 conv per width;
        # one Sequential so that checkpoints keep their weight names: `self.first` marks the split.
        # Without a global vector (latent_dim 0) nothing below half resolution is built: the cells
        # are the whole latent, and the decoder starts from them.
        self.first = 1 + cfg.blocks
        self.encoder = nn.Sequential(
            conv_gelu(cfg.embed_dim * 4, widths[0]),
            *[ResBlock(widths[0]) for _ in range(cfg.blocks)],
            *(down_convs(widths, blocks=cfg.blocks) if self.global_dims else []),
        )
        self.readout = (
            GlobalReadout(
                widths[-1], halvings(grid_size, len(widths))[-1], cfg.latent_dim, cfg.hidden
            )
            if self.global_dims
            else None
        )
        pairs = list(zip(widths[::-1], widths[::-1][1:]))  # no level at full resolution
        if not self.global_dims:
            pairs = pairs[-1:]  # only the level from the cells' channels to the last
        self.up_convs = nn.ModuleList(conv_gelu(c_in, c_out) for c_in, c_out in pairs)
        bottom = [widths[-1]] if self.global_dims else []
        self.dec_blocks = nn.ModuleList(
            nn.Sequential(*[ResBlock(c) for _ in range(cfg.blocks)])
            for c in bottom + [c_out for _, c_out in pairs]
        )
        cell_total = self.latent_dim - self.global_dims
        self.cells = (
            SpatialReadout(widths[0], pairs[-1][0], half, cell_total) if cell_total else None
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS * 4, 1)
        self.to_sizes = size_head(cfg.latent_dim, hidden=256) if self.padding.symbol else None
        self.build_shape_inputs([widths[-1], *[c_in for c_in, _ in pairs]])

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, C) integer tokens -> μ, log σ² each (B, D): the global vector, then the cells."""
        canvas = grids.shape[-1]
        self.check_canvas(canvas)
        h = embed_tokens(self.embed, grids)  # (B, E, C, C)
        h = F.pixel_unshuffle(F.pad(h, (0, canvas % 2, 0, canvas % 2)), 2)  # (B, 4E, c/2, c/2)
        h = self.encoder[: self.first](h)  # (B, c0, ceil(C/2), ceil(C/2))
        if self.readout is None:
            return self.cells.encode(h)
        mu, logvar = self.readout.encode(self.encoder[self.first :](h))  # from (B, c, m, m)
        if self.cells is None:
            return mu, logvar
        cell_mu, cell_logvar = self.cells.encode(h)
        return torch.cat([mu, cell_mu], 1), torch.cat([logvar, cell_logvar], 1)

    def reached_dims(self, canvas: int, device: torch.device) -> torch.Tensor | None:
        """The global vector, and the cells of the canvas's half-resolution map."""
        if self.cells is None:
            return None
        first = torch.ones(self.global_dims, dtype=torch.bool, device=device)
        return torch.cat([first, self.cells.reached((canvas + 1) // 2, device)])

    def decode(
        self, z: torch.Tensor, canvas: int, sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D) -> logits (B, 10, C, C) on a canvas C at the shapes `sizes` (B, 2) (None: the
        predicted ones), and the size logits (B, 2, 30) or None."""
        self.check_canvas(canvas)
        shape = self.decode_sizes(z, canvas, sizes)
        sides = halvings(canvas, len(self.widths))
        z_global, z_cells = z[:, : self.global_dims], z[:, self.global_dims :]
        if self.readout is None:  # the cells alone, at half resolution
            h = self.dec_blocks[-1](self.up_convs[-1](self.cells.decode(z_cells, sides[1])))
        else:
            h = self.decode_from_global(z_global, z_cells, shape, sides)
        logits = self.to_logits(h)  # (B, 40, ceil(C/2), ceil(C/2))
        logits = F.pixel_shuffle(logits, 2)[:, :, :canvas, :canvas]  # (B, 10, C, C)
        return logits, self.size_logits(z)

    def decode_from_global(
        self,
        z_global: torch.Tensor,
        z_cells: torch.Tensor,
        shape: torch.Tensor | None,
        sides: list[int],
    ) -> torch.Tensor:
        """The global vector's bottom map, up to the half-resolution map (B, c0, s, s), the cells
        joining it there."""
        bottom = len(sides) - 1
        h = F.gelu(self.readout.decode(z_global, sides[-1]))  # (B, c, m, m)
        h = self.dec_blocks[0](self.with_shape(h, 0, shape, 2**bottom))
        levels = list(zip(self.up_convs, self.dec_blocks[1:], sides[-2:0:-1]))
        for level, (conv, blocks, side) in enumerate(levels, 1):
            h = F.interpolate(h, scale_factor=2, mode="nearest")[:, :, :side, :side]
            if self.cells is not None and level == len(levels):
                h = h + self.cells.decode(z_cells, side)  # the cells join at half resolution
            h = blocks(conv(self.with_shape(h, level, shape, 2 ** (bottom - level))))
        return h
