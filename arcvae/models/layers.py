"""The layers the architectures of model.py are built from, and the output every one of them
returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import MAX_SIDE


@dataclass
class VAEOutput:
    logits: torch.Tensor  # (B, 10, C, C)
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    # (B, 2, 30): rows, cols (k -> k+1 cells); None in black mode
    size_logits: torch.Tensor | None = None
    # the dims in use, the others being the prior (μ = 0, log σ² = 0): (D,) bool, the dims this
    # canvas reaches (the cells beyond it); (B, D) bool, those of each grid (a slot model's absent
    # slots); None: all
    reached: torch.Tensor | None = None


class Conv3x3(nn.Conv2d):
    """A 3×3 convolution, padding 1. On a 1×1 map a stride-2 one runs at stride 1: the same output
    (one cell: the kernel's centre on the input, the rest on padding), and it sidesteps a oneDNN
    bug: in bf16 on the CPU (torch 2.13) the weight gradient of a stride-2 convolution of a 1×1 map
    is wrong, often inf (tests/test_model.py). Small canvases (4×4 and less) reach a 1×1 map before
    the last stride."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (1, 1):
            return F.conv2d(x, self.weight, self.bias, 1, 1)
        return super().forward(x)


def conv_gelu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(Conv3x3(c_in, c_out, stride), nn.GELU())


def down_convs(widths: list[int], blocks: int = 0) -> list[nn.Module]:
    """A stride-2 conv from each width to the next, each followed by `blocks` residual blocks."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers += [conv_gelu(c_in, c_out, stride=2), *[ResBlock(c_out) for _ in range(blocks)]]
    return layers


def embed_tokens(embed: nn.Embedding, grids: torch.Tensor) -> torch.Tensor:
    """(B, C, C) integer tokens -> (B, E, C, C) embeddings, channels first for the convolutions."""
    return embed(grids.long()).permute(0, 3, 1, 2)


def halvings(canvas: int, levels: int) -> list[int]:
    """The encoder's map sizes: canvas, then ceil(/2) per stride-2 conv."""
    sizes = [canvas]
    for _ in range(levels):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def size_head(dims: int, hidden: int = 0) -> nn.Module:
    """z's global vector (B, dims) -> (B, 60) scores of rows and cols: linear, or two layers with
    `hidden` units."""
    if not hidden:
        return nn.Linear(dims, 2 * MAX_SIDE)
    return nn.Sequential(nn.Linear(dims, hidden), nn.GELU(), nn.Linear(hidden, 2 * MAX_SIDE))


def inside_share(sizes: torch.Tensor, side: int, factor: int) -> torch.Tensor:
    """(B, 1, side, side) float32: the share of each cell of a map (`factor` × `factor` pixels,
    anchored top-left) that lies inside the grid's rows × cols; sizes (B, 2)."""
    start = torch.arange(side, device=sizes.device) * factor
    share = (sizes[:, :, None] - start).clamp(0, factor).float() / factor  # (B, 2, side)
    return (share[:, 0, :, None] * share[:, 1, None, :]).unsqueeze(1)


class ShapeInput(nn.Module):
    """Tells a decoder map where its grid is: `inside_share` times one learned vector of the map's
    channels, added to the map. A decoder of symbol mode has one per level, so the shape (coded
    exactly, docs/design.md) is an input of the decoder and not something z must carry. The vector
    starts at zero: a model whose checkpoint predates it decodes as it did."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c))

    def forward(self, h: torch.Tensor, sizes: torch.Tensor, factor: int) -> torch.Tensor:
        """h (B, c, s, s), a map of cells of factor × factor pixels -> h with the shape added."""
        share = inside_share(sizes, h.shape[-1], factor)
        return h + (self.weight.view(-1, 1, 1) * share).to(h.dtype)


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor, sample: bool) -> torch.Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu


class ResBlock(nn.Module):
    """x + conv(GELU(norm(conv(x)))): the second conv starts at zero, so a new block is the
    identity."""

    def __init__(self, c: int):
        super().__init__()
        self.conv_a = Conv3x3(c, c)
        self.conv_b = Conv3x3(c, c)
        # 8 groups, but at least 2 channels a group: a group of one channel on a 1×1 map has nothing
        # to normalise
        self.norm = nn.GroupNorm(max(1, min(8, c // 2)), c)
        nn.init.zeros_(self.conv_b.weight)
        nn.init.zeros_(self.conv_b.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_b(F.gelu(self.norm(self.conv_a(x))))


class GlobalReadout(nn.Module):
    """One latent vector for the whole grid. The bottom map (c, m, m) is read by a linear layer
    whose weights are indexed by absolute position: a weight (out, c, M, M), M the bottom size of
    grid_size, cropped to [:, :, :m, :m] (a Linear over the bottom map zero-padded to M×M); grids
    are anchored top-left, so bottom cell (i, j) covers the same region on every canvas. The
    decoder's mirror writes only the m×m cells.

    With `hidden` units, a hidden layer (GELU) sits between that layer and z on both sides, so a
    compact z reaches the map through a nonlinearity rather than one linear map.
    """

    def __init__(self, c: int, M: int, latent_dim: int, hidden: int = 0):
        super().__init__()
        self.c = c
        self.M = M
        width = hidden or 2 * latent_dim  # what the position-indexed layer reads the map into
        # nn.Linear(c*M*M, width)'s weight and init, viewed as (width, c, M, M) to crop by position.
        stats = nn.Linear(c * M * M, width)
        self.stats_weight = nn.Parameter(stats.weight.detach().view(width, c, M, M).clone())
        self.stats_bias = nn.Parameter(stats.bias.detach().clone())
        self.from_latent = nn.Linear(hidden or latent_dim, c * M * M)
        self.hidden = hidden
        if hidden:
            self.to_stats = nn.Linear(hidden, 2 * latent_dim)
            self.from_z = nn.Linear(latent_dim, hidden)

    def encode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bottom map (B, c, m, m) -> μ, log σ² each (B, D)."""
        m = h.shape[-1]
        weight = self.stats_weight[:, :, :m, :m].reshape(self.stats_weight.shape[0], -1)
        h = F.linear(h.flatten(1), weight, self.stats_bias)  # (B, hidden or 2D)
        if self.hidden:
            h = self.to_stats(F.gelu(h))  # (B, 2D)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, m: int) -> torch.Tensor:
        """z (B, D) -> the bottom map (B, c, m, m), before its activation."""
        c = self.c
        M = self.M
        if self.hidden:
            z = F.gelu(self.from_z(z))  # (B, hidden)
        # Only the m×m positions this canvas uses: computing all M×M and cropping was most of a
        # small canvas's step.
        weight = self.from_latent.weight.view(c, M, M, -1)[:, :m, :m].reshape(c * m * m, -1)
        bias = self.from_latent.bias.view(c, M, M)[:, :m, :m].reshape(-1)
        return F.linear(z, weight, bias).view(-1, c, m, m)


class SpatialReadout(nn.Module):
    """D / M² latent dimensions per cell of an M×M map: a grid's latent grows with its area. One
    shared 1×1 conv reads every cell's μ, log σ² from the encoder's map (c_in channels), so a large
    grid's far cells use what small grids taught the near ones; the cells a canvas does not reach
    are the prior (μ = 0, log σ² = 0: no KL). z (B, D) is the (D/M², M, M) map flattened; the
    decoder reads its m×m corner through a 3×3 conv to c_out channels, so a cell sees its
    neighbours."""

    def __init__(self, c_in: int, c_out: int, M: int, dims: int):
        super().__init__()
        if dims % (M * M):
            raise ValueError(f"{dims} spatial dims do not split over {M}x{M} cells")
        self.M = M
        self.per_cell = dims // (M * M)
        self.to_stats = nn.Conv2d(c_in, 2 * self.per_cell, 1)
        self.from_latent = nn.Conv2d(self.per_cell, c_out, 3, padding=1)

    def encode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's map (B, c_in, m, m) -> μ, log σ² each (B, D), the prior beyond the m×m
        cells."""
        m = h.shape[-1]
        stats = h.new_zeros(h.shape[0], 2 * self.per_cell, self.M, self.M)
        stats[:, :, :m, :m] = self.to_stats(h)
        mu, logvar = stats.chunk(2, dim=1)
        return mu.flatten(1), logvar.flatten(1)

    def reached(self, m: int, device: torch.device) -> torch.Tensor:
        """(D,) bool: the dims of the m×m corner of cells, those an encoder map of side m
        reads."""
        corner = torch.zeros(self.per_cell, self.M, self.M, dtype=torch.bool, device=device)
        corner[:, :m, :m] = True
        return corner.flatten()

    def decode(self, z: torch.Tensor, m: int) -> torch.Tensor:
        """z (B, D) -> a map (B, c_out, m, m) from the m×m cells."""
        return self.from_latent(z.view(-1, self.per_cell, self.M, self.M)[:, :, :m, :m])
