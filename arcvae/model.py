"""β-VAEs for categorical grids (Kingma & Welling 2014; Higgins et al. 2017), one class per
`model.arch`, made by `build_model`.

The contract every architecture meets (what training, evaluation, checkpoints and pictures rely on):
- `encode(grids) -> (mu, logvar)`: grids (B, C, C) integer tokens: colours 0-9, and in symbol mode
  (`data.padding: symbol`) PAD = 10 outside each grid (grids anchored top-left), on any canvas C the
  model accepts (`conv`: exactly `grid_size`; the others 1..grid_size). mu and logvar are (B, D),
  the diagonal Gaussian posterior q(z|x); D is `latent_dim`, the global vector and any cells.
- `decode(z, canvas, sizes=None) -> (logits, size_logits)`: z (B, D) -> logits (B, 10, C, C),
  unnormalised colour scores per pixel on a (canvas, canvas) canvas, and size_logits (B, 2, 30),
  scores of the grid's rows and cols (index k = k+1 cells), or None for a model without a shape
  (black mode). In symbol mode the decoder is told each grid's shape, sizes (B, 2) (`ShapeInput`):
  the shape is coded exactly, at its -log p(shape|z) bits (docs/design.md); None decodes at the
  head's most likely shape (free-running).
- `size_logits(z)`: the shape head alone, (B, 2, 30) or None.
- `reached_dims(canvas, device)`: (D,) bool, the dims a grid on this canvas has: a dim beyond it
  is the prior (μ = 0, log σ² = 0) for every such grid, so its KL is judged over the grids that
  reach it (losses.py, metrics.py). None: every dim, on every canvas.
- `forward(grids, sample=True) -> VAEOutput(logits, mu, logvar, size_logits, reached)`: encode,
  draw z = μ + σ·ε (z = μ when `sample` is False: where accuracy is measured), decode on the
  input's canvas at the grids' own shapes (read from the PAD tokens).
- Attributes: `latent_dim` (D), `grid_size` (the largest canvas), `padding` ("black" | "symbol").
  Parameters only; no loss inside (β is scheduled by the trainer).

`generate(model, z, multiple, grid_size, sizes=None)` decodes to grids of the given shapes, or
free-running to grids of their predicted shape.
A new architecture is a class meeting this contract, its name in `ARCHITECTURES` and in the
`model.arch` choices of config.py, and its defaults in config.py's `ARCH_DEFAULTS`.
Why each design, with figures: docs/architectures.md.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import canvas_sizes, sizes_of_tokens
from .config import Config, ModelConfig, check_arch_padding, latent_size
from .data import MAX_SIDE, N_COLOURS
from .layers import (
    GlobalReadout,
    ResBlock,
    ShapeInput,
    SpatialReadout,
    VAEOutput,
    conv_gelu,
    down_convs,
    embed_tokens,
    halvings,
    sample_latent,
    size_head,
)


class FixedCanvasVAE(nn.Module):
    """`conv`, the seed's network: one grid_size canvas, black padding, so its linear layers can be
    tied to that canvas.

    Colours are embedded (not one-hot) so the first convolution sees a dense input; strided
    convolutions halve the grid down to a few cells, a linear layer gives μ and log σ²; the decoder
    mirrors it with nearest-neighbour upsampling to the exact encoder sizes and ends in 10 logits
    per pixel.
    """

    padding = "black"

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

    def build_encoder(self, cfg: ModelConfig, grid_size: int, padding: str, blocks: int) -> None:
        """The encoder `conv_any` and `resnet` share: the token embedding, a full-resolution conv,
        one stride-2 conv per width (each followed by `blocks` residual blocks) and the readout
        into one global vector of `cfg.latent_dim` dims."""
        widths = list(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.global_dims = cfg.latent_dim
        self.grid_size = grid_size
        self.padding = padding
        self.widths = widths
        self.embed = nn.Embedding(N_COLOURS + (padding == "symbol"), cfg.embed_dim)
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
        symbol = self.padding == "symbol"
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
        sizes = sizes_of_tokens(grids) if self.padding == "symbol" else None
        logits, size_logits = self.decode(sample_latent(mu, logvar, sample), canvas, sizes)
        return VAEOutput(logits, mu, logvar, size_logits, self.reached_dims(canvas, grids.device))


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

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: str = "black"):
        super().__init__()
        self.build_encoder(cfg, grid_size, padding, blocks=0)
        widths = self.widths
        self.up_convs = nn.ModuleList(
            conv_gelu(c_in, c_out)
            for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [widths[0]])
        )
        self.to_logits = nn.Conv2d(widths[0], N_COLOURS, 1)
        self.to_sizes = size_head(cfg.latent_dim) if padding == "symbol" else None
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


class ResNetVAE(AnyCanvas, nn.Module):
    """`resnet`: `conv_any`'s canvases, readout and widths, with a residual block (`ResBlock`) after
    every stride-2 conv and at every decoder level, learned ×2 upsampling (a 2×2 stride-2
    transposed conv, so the four cells a bottom cell becomes get their own weights instead of one
    copied value), and a two-layer size head.
    """

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: str = "black"):
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
        self.to_sizes = size_head(cfg.latent_dim, hidden=256) if padding == "symbol" else None
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

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: str = "symbol"):
        super().__init__()
        widths = list(cfg.channels)
        if len(widths) < 2:
            raise ValueError("model.arch=patch needs two or more model.channels")
        half = halvings(grid_size, 1)[1]  # the half-resolution map's side at the largest canvas
        self.global_dims = cfg.latent_dim
        self.latent_dim = latent_size(cfg, grid_size)
        self.grid_size = grid_size
        self.padding = padding
        self.widths = widths
        self.embed = nn.Embedding(N_COLOURS + (padding == "symbol"), cfg.embed_dim)
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
        self.to_sizes = size_head(cfg.latent_dim, hidden=256) if padding == "symbol" else None
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


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "conv": FixedCanvasVAE,
    "conv_any": ConvAnyVAE,
    "resnet": ResNetVAE,
    "patch": PatchVAE,
}


def build_model(cfg: Config) -> nn.Module:
    """The one place a model is made: the `model.arch` architecture for the data's canvas and
    padding."""
    check_arch_padding(cfg.model.arch, cfg.data.padding)
    if cfg.model.arch == "conv":
        return FixedCanvasVAE(cfg.model, cfg.data.grid_size)
    return ARCHITECTURES[cfg.model.arch](cfg.model, cfg.data.grid_size, cfg.data.padding)


@torch.no_grad()
def generate(
    model: nn.Module,
    z: torch.Tensor,
    multiple: int,
    grid_size: int,
    sizes: torch.Tensor | None = None,
) -> list[np.ndarray]:
    """Decode z (B, D) to B grids (uint8 arrays) of the shapes `sizes` (B, 2), or free-running.

    Symbol mode: rows and cols are `sizes`, or the argmax of the size heads (free-running); each
    sample is decoded at its shape on its bucket canvas (`canvas_sizes(.., multiple, grid_size)`,
    grouped so each canvas is one decode) and the argmax is cropped to (rows, cols). A black-mode
    model has no shape: the whole grid_size canvas is returned.
    """
    if model.padding != "symbol":
        logits, _ = model.decode(z, grid_size)
        return list(logits.argmax(1).to(torch.uint8).cpu().numpy())
    sizes = model.decode_sizes(z, grid_size, None if sizes is None else sizes.to(z.device).long())
    canvases = canvas_sizes(sizes, multiple, grid_size)
    out: list[np.ndarray | None] = [None] * len(z)
    for canvas in canvases.unique().tolist():
        rows = (canvases == canvas).nonzero().flatten()
        logits = model.decode(z[rows], canvas, sizes[rows])[0]
        pixels = logits.argmax(1).to(torch.uint8).cpu().numpy()
        for i, grid, (h, w) in zip(rows.tolist(), pixels, sizes[rows].tolist()):
            out[i] = np.ascontiguousarray(grid[:h, :w])
    return out
