"""Operations on one object of a slot model's code (docs/latent.md, "Operations on objects").

An operation changes the dims of one slot and nothing else; it never decodes, edits pixels and
re-encodes. Each is defined twice, and the two must agree for the operation to be right:
  on the code (`on_code`): translate and recolour rewrite the slot's exact parts (row and col, or
      colour); rotate_90, reflect and scale swap or double height and width and map the shape code
      through a small network learnt from the model's own encodings of transformed objects
      (shape_maps.py);
  on the grid (`apply_to_grid`): the object's mask is cut out of its box, transformed, and put back
      with the box's top-left corner kept (translate moves it), in its colour (recolour changes it).
`structure` scores how often decode(op(encode(x))) equals op applied to x (docs/RESULTS.md).

An operation cannot apply (`CannotApply`, one line saying why) when the object would leave the
canvas or overlap or touch another object (under the model's connectivity, as the parse joins
pixels), or when scaling would make an object larger than 99% of the objects the model was trained
on (shape_maps.LARGEST_SHARE). On the code
this is judged by the exact parts and the cells each slot covers as the model draws it
(`slot_code.drawn`); on the grid by the pixels.

Chains are written with `+`: `translate(1,-2)+rotate_90+recolour(3)`, applied left to right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ArcVaeError
from ..models.slots import SlotVAE
from . import slot_code

# the learnt shape maps, by the operation that needs one (shape_maps.py fits them)
LEARNT = ("rotate_90", "reflect_lr", "reflect_ud", "scale_2")
SCALE_FACTOR = 2


class OperationError(ArcVaeError):
    """An operation or chain that does not parse, or one that cannot apply."""


class CannotApply(OperationError):
    """The operation is well formed but cannot apply to this object (the message says why)."""


class Operation:
    """What an operation does to an object on the grid: its mask in its box (`on_mask`), its box's
    top-left corner (`corner`) and its colour (`colour`); each changes what it names and keeps the
    rest. `kind` names it in `--ops`; `learnt` names the shape map it needs (None: none)."""

    kind = ""
    learnt: str | None = None

    def on_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask

    def corner(self, row: int, col: int) -> tuple[int, int]:
        return row, col

    def colour(self, colour: int) -> int:
        return colour


@dataclass(frozen=True)
class Translate(Operation):
    dr: int
    dc: int

    kind = "translate"

    def __str__(self) -> str:
        return f"translate({self.dr},{self.dc})"

    def corner(self, row: int, col: int) -> tuple[int, int]:
        return row + self.dr, col + self.dc


@dataclass(frozen=True)
class Recolour(Operation):
    to: int

    kind = "recolour"

    def __post_init__(self):
        if not 1 <= self.to <= 9:
            raise OperationError(f"{self}: the colour must be 1-9 (0 is the black background)")

    def __str__(self) -> str:
        return f"recolour({self.to})"

    def colour(self, colour: int) -> int:
        return self.to


@dataclass(frozen=True)
class Rotate(Operation):
    """A quarter turn clockwise within the object's box, its top-left corner kept."""

    kind = "rotate_90"
    learnt = "rotate_90"

    def __str__(self) -> str:
        return "rotate_90"

    def on_mask(self, mask: np.ndarray) -> np.ndarray:
        return np.rot90(mask, -1)


@dataclass(frozen=True)
class Reflect(Operation):
    """A mirror image within the object's box: left-right (`lr`) or upside down (`ud`)."""

    axis: str = "lr"

    kind = "reflect"

    def __post_init__(self):
        if self.axis not in ("lr", "ud"):
            raise OperationError(f"reflect({self.axis}): the axis is lr or ud")

    @property
    def learnt(self) -> str:
        return f"reflect_{self.axis}"

    def __str__(self) -> str:
        return f"reflect({self.axis})"

    def on_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask[:, ::-1] if self.axis == "lr" else mask[::-1]


@dataclass(frozen=True)
class Scale(Operation):
    """Each pixel becomes a 2x2 block, the top-left corner kept."""

    factor: int = SCALE_FACTOR

    kind = "scale"
    learnt = "scale_2"

    def __post_init__(self):
        if self.factor != SCALE_FACTOR:
            raise OperationError(f"{self}: only scale({SCALE_FACTOR}) is learnt")

    def __str__(self) -> str:
        return f"scale({self.factor})"

    def on_mask(self, mask: np.ndarray) -> np.ndarray:
        return np.kron(mask, np.ones((self.factor, self.factor), dtype=bool))


KINDS = ("translate", "rotate_90", "reflect", "recolour", "scale")
SYNTAX = "translate(dr,dc), rotate_90, reflect(lr|ud), recolour(1-9), scale(2)"
_PATTERN = re.compile(r"^\s*([a-z_0-9]+)\s*(?:\((.*)\))?\s*$")


def parse_operation(text: str) -> Operation:
    """An operation from its text (SYNTAX); an OperationError naming it otherwise."""
    match = _PATTERN.match(text)
    name, inside = (match.group(1), match.group(2)) if match else (text, None)
    args = [a.strip() for a in inside.split(",")] if inside else []
    try:
        if name == "translate" and len(args) == 2:
            return Translate(int(args[0]), int(args[1]))
        if name == "recolour" and len(args) == 1:
            return Recolour(int(args[0]))
        if name == "rotate_90" and not args:
            return Rotate()
        if name == "reflect" and len(args) <= 1:
            return Reflect(*args)
        if name == "scale" and len(args) <= 1:
            return Scale(*(int(a) for a in args))
    except ValueError:
        pass
    problem = "wrong arguments" if name in KINDS else "unknown operation"
    raise OperationError(f"operation '{text.strip()}': {problem}; the operations: {SYNTAX}")


def parse_chain(text: str) -> list[Operation]:
    """A chain `op+op+...` (applied left to right)."""
    parts = [part for part in text.split("+")]
    if not text.strip() or any(not part.strip() for part in parts):
        raise OperationError(f"chain '{text}': write operations joined by +, e.g. translate(1,0)")
    return [parse_operation(part) for part in parts]


def chain_text(chain: list[Operation]) -> str:
    return "+".join(str(op) for op in chain)


# ---------------------------------------------------------------- on the grid


def object_at(grid: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """An object given by its cells `mask` (C, C): its box's mask, top row, left col and colour."""
    rows, cols = np.nonzero(mask)
    top, left = rows.min(), cols.min()
    box = mask[top : rows.max() + 1, left : cols.max() + 1]
    return box, int(top), int(left), int(grid[rows[0], cols[0]])


def apply_to_grid(
    grid: np.ndarray, mask: np.ndarray, chain: list[Operation], connectivity: int, largest: int
) -> tuple[np.ndarray, np.ndarray]:
    """The chain applied to the object whose cells are `mask` in grid (C, C): the new grid and the
    object's new cells. CannotApply when a step would take it off the canvas, onto or against
    another object, or (scale) past `largest` pixels."""
    canvas = grid.shape[0]
    for op in chain:
        box, top, left, colour = object_at(grid, mask)
        new_box = op.on_mask(box)
        row, col = op.corner(top, left)
        h, w = new_box.shape
        if row < 0 or col < 0 or row + h > canvas or col + w > canvas:
            raise CannotApply(f"{op}: the object would leave the {canvas}x{canvas} canvas")
        if isinstance(op, Scale) and new_box.sum() > largest:
            raise CannotApply(f"{op}: {new_box.sum()} pixels, more than the {largest} learnt")
        others = (grid > 0) & ~mask
        new_mask = np.zeros_like(mask)
        new_mask[row : row + h, col : col + w] = new_box
        near = slot_code.grown(torch.from_numpy(new_mask)[None], connectivity)[0].numpy()
        if (near & others).any():
            raise CannotApply(f"{op}: the object would overlap or touch another")
        grid = np.where(mask, 0, grid)
        grid = np.where(new_mask, op.colour(colour), grid).astype(grid.dtype)
        mask = new_mask
    return grid, mask


# ---------------------------------------------------------------- on the code


def on_code(net: SlotVAE, maps, z: torch.Tensor, slot: torch.Tensor, op: Operation) -> torch.Tensor:
    """op applied to slot `slot[b]` of each code z (B, D): a new z. `maps` (shape_maps.ShapeMaps)
    maps the shape code for rotate_90, reflect and scale."""
    parts = slot_code.read(net, z)
    rows = torch.arange(len(z))
    if isinstance(op, Translate):
        z = slot_code.write(net, z, slot, "row", parts["row"][rows, slot] + op.dr)
        return slot_code.write(net, z, slot, "col", parts["col"][rows, slot] + op.dc)
    if isinstance(op, Recolour):
        return slot_code.write(net, z, slot, "colour", torch.full_like(slot, op.to))
    height, width = parts["height"][rows, slot], parts["width"][rows, slot]
    if isinstance(op, Rotate):
        height, width = width, height
    elif isinstance(op, Scale):
        height, width = height * op.factor, width * op.factor
    dims = slot_code.slots_of(net, z)[rows, slot]  # (B, per_slot): the slot before the operation
    shape = len(slot_code.PARTS)  # where the shape code starts
    height_z, width_z = (dims[:, slot_code.part_index(name)] for name in ("height", "width"))
    new_shapes = maps.apply(op.learnt, dims[:, shape:], height_z, width_z)
    z = slot_code.write(net, z, slot, "height", height)
    z = slot_code.write(net, z, slot, "width", width)
    slot_code.slots_of(net, z)[rows, slot, shape:] = new_shapes.to(z.dtype)
    return z


def code_problems(
    net: SlotVAE, z: torch.Tensor, slot: torch.Tensor, canvas: int, what: str
) -> list[str | None]:
    """Why `what` (an operation's text), just applied to slot `slot[b]` of z (B, D), cannot stand,
    per code (None where it can): the object's box leaves the canvas, or the cells it covers as
    drawn overlap or touch another slot's."""
    parts = slot_code.read(net, z)
    rows = torch.arange(len(z))
    top, left = parts["row"][rows, slot], parts["col"][rows, slot]
    bottom = top + parts["height"][rows, slot]
    right = left + parts["width"][rows, slot]
    off = (top < 0) | (left < 0) | (bottom > canvas) | (right > canvas)
    cells = slot_code.drawn(net, z, canvas)  # (B, K, C, C)
    mine = cells[rows, slot]
    others = cells.clone()
    others[rows, slot] = False
    others &= parts["presence"][..., None, None]
    near = slot_code.grown(mine, net.connectivity)
    meets = (near & others.any(1)).flatten(1).any(1)
    problems: list[str | None] = []
    for b in range(len(z)):
        if off[b]:
            problems.append(f"{what}: the object would leave the {canvas}x{canvas} canvas")
        elif meets[b]:
            problems.append(f"{what}: the object would overlap or touch another")
        else:
            problems.append(None)
    return problems


def scale_problems(
    net: SlotVAE, z: torch.Tensor, slot: torch.Tensor, canvas: int, largest: int
) -> list[str | None]:
    """Scale's own limit, judged before it applies: an object whose drawn cells times four pass the
    `largest` pixels (shape_maps.ShapeMaps.largest_pixels) cannot be scaled."""
    rows = torch.arange(len(z))
    pixels = slot_code.drawn(net, z, canvas)[rows, slot].flatten(1).sum(1) * SCALE_FACTOR**2
    return [
        f"scale({SCALE_FACTOR}): {int(p)} pixels, more than the {largest} learnt"
        if p > largest
        else None
        for p in pixels.tolist()
    ]


def apply_chain(
    net: SlotVAE,
    maps,
    z: torch.Tensor,
    slot: torch.Tensor,
    chain: list[Operation],
    canvas: int,
) -> tuple[torch.Tensor, list[str | None]]:
    """The chain applied in turn to slot `slot[b]` of each code z (B, D): the new codes, and per
    code the first reason a step cannot apply (None where every step can; its code is then the
    whole chain's result, else the code as it stood before that step)."""
    problems: list[str | None] = [None] * len(z)
    for op in chain:
        limits = (
            scale_problems(net, z, slot, canvas, maps.largest_pixels)
            if isinstance(op, Scale)
            else [None] * len(z)
        )
        moved = on_code(net, maps, z, slot, op)
        after = code_problems(net, moved, slot, canvas, str(op))
        for b in range(len(z)):
            problems[b] = problems[b] or limits[b] or after[b]
        ok = torch.tensor([p is None for p in problems])
        z = torch.where(ok[:, None], moved, z)
    return z, problems
