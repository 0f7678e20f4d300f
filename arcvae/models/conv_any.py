"""`conv_any`: the seed's widths on any canvas, one global vector (`ConvAnyVAE`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import N_COLOURS, Padding
from ..config import ModelConfig
from .any_canvas import AnyCanvas
from .layers import (
    conv_gelu,
    halvings,
    size_head,
)


class ConvAnyVAE(AnyCanvas, nn.Module):
    """`conv_any`: the seed's widths on any canvas C <= grid_size.

    Tokens (10 colours, + PAD in symbol mode) are embedded; a 3×3 conv at full resolution, then one
    stride-2 conv per width (C -> ceil(C/2) -> ...). The bottom map (c, m, m) is read by
    `GlobalReadout`, a linear layer whose weights are indexed by absolute position (grids are
    anchored top-left, so bottom cell (i, j) covers the same region on every canvas). The decoder
    mirrors it: the map from z on the m×m cells, then per level an ×2 nearest upsampling cropped
    top-left to that level's encoder size and a conv; a 1×1 conv to 10 logits. In symbol mode a
    linear size head predicts rows and cols (2, 30) from z.
    """

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: Padding = Padding.BLACK):
        super().__init__()
        self.build_encoder(cfg, grid_size, padding, blocks=0)
        widths = self.widths
        self.up_convs = nn.ModuleList(
            conv_gelu(c_in, c_out)
            for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [widths[0]])
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)
        self.to_sizes = size_head(cfg.latent_dim) if self.padding.symbol else None
        self.build_shape_inputs([widths[-1], *widths[::-1]])

    def decode(
        self, z: torch.Tensor, canvas: int, sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D) -> logits (B, 10, C, C) on a canvas C at the shapes `sizes` (B, 2) (None: the
        predicted ones), and the size logits (B, 2, 30) or None."""
        self.check_canvas(canvas)
        shape = self.decode_sizes(z, canvas, sizes)
        sides = halvings(canvas, len(self.widths))
        bottom = len(sides) - 1
        h = F.gelu(self.readout.decode(z, sides[-1]))  # (B, c, m, m)
        h = self.with_shape(h, 0, shape, 2**bottom)
        for level, (conv, side) in enumerate(zip(self.up_convs, sides[-2::-1]), 1):
            h = F.interpolate(h, scale_factor=2, mode="nearest")[:, :, :side, :side]
            h = conv(self.with_shape(h, level, shape, 2 ** (bottom - level)))
        return self.to_logits(h), self.size_logits(z)
