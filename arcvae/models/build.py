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
- Attributes: `latent_dim` (D), `grid_size` (the largest canvas), `padding` (a `canvas.Padding`).
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
from torch import nn

from ..canvas import canvas_sizes
from ..config import Config, check_arch_padding
from .conv import FixedCanvasVAE
from .conv_any import ConvAnyVAE
from .patch import PatchVAE
from .resnet import ResNetVAE
from .slots import SlotVAE

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "conv": FixedCanvasVAE,
    "conv_any": ConvAnyVAE,
    "resnet": ResNetVAE,
    "patch": PatchVAE,
    "slots": SlotVAE,
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
    if not model.padding.symbol:
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
