"""β-VAEs for categorical grids (Kingma & Welling 2014; Higgins et al. 2017), made by `build_model`.

The contract every architecture meets (what training, evaluation, checkpoints and pictures rely on):
- `encode(grids) -> (mu, logvar)`: grids (B, C, C) integer tokens: colours 0-9, and in symbol mode
  (`data.padding: symbol`) PAD = 10 outside each grid (grids anchored top-left); any canvas C the
  model accepts (`conv`: exactly `grid_size`; `conv_any`, `resnet`: 1..grid_size). mu and logvar (B,
  D), the diagonal Gaussian posterior q(z|x) with D = `latent_dim`.
- `decode(z, canvas) -> (logits, size_logits)`: z (B, D) -> logits (B, 10, C, C) unnormalised colour
  scores per pixel on a (canvas, canvas) canvas, and size_logits (B, 2, 30) scores of the grid's
  rows and cols (index k = k+1 cells), or None for a model that does not reconstruct the shape
  (black mode).
- `forward(grids, sample=True) -> VAEOutput(logits, mu, logvar, size_logits)`: encode, draw
  z = μ + σ·ε (z = μ when `sample` is False: where accuracy is measured), decode on the input's
  canvas.
- Attributes: `latent_dim` (D), `grid_size` (the largest canvas), `padding` ("black" | "symbol").
  Parameters only; no loss inside (β is scheduled by the trainer).
- `generate(model, z, multiple, grid_size)`: free-running decode to grids of their predicted shape.
A new architecture is a class meeting this contract, a name in `ARCHITECTURES` and in the
`model.arch` choices of config.py.

`conv`: colours are embedded (not one-hot) so the first convolution sees a dense input; strided
convolutions halve the grid down to a few cells, a linear layer gives μ and log σ²; the decoder
mirrors it with nearest-neighbour upsampling to the exact encoder sizes and ends in 10 logits per
pixel. Its linear layers are tied to one canvas (`grid_size`), so it works in black mode only.

`conv_any`: the same widths on any canvas C <= grid_size. Tokens (10 colours, + PAD in symbol mode)
are embedded; a 3×3 conv at full resolution, then one stride-2 conv per width (C -> ceil(C/2) ->
...). The bottom map (c, m, m) is read by `GlobalReadout` (layers.py): a linear layer whose weights
are indexed by absolute position (grids are anchored top-left, so bottom cell (i, j) covers the same
region on every canvas). The decoder mirrors it: the map from z on the m×m cells, then per level an
×2 nearest upsampling cropped top-left to that level's encoder size and a conv; a 1×1 conv to 10
logits. In symbol mode a linear size head predicts rows and cols (2, 30) from the global vector.

`resnet`: `conv_any`'s canvases, readout and widths, with a residual block (3×3 conv, GroupNorm,
GELU, 3×3 conv started at zero) after every stride-2 conv and at every decoder level, learned ×2
upsampling (a 2×2 stride-2 transposed conv, so the four cells a bottom cell becomes get their own
weights instead of one copied value), and a two-layer size head. Why, with figures:
docs/architectures.md.

`patch`: `conv_any`'s canvases, readout and widths with nothing at full resolution: each 2×2 patch
of token embeddings becomes one cell (space-to-depth, `pixel_unshuffle`; an odd canvas is padded
with zero vectors), which is the first halving, and the decoder's half-resolution map gives 40
logits per cell, 10 for each of its 4 pixels (`pixel_shuffle`), cropped to the canvas. On `conv_any`
the full-resolution convolutions were about half the work (the decoder's last 64→64 3×3 conv alone
43% at 30×30); here every conv runs at half resolution or less. `model.blocks` residual blocks per
level (default 0: measured faster to quality on the CPU), a two-layer size head. And cells
(`model.spatial_dims` > 0, `SpatialReadout`): z = [the global vector (latent_dim - spatial_dims),
the cells (spatial_dims)], the cells being so many dims for each 2×2-pixel cell of the
half-resolution map, read from the first level's output by a shared 1×1 conv, the prior where the
canvas does not reach, and added (through a 3×3 conv) to the decoder's upsampled map before its last
conv: a latent that grows with the grid (docs/architectures.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import canvas_sizes
from .config import Config, ModelConfig, check_arch_padding
from .data import MAX_SIDE, N_COLOURS
from .layers import (
    GlobalReadout,
    ResBlock,
    SpatialReadout,
    VAEOutput,
    conv_gelu,
    halvings,
    sample_latent,
    size_head,
)


class GridVAE(nn.Module):
    """`conv`: one fixed canvas (grid_size), black padding."""

    padding = "black"

    def __init__(self, cfg: ModelConfig, grid_size: int):
        super().__init__()
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.grid_size = grid_size
        self.embed = nn.Embedding(N_COLOURS, cfg.embed_dim)
        # Encoder: a full-resolution conv, then one stride-2 conv per width.
        self.sizes = [grid_size]
        for _ in widths:
            self.sizes.append((self.sizes[-1] + 1) // 2)
        self.encoder = nn.Sequential(
            conv_gelu(cfg.embed_dim, widths[0]),
            *[
                conv_gelu(c_in, c_out, stride=2)
                for c_in, c_out in zip([widths[0]] + widths[:-1], widths)
            ],
        )
        bottom = widths[-1] * self.sizes[-1] ** 2
        self.to_stats = nn.Linear(bottom, 2 * cfg.latent_dim)
        # Decoder: the mirror image; upsample to each stored size then convolve.
        self.from_latent = nn.Linear(cfg.latent_dim, bottom)
        self.up_convs = nn.ModuleList(
            conv_gelu(c_in, c_out)
            for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [widths[0]])
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)
        self.widths = widths

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, S) integer colours -> μ, log σ² each (B, D)."""
        h = self.embed(grids.long()).permute(0, 3, 1, 2)  # (B, E, S, S)
        h = self.encoder(h).flatten(1)  # (B, C * s * s)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, canvas: int) -> tuple[torch.Tensor, None]:
        """(B, D) -> logits (B, 10, S, S), None (no shape head); canvas must be grid_size S."""
        if canvas != self.grid_size:
            raise ValueError(
                f"model.arch=conv decodes only its {self.grid_size}x{self.grid_size} canvas, "
                f"not {canvas}x{canvas} (use conv_any for other canvases)"
            )
        s = self.sizes[-1]
        h = F.gelu(self.from_latent(z)).view(-1, self.widths[-1], s, s)
        for conv, size in zip(self.up_convs, self.sizes[-2::-1]):
            h = conv(F.interpolate(h, size=(size, size), mode="nearest"))
        return self.to_logits(h), None

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        """Encode, reparameterise (z = μ + σ·ε, or z = μ when `sample` is False), decode."""
        mu, logvar = self.encode(grids)
        logits, _ = self.decode(sample_latent(mu, logvar, sample), grids.shape[-1])
        return VAEOutput(logits, mu, logvar)


class AnyCanvasVAE(nn.Module):
    """`conv_any` (blocks=0, nearest upsampling) and `resnet` (residual blocks, learned upsampling)
    on any canvas 1..grid_size (see the module docstring)."""

    def __init__(
        self,
        cfg: ModelConfig,
        grid_size: int,
        padding: str = "black",
        blocks: int = 0,
        learned_upsampling: bool = False,
        size_hidden: int = 0,
        patches: bool = False,
    ):
        super().__init__()
        if padding not in ("black", "symbol"):
            raise ValueError(f"unknown padding mode '{padding}'")
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.grid_size = grid_size
        self.padding = padding
        self.widths = widths
        self.patches = patches
        self.embed = nn.Embedding(
            N_COLOURS + (padding == "symbol"), cfg.embed_dim
        )  # + PAD in symbol mode
        # patches: 2×2 pixels become one cell (space-to-depth), which is the first halving; else a
        # full-resolution conv.
        pixels_per_cell = 4 if patches else 1
        layers = [
            conv_gelu(cfg.embed_dim * pixels_per_cell, widths[0]),
            *[ResBlock(widths[0]) for _ in range(blocks if patches else 0)],
        ]
        for c_in, c_out in list(zip([widths[0]] + widths[:-1], widths))[int(patches) :]:
            layers += [conv_gelu(c_in, c_out, stride=2), *[ResBlock(c_out) for _ in range(blocks)]]
        self.encoder = nn.Sequential(*layers)
        M = halvings(grid_size, len(widths))[-1]
        # z = [the global vector (latent_dim - spatial_dims dims), the cells (spatial_dims dims)].
        self.splits = [cfg.latent_dim - cfg.spatial_dims, cfg.spatial_dims]
        self.readout = GlobalReadout(widths[-1], M, self.splits[0])
        pairs = list(zip(widths[::-1], widths[::-1][1:] + [widths[0]]))[: len(widths) - patches]
        self.learned_upsampling = learned_upsampling
        if learned_upsampling:
            self.up_convs = nn.ModuleList(
                nn.ConvTranspose2d(c_in, c_out, 2, stride=2) for c_in, c_out in pairs
            )
        else:
            self.up_convs = nn.ModuleList(conv_gelu(c_in, c_out) for c_in, c_out in pairs)
        self.dec_blocks = nn.ModuleList(
            nn.Sequential(*[ResBlock(c) for _ in range(blocks)])
            for c in [widths[-1]] + [c_out for _, c_out in pairs]
        )
        # patch: cells of 2×2 pixels, read from the half-resolution map (the first level's layers)
        # and added to
        # the decoder's upsampled map before its last conv, which works at half resolution.
        if cfg.spatial_dims and not (patches and pairs):
            raise ValueError(
                "cells (model.spatial_dims) need model.arch=patch with two or more widths"
            )
        self.level0 = 1 + blocks if patches else 0
        self.cells = (
            SpatialReadout(widths[0], pairs[-1][0], halvings(grid_size, 1)[1], cfg.spatial_dims)
            if cfg.spatial_dims
            else None
        )
        # patches: each half-resolution cell gives the 10 logits of its 2×2 pixels (pixel shuffle).
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS * pixels_per_cell, 1)
        self.to_sizes = size_head(self.splits[0], size_hidden) if padding == "symbol" else None

    def _check(self, canvas: int) -> None:
        if not 1 <= canvas <= self.grid_size:
            raise ValueError(
                f"model.arch=conv_any takes canvases 1..{self.grid_size} (data.grid_size), not "
                ""
                ""
                ""
                ""
                f"{canvas}"
            )

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, C) integer tokens -> μ, log σ² each (B, D)."""
        canvas = grids.shape[-1]
        self._check(canvas)
        h = self.embed(grids.long()).permute(0, 3, 1, 2)  # (B, E, C, C)
        if (
            self.patches
        ):  # an odd canvas gets a row and column of zero vectors: "nothing here", not a colour
            h = F.pixel_unshuffle(
                F.pad(h, (0, canvas % 2, 0, canvas % 2)), 2
            )  # (B, 4E, ceil(C/2), ceil(C/2))
        h = self.encoder[: self.level0](h)  # patch: (B, c0, ceil(C/2), ceil(C/2))
        mu, logvar = self.readout.encode(
            self.encoder[self.level0 :](h)
        )  # from the bottom map (B, c, m, m)
        if self.cells is None:
            return mu, logvar
        cell_mu, cell_logvar = self.cells.encode(h)
        return torch.cat([mu, cell_mu], 1), torch.cat([logvar, cell_logvar], 1)

    def size_logits(self, z: torch.Tensor) -> torch.Tensor | None:
        """(B, D) -> (B, 2, 30) scores of rows and cols (k -> k+1 cells), or None in black mode."""
        return (
            None
            if self.to_sizes is None
            else self.to_sizes(z[:, : self.splits[0]]).view(-1, 2, MAX_SIDE)
        )

    def decode(self, z: torch.Tensor, canvas: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D) -> logits (B, 10, C, C) on a canvas C, and the size logits (B, 2, 30) or None."""
        self._check(canvas)
        sizes = halvings(canvas, len(self.widths))
        z_global, z_cells = z.split(self.splits, 1)
        h = self.dec_blocks[0](F.gelu(self.readout.decode(z_global, sizes[-1])))
        for level, (up, blocks, size) in enumerate(
            zip(self.up_convs, self.dec_blocks[1:], sizes[-2::-1])
        ):
            if self.learned_upsampling:
                h = F.gelu(up(h)[:, :, :size, :size])
            else:
                h = F.interpolate(h, scale_factor=2, mode="nearest")[:, :, :size, :size]
                if self.cells is not None and level == len(self.up_convs) - 1:
                    h = h + self.cells.decode(z_cells, size)
                h = up(h)
            h = blocks(h)
        logits = self.to_logits(h)  # (B, 10 or 40, s, s)
        if self.patches:
            logits = F.pixel_shuffle(logits, 2)[:, :, :canvas, :canvas]  # (B, 10, C, C)
        return logits, self.size_logits(z)

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        """Encode, reparameterise (z = μ + σ·ε, or z = μ when `sample` is False), decode on the
        input's canvas."""
        mu, logvar = self.encode(grids)
        logits, size_logits = self.decode(sample_latent(mu, logvar, sample), grids.shape[-1])
        return VAEOutput(logits, mu, logvar, size_logits)


ARCHITECTURES = {
    "conv": lambda cfg: GridVAE(cfg.model, cfg.data.grid_size),
    "conv_any": lambda cfg: AnyCanvasVAE(cfg.model, cfg.data.grid_size, cfg.data.padding),
    "resnet": lambda cfg: AnyCanvasVAE(
        cfg.model,
        cfg.data.grid_size,
        cfg.data.padding,
        blocks=1,
        learned_upsampling=True,
        size_hidden=256,
    ),
    "patch": lambda cfg: AnyCanvasVAE(
        cfg.model,
        cfg.data.grid_size,
        cfg.data.padding,
        blocks=cfg.model.blocks,
        size_hidden=256,
        patches=True,
    ),
}


def build_model(cfg: Config) -> nn.Module:
    """The one place a model is made: the `model.arch` architecture for the data's canvas and
    padding."""
    check_arch_padding(cfg.model.arch, cfg.data.padding)
    return ARCHITECTURES[cfg.model.arch](cfg)


@torch.no_grad()
def generate(model: nn.Module, z: torch.Tensor, multiple: int, grid_size: int) -> list[np.ndarray]:
    """Free-running decode of z (B, D) to B grids (uint8 arrays) of their predicted shape.

    Symbol mode: rows and cols = argmax of the size heads; each sample is decoded on its bucket
    canvas (`canvas_sizes(.., multiple, grid_size)`, grouped so each canvas is one decode) and the
    argmax is cropped to (rows, cols). A black-mode model has no shape: the whole grid_size canvas
    is returned.
    """
    if getattr(model, "padding", "black") != "symbol":
        logits, _ = model.decode(z, grid_size)
        return list(logits.argmax(1).to(torch.uint8).cpu().numpy())
    sizes = model.size_logits(z).argmax(-1) + 1  # (B, 2) rows, cols in 1..30
    sizes = torch.minimum(
        sizes, torch.tensor(grid_size, device=sizes.device)
    )  # never beyond the canvas
    canvases = canvas_sizes(sizes, multiple, grid_size)
    out: list[np.ndarray | None] = [None] * len(z)
    for canvas in canvases.unique().tolist():
        rows = (canvases == canvas).nonzero().flatten()
        pixels = model.decode(z[rows], canvas)[0].argmax(1).to(torch.uint8).cpu().numpy()
        for i, grid, (h, w) in zip(rows.tolist(), pixels, sizes[rows].tolist()):
            out[i] = np.ascontiguousarray(grid[:h, :w])
    return out
