"""`slots`: an object-centric β-VAE, one slot of named dims per object (issue 38).

The slots are found, not learned: an object is a single-colour connected component of the grid (4-
or 8-connected, `model.connectivity`), found by an exact batch-parallel parse (`components`); slot
k holds the k-th component in reading order of its first pixel. A grid with more components than
slots codes the first `model.slots` of them; the rest are counted (`SlotVAE.overflow`) and cost
their pixels as reconstruction errors.

Each slot is a diagonal Gaussian over named dims (`PARTS`, then `model.shape_dims` shape dims):
- presence, row, col (the top-left of the object's box), height, width, colour: exact parts. Their
  means are fixed affine maps of the parsed values (`AFFINE`), their log-variances learned, one per
  part shared by the slots: the encoder cannot be wrong about them, and β prices how finely the
  decoder may read them.
- shape: an MLP reads the object's mask moved to the top-left corner of a grid_size field (and its
  height and width) and gives the mean and log-variance of the shape code.
An absent slot's dims (all but presence) are the prior (μ = 0, log σ² = 0, KL 0) and are not in
use for that grid (`VAEOutput.reached` is (B, D)): free bits and the KL floors judge a dim over the
grids that use it, as a cell beyond a small canvas is judged for the patch model.

The decoder draws each slot and composites the slots over black: an MLP maps (shape code, height,
width) to mask logits on the field; a soft box cuts the mask to height × width; soft placement
kernels (two small matmuls) move it to (row, col); a soft kernel over the colours' means picks its
colour; presence gates it; slots are alpha-composited, slot 0 on top. Every kernel is a function of
z, so the likelihood is differentiable in every dim, and sharp enough that at z = μ each object
lands on its exact cell in its exact colour. The logits are the log-probabilities of that
per-pixel mixture: the same per-pixel categorical as every other architecture.

Related designs: AIR / SPACE (where, what, presence), DTI-Sprites (sprites placed by explicit
transforms), MONet / GENESIS (a KL per slot). Why this one and what the others measured:
docs/architectures.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..canvas import N_COLOURS, Padding
from ..config import SLOT_PARTS, ModelConfig
from .layers import VAEOutput, sample_latent

PARTS = ("presence", "row", "col", "height", "width", "colour")
# value = offset + scale · z for each exact part: roughly standardised on 16x16 object grids, so
# that a part's KL to N(0, 1) is close to the information it carries. presence is ±1.
AFFINE = {
    "row": (6.0, 4.25),
    "col": (6.0, 4.25),
    "height": (3.8, 3.0),
    "width": (3.8, 3.0),
    "colour": (5.0, 2.5),
}
POSITION_TAU = 0.25  # cells: the width of the placement kernels
COLOUR_TAU = 0.1  # z units: the width of the colour kernel (colours sit 0.4 apart)
BOX_SHARPNESS = 16.0  # the soft box's slope, per cell
PRESENCE_SHARPNESS = 8.0
INITIAL_LOGVAR = -4.0  # the exact parts start nearly noiseless
HIDDEN_BELOW = -0.9  # z_presence under this draws nothing (sigmoid(8 · -0.9) < 0.001)


def components(grids: torch.Tensor, slots: int, connectivity: int) -> dict[str, torch.Tensor]:
    """The single-colour connected components of grids (B, H, W) (colours, 0 black), the first
    `slots` of them in reading order of their first pixel: masks (B, K, H, W) bool, present (B, K)
    bool, row, col, height, width, colour (B, K) long (0 where absent), count (B,) long (every
    component, beyond K too).

    Min-label propagation: each pixel takes the smallest raster index among its same-colour
    neighbours' labels (with pointer jumping), until nothing changes; each pixel then holds its
    component's first pixel, which also orders the slots.
    """
    B, H, W = grids.shape
    n = H * W
    colours = grids.long()
    filled = colours > 0
    index = torch.arange(n, device=grids.device).view(1, H, W).expand(B, H, W)
    none = n  # the label of black pixels: larger than any index
    label = torch.where(filled, index, none)
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    padded_colours = F.pad(colours, (1, 1, 1, 1), value=-1)  # (B, H+2, W+2), -1 off the canvas
    for _ in range(n):
        padded = F.pad(label, (1, 1, 1, 1), value=none)
        new = label
        for dy, dx in steps:
            theirs = padded[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]
            same = padded_colours[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W] == colours
            new = torch.minimum(new, torch.where(same & filled, theirs, none))
        # a label is a pixel of the same component, so that pixel's label is one too
        jumped = new.reshape(B, n).gather(1, new.reshape(B, n).clamp(max=n - 1)).view(B, H, W)
        new = torch.where(filled, torch.minimum(new, jumped), none)
        if torch.equal(new, label):
            break
        label = new
    flat = label.reshape(B, n)
    pixel = torch.arange(n, device=grids.device).view(1, n)
    first = (flat == pixel) & filled.reshape(B, n)  # (B, n): the first pixel of each component
    slot = (first.long().cumsum(1) - 1).gather(1, flat.clamp(max=n - 1))
    slot = torch.where(filled.reshape(B, n), slot, -1)  # (B, n): each pixel's component
    masks = slot.unsqueeze(1) == torch.arange(slots, device=grids.device).view(1, slots, 1)
    present = masks.any(-1)  # (B, K)
    rows = (pixel // W).expand(B, n).unsqueeze(1)  # (B, 1, n)
    cols = (pixel % W).expand(B, n).unsqueeze(1)
    top = torch.where(masks, rows, H).amin(-1)  # (B, K)
    left = torch.where(masks, cols, W).amin(-1)
    bottom = torch.where(masks, rows, -1).amax(-1)
    right = torch.where(masks, cols, -1).amax(-1)
    zero = torch.zeros_like(top)
    return {
        "masks": masks.view(B, slots, H, W),
        "present": present,
        "row": torch.where(present, top, zero),
        "col": torch.where(present, left, zero),
        "height": torch.where(present, bottom - top + 1, zero),
        "width": torch.where(present, right - left + 1, zero),
        "colour": (masks.long() * colours.reshape(B, 1, n)).amax(-1),
        "count": first.sum(1),
    }


def to_corner(masks: torch.Tensor, row: torch.Tensor, col: torch.Tensor, field: int):
    """Each slot's mask (B, K, H, W) moved so that its box's top-left is (0, 0) of a field × field
    grid: (B, K, field, field) float."""
    B, K, H, W = masks.shape
    padded = F.pad(masks.float(), (0, field, 0, field))  # (B, K, H+f, W+f)
    steps = torch.arange(field, device=masks.device)
    rows = (row.unsqueeze(-1) + steps).unsqueeze(-1).expand(B, K, field, W + field)
    moved = padded.gather(2, rows)  # (B, K, f, W+f)
    cols = (col.unsqueeze(-1) + steps).unsqueeze(-2).expand(B, K, field, field)
    return moved.gather(3, cols)


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SlotVAE(nn.Module):
    """`slots` (module docstring): K slots of 6 exact parts and a shape code each, black canvas."""

    padding = Padding.BLACK

    def __init__(self, cfg: ModelConfig, grid_size: int, padding: Padding = Padding.BLACK):
        super().__init__()
        if Padding(padding).symbol:
            raise ValueError("model.arch=slots takes black padding only")
        self.slots, self.shape_dims, self.connectivity = cfg.slots, cfg.shape_dims, cfg.connectivity
        self.grid_size = grid_size
        self.field = grid_size  # any object's box fits
        self.per_slot = SLOT_PARTS + cfg.shape_dims
        self.latent_dim = self.slots * self.per_slot
        area = self.field * self.field
        self.shape_encoder = mlp([area + 2, *cfg.shape_encoder, 2 * cfg.shape_dims])
        self.shape_decoder = mlp([cfg.shape_dims + 2, *cfg.shape_decoder, area])
        self.exact_logvar = nn.Parameter(torch.full((SLOT_PARTS,), INITIAL_LOGVAR))
        offset, scale = AFFINE["colour"]
        self.register_buffer("colour_means", (torch.arange(1, N_COLOURS) - offset) / scale)
        names = [*PARTS, *(f"shape {s}" for s in range(cfg.shape_dims))]
        self.dim_names = [f"slot {k}: {name}" for k in range(self.slots) for name in names]

    # ------------------------------------------------------------------ encoder

    def encode(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_parsed(grids)[:2]

    def encode_parsed(self, grids: torch.Tensor):
        """μ, log σ² (B, D) and the parse (`components`) of grids (B, C, C)."""
        found = components(grids, self.slots, self.connectivity)
        present = found["present"].float()  # (B, K)
        B, K = present.shape
        values = {
            name: (found[name].float() - AFFINE[name][0]) / AFFINE[name][1] * present
            for name in PARTS[1:]
        }
        exact_mu = torch.stack([2 * present - 1, *values.values()], -1)  # (B, K, 6)
        # an absent slot is the prior on every part but presence
        in_use = torch.cat(
            [torch.ones_like(present[..., None]), present[..., None].expand(B, K, 5)], -1
        )
        exact_logvar = self.exact_logvar.expand(B, K, SLOT_PARTS) * in_use
        field = to_corner(found["masks"], found["row"], found["col"], self.field).flatten(0, 1)
        height_z, width_z = values["height"].flatten(), values["width"].flatten()
        code = field.new_zeros(B * K, 2 * self.shape_dims)
        shown = found["present"].flatten().nonzero().squeeze(1)  # encode present slots only
        if shown.numel():
            coded = self.encode_shapes(field[shown], height_z[shown], width_z[shown])
            code = code.index_copy(0, shown, coded.to(field.dtype))
        code = code.view(B, K, 2 * self.shape_dims) * present[..., None]
        mu = torch.cat([exact_mu, code[..., : self.shape_dims]], -1).flatten(1)  # (B, D)
        logvar = torch.cat([exact_logvar, code[..., self.shape_dims :]], -1).flatten(1)
        return mu, logvar, found

    def encode_shapes(
        self, fields: torch.Tensor, height_z: torch.Tensor, width_z: torch.Tensor
    ) -> torch.Tensor:
        """The shape encoder on objects' masks in the field's corner (N, F, F) with their box's
        height and width z's (N,): μ and log σ² of the shape code side by side, (N, 2S)."""
        x = torch.cat([fields.flatten(1), height_z[:, None], width_z[:, None]], 1)
        return self.shape_encoder(x)

    def draw_shapes(
        self, codes: torch.Tensor, height_z: torch.Tensor, width_z: torch.Tensor
    ) -> torch.Tensor:
        """The shape decoder: mask logits (N, F·F) on the field of shape codes (N, S) with their
        box's height and width z's (N,); the box cuts them later."""
        return self.shape_decoder(torch.cat([codes, height_z[:, None], width_z[:, None]], 1))

    def dims_in_use(self, present: torch.Tensor) -> torch.Tensor:
        """(B, D) bool from present (B, K): presence always, a slot's other dims where it is."""
        B, K = present.shape
        use = present[..., None].expand(B, K, self.per_slot).clone()
        use[..., 0] = True
        return use.flatten(1)

    def grid_dims(self, grids: torch.Tensor) -> torch.Tensor:
        """(B, D) bool: the dims each grid of grids (B, C, C) uses (`dims_in_use` of its objects),
        what `forward` returns as `reached`, without encoding."""
        return self.dims_in_use(components(grids, self.slots, self.connectivity)["present"])

    def overflow(self, grids: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the grids with more objects than slots (their extra objects are not coded)."""
        return components(grids, self.slots, self.connectivity)["count"] > self.slots

    # ------------------------------------------------------------------ decoder

    def placement(self, position: torch.Tensor, canvas: int) -> torch.Tensor:
        """(B, K, canvas, field): P[y, i] = w(y - i), w a softmax over the canvas's cells of
        -(t - position)² / 2τ²: the field's row i lands on the canvas's row y."""
        cells = torch.arange(canvas, device=position.device, dtype=position.dtype)
        kernel = torch.softmax(-((cells - position[..., None]) ** 2) / (2 * POSITION_TAU**2), -1)
        offset = torch.arange(canvas, device=position.device)[:, None] - torch.arange(
            self.field, device=position.device
        )
        return kernel[..., offset.clamp(min=0)] * (offset >= 0)

    def draw(self, z: torch.Tensor, canvas: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each slot drawn alone: alpha (B, K, canvas, canvas), how much of each cell it covers,
        and colour (B, K, 9), its soft choice among colours 1-9. z (B, D)."""
        B = z.shape[0]
        z = z.float().view(B, self.slots, self.per_slot)  # (B, K, 6 + S)
        presence, row, col, height, width, colour = z[..., :SLOT_PARTS].unbind(-1)
        to_cells = {
            name: AFFINE[name][0] + AFFINE[name][1] * z_part
            for name, z_part in (("row", row), ("col", col), ("height", height), ("width", width))
        }
        # draw the shapes of the slots that can show only
        shapes = z[..., SLOT_PARTS:].flatten(0, 1)
        height_z, width_z = height.flatten(), width.flatten()
        shown = (presence > HIDDEN_BELOW).flatten().nonzero().squeeze(1)
        masks = z.new_zeros(B * self.slots, self.field * self.field)
        if shown.numel():
            logits = self.draw_shapes(shapes[shown], height_z[shown], width_z[shown])
            masks = masks.index_copy(0, shown, torch.sigmoid(logits.float()))
        masks = masks.view(B, self.slots, self.field, self.field)
        # the soft box: field cell i is inside while i < height (sharp at the half-cells)
        steps = torch.arange(self.field, device=z.device, dtype=z.dtype)
        rows_in = torch.sigmoid(BOX_SHARPNESS * (to_cells["height"][..., None] - steps - 0.5))
        cols_in = torch.sigmoid(BOX_SHARPNESS * (to_cells["width"][..., None] - steps - 0.5))
        masks = masks * rows_in[..., :, None] * cols_in[..., None, :]
        place_rows = self.placement(to_cells["row"], canvas)  # (B, K, C, F)
        place_cols = self.placement(to_cells["col"], canvas)
        placed = place_rows @ masks @ place_cols.transpose(-1, -2)  # (B, K, C, C)
        alpha = (torch.sigmoid(PRESENCE_SHARPNESS * presence)[..., None, None] * placed).clamp(0, 1)
        colours = torch.softmax(
            -((colour[..., None] - self.colour_means) ** 2) / (2 * COLOUR_TAU**2), -1
        )  # (B, K, 9)
        return alpha, colours

    def decode(self, z: torch.Tensor, canvas: int, sizes=None) -> tuple[torch.Tensor, None]:
        """z (B, D) -> logits (B, 10, canvas, canvas), the log-probabilities of the composite; no
        shape (black canvas)."""
        alpha, colours = self.draw(z, canvas)
        # alpha compositing, slot 0 on top: slot k shows through the slots before it
        clear = 1 - alpha
        through = torch.cumprod(torch.cat([torch.ones_like(clear[:, :1]), clear[:, :-1]], 1), 1)
        painted = torch.einsum("bkhw,bkc->bchw", alpha * through, colours)  # (B, 9, C, C)
        probs = torch.cat([clear.prod(1)[:, None], painted], 1)  # (B, 10, C, C)
        return torch.log(probs + 1e-6), None

    def size_logits(self, z: torch.Tensor) -> None:
        return None

    def reached_dims(self, canvas: int, device) -> None:
        return None  # every canvas is the whole grid; which dims a grid uses is per grid

    def forward(self, grids: torch.Tensor, sample: bool = True) -> VAEOutput:
        mu, logvar, found = self.encode_parsed(grids)
        logits, _ = self.decode(sample_latent(mu, logvar, sample), grids.shape[-1])
        return VAEOutput(logits, mu, logvar, None, self.dims_in_use(found["present"]))
