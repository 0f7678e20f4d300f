"""A slot model's code (`models/slots.py`) read and written part by part: what the operations, the
object prior and the task generator share.

A code z (B, D) is K slots of `per_slot` dims: presence, row, col, height, width, colour (the exact
parts, value = offset + scale · z, `AFFINE`), then the shape code. `read` gives the exact parts as
the integers the decoder draws them at; `write` sets one part of one slot per code; `drawn` gives
the cells each slot covers as the model draws it alone (its mask before compositing), which is how
a latent operation tells that an object would touch another without decoding the grid; `grown`
adds the cells that touch them; `parse` is the model's parse of many grids.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ArcVaeError
from ..models.slots import AFFINE, PARTS, SlotVAE, components

SHOWN_ABOVE = 0.5  # a cell belongs to a slot's object where the slot alone covers more than half
PARSE_BATCH = 1000  # grids parsed at once: the parse holds (B, slots, H·W) masks


def is_slot_model(net: torch.nn.Module) -> bool:
    return isinstance(net, SlotVAE)


def require_slot_model(run, what: str) -> None:
    """An ArcVaeError naming the run unless its model is a slot model: `what` needs one."""
    if not is_slot_model(run.net):
        raise ArcVaeError(
            f"{run.path}: {what} needs a slot model (model.arch=slots), and this run is "
            f"model.arch={run.config.model.arch}"
        )


def part_index(name: str) -> int:
    """The position of an exact part (PARTS) within a slot; the shape code starts at len(PARTS)."""
    return PARTS.index(name)


def slots_of(net: SlotVAE, z: torch.Tensor) -> torch.Tensor:
    """z (B, D) as (B, K, per_slot), a view."""
    return z.view(len(z), net.slots, net.per_slot)


def read(net: SlotVAE, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The exact parts of each slot of z (B, D): presence (B, K) bool, and row, col, height, width,
    colour (B, K) long, rounded as the decoder's sharp kernels read them."""
    parts = slots_of(net, z)
    found = {"presence": parts[..., 0] > 0}
    for name in PARTS[1:]:
        found[name] = value_of(name, parts[..., part_index(name)])
    return found


def value_of(name: str, z_part: torch.Tensor) -> torch.Tensor:
    """The integer (long) an exact part's z stands for, rounded as the decoder's sharp kernels
    read it."""
    offset, scale = AFFINE[name]
    return torch.round(offset + scale * z_part).long()


def code_of(name: str, value: torch.Tensor) -> torch.Tensor:
    """The z of an exact part's value (its AFFINE inverse); presence: ±1."""
    if name == "presence":
        return torch.where(value.bool(), 1.0, -1.0)
    offset, scale = AFFINE[name]
    return (value.float() - offset) / scale


def write(
    net: SlotVAE, z: torch.Tensor, slot: torch.Tensor, name: str, value: torch.Tensor
) -> torch.Tensor:
    """A copy of z (B, D), exact part `name` of slot `slot[b]` set to `value[b]` in each code."""
    out = z.clone()
    rows = torch.arange(len(z), device=z.device)
    slots_of(net, out)[rows, slot, part_index(name)] = code_of(name, value).to(z.dtype)
    return out


def grown(cells: torch.Tensor, connectivity: int) -> torch.Tensor:
    """cells (B, C, C) bool with every cell that touches them under `connectivity` (4 or 8)."""
    kernel = torch.ones(3, 3, device=cells.device)
    if connectivity == 4:
        kernel[0, 0] = kernel[0, 2] = kernel[2, 0] = kernel[2, 2] = 0
    near = F.conv2d(cells.float()[:, None], kernel.view(1, 1, 3, 3), padding=1)
    return near[:, 0] > 0


def parse(pixels: torch.Tensor, slots: int, connectivity: int) -> dict[str, np.ndarray]:
    """The parse (`components`) of grids (N, H, W) in batches, as numpy: present (N, K) bool; row,
    col, height, width, colour, pixels (N, K) int; count (N,) int."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(pixels), PARSE_BATCH):
        found = components(pixels[start : start + PARSE_BATCH].cpu().long(), slots, connectivity)
        found["pixels"] = found["masks"].flatten(2).sum(-1)
        for name, values in found.items():
            if name != "masks":
                parts.setdefault(name, []).append(values.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def drawn(net: SlotVAE, z: torch.Tensor, canvas: int) -> torch.Tensor:
    """(B, K, canvas, canvas) bool: the cells each slot of z (B, D) covers, drawn alone; drawn on
    the model's device, given back on z's (the operations keep codes on the CPU)."""
    device = next(net.parameters()).device
    with torch.no_grad():
        alpha, _ = net.draw(z.to(device), canvas)
    return (alpha > SHOWN_ABOVE).to(z.device)


def in_reading_order(net: SlotVAE, z: torch.Tensor, canvas: int) -> torch.Tensor:
    """z (B, D) with each code's slots reordered as the encoder orders them: present slots by the
    first cell (in reading order) each covers as drawn, then the absent ones."""
    cells = drawn(net, z, canvas).flatten(2)  # (B, K, C·C)
    index = torch.arange(cells.shape[-1], device=z.device)
    first = torch.where(cells, index, cells.shape[-1]).amin(-1)  # (B, K)
    first = torch.where(read(net, z)["presence"], first, cells.shape[-1] + 1)
    order = first.argsort(dim=1, stable=True)
    return slots_of(net, z).gather(1, order[..., None].expand(-1, -1, net.per_slot)).flatten(1)
