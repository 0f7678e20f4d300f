"""`resnet`: `conv_any` with residual blocks and learned upsampling (`ResNetVAE`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import N_COLOURS, Padding
from ..config import ModelConfig
from .any_canvas import AnyCanvas
from .layers import (
    ResBlock,
    halvings,
    size_head,
)


class ResNetVAE(AnyCanvas, nn.Module):
    """`resnet`: `conv_any`'s canvases, readout and widths, with a residual block (`ResBlock`) after
    every stride-2 conv and at every decoder level, learned ×2 upsampling (a 2×2 stride-2
    transposed conv, so the four cells a bottom cell becomes get their own weights instead of one
    copied value), and a two-layer size head.
    """

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: Padding = Padding.BLACK):
        super().__init__()
        self.build_encoder(cfg, grid_size, padding, blocks=1)
        widths = self.widths
        pairs = list(zip(widths[::-1], widths[::-1][1:] + [widths[0]]))
        self.up_convs = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 2, stride=2) for c_in, c_out in pairs
        )
        self.dec_blocks = nn.ModuleList(
            nn.Sequential(ResBlock(c)) for c in [widths[-1]] + [c_out for _, c_out in pairs]
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)
        self.to_sizes = size_head(cfg.latent_dim, hidden=256) if self.padding.symbol else None
        self.build_shape_inputs([widths[-1], *[c_out for _, c_out in pairs]])

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
        h = self.dec_blocks[0](self.with_shape(h, 0, shape, 2**bottom))
        levels = zip(self.up_convs, self.dec_blocks[1:], sides[-2::-1])
        for level, (up, block, side) in enumerate(levels, 1):
            h = F.gelu(up(h)[:, :, :side, :side])
            h = block(self.with_shape(h, level, shape, 2 ** (bottom - level)))
        return self.to_logits(h), self.size_logits(z)
