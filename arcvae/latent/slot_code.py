"""A slot model's code (`models/slots.py`) read and written part by part: what the operations, the
object prior and the task generator share.

A code z (B, D) is K slots of `per_slot` dims: presence, row, col, height, width, colour (the exact
parts, value = offset + scale · z, `AFFINE`), then the shape code. `read` gives the exact parts as
the integers the decoder draws them at; `write` sets one part of one slot per code; `drawn` gives
the cells each slot covers as the model draws it alone (its mask before compositing), which is how
a latent operation tells that an object would touch another without decoding the grid.
"""

from __future__ import annotations

import torch

from ..models.slots import AFFINE, PARTS, SlotVAE

SHOWN_ABOVE = 0.5  # a cell belongs to a slot's object where the slot alone covers more than half


def is_slot_model(net: torch.nn.Module) -> bool:
    return isinstance(net, SlotVAE)


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
        offset, scale = AFFINE[name]
        found[name] = torch.round(offset + scale * parts[..., part_index(name)]).long()
    return found


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
