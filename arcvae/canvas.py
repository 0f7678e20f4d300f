"""Grids on canvases: the colour tokens, the PAD token outside a grid, size buckets, and the
padding policy (`data.padding`) that says how grids meet the model.

Every layer needs these (batches build canvases, models read PAD, losses count a grid's own
pixels), so they sit at the bottom beside errors.py; this module imports only torch.

Grids are anchored top-left on a canvas. In `black` mode the canvas is always `grid_size` and the
outside is black (counted as black by the loss); in `symbol` mode a grid's canvas is its size
bucket, the model's input has PAD outside the grid, and only the grid's own pixels (plus its shape)
are reconstructed.
"""

from __future__ import annotations

from enum import StrEnum

import torch

from .errors import DataError

N_COLOURS = 10
PAD = 10  # symbol mode: the input token outside a grid (the 11th embedding row); never a target
MAX_SIDE = 30


def canvas_sizes(sizes: torch.Tensor, multiple: int, grid_size: int) -> torch.Tensor:
    """(N,) int64: each grid's bucket canvas, min(grid_size, ceil(L/multiple)*multiple), L its
    longest side.

    L is invariant under the 8 symmetries, so augmentation never moves a grid to another bucket.
    """
    if multiple < 1:
        raise DataError(f"data.bucket_multiple={multiple} must be >= 1")
    longest = sizes.max(dim=1).values if len(sizes) else sizes.new_zeros(0)
    if len(sizes) and (sizes.min() < 1 or longest.max() > grid_size):
        raise DataError(
            f"a grid of {int(longest.max())} cells on its longest side does not fit "
            f"data.grid_size={grid_size} (sides must be 1..grid_size)"
        )
    return ((longest + multiple - 1) // multiple * multiple).clamp(max=grid_size).long()


def inside(sizes: torch.Tensor, canvas: int) -> torch.Tensor:
    """(B, C, C) bool: True on each grid's own pixels (rows < height and cols < width), anchored
    top-left."""
    r = torch.arange(canvas, device=sizes.device)
    return (r.view(1, canvas, 1) < sizes[:, 0].view(-1, 1, 1)) & (
        r.view(1, 1, canvas) < sizes[:, 1].view(-1, 1, 1)
    )


def sizes_of_tokens(grids: torch.Tensor) -> torch.Tensor:
    """(B, 2) int64 rows and cols of each grid of symbol-mode tokens (B, C, C): the inverse of
    `mark_outside`, as grids are anchored top-left."""
    own = grids != PAD
    return torch.stack([own.any(2).sum(1), own.any(1).sum(1)], 1)


def mark_outside(pixels: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """pixels (B, C, C) with PAD outside each grid: the model's input in symbol mode (same
    dtype)."""
    return pixels.masked_fill(~inside(sizes, pixels.shape[-1]), PAD)


class Padding(StrEnum):
    """`data.padding`, decided once: how grids meet the model (module docstring). A str, so that a
    config's value ("black", "symbol") is one: `Padding(cfg.data.padding)`."""

    BLACK = "black"
    SYMBOL = "symbol"

    @property
    def symbol(self) -> bool:
        """True in symbol mode: PAD outside each grid, own pixels and the shape reconstructed."""
        return self is Padding.SYMBOL

    def canvases(self, sizes: torch.Tensor, multiple: int, grid_size: int) -> torch.Tensor:
        """(N,) int64 canvases: each grid's size bucket in symbol mode, grid_size in black mode."""
        if self.symbol:
            return canvas_sizes(sizes, multiple, grid_size)
        return torch.full((len(sizes),), grid_size, dtype=torch.long, device=sizes.device)

    def model_input(self, pixels: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """What the encoder reads: pixels (B, C, C) with PAD outside each grid in symbol mode."""
        return mark_outside(pixels, sizes) if self.symbol else pixels

    def counted(self, sizes: torch.Tensor, canvas: int) -> torch.Tensor | None:
        """(B, C, C) bool: the pixels a likelihood counts (each grid's own in symbol mode); None in
        black mode, where every pixel of the canvas counts."""
        return inside(sizes, canvas) if self.symbol else None
