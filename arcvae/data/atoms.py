"""The researchers' grids, generated with the factors that made them (issue 25): 1-4 objects on a
black canvas. `generate` is a pure function of (n, seed, size); `python -m arcvae atoms` writes its
arrays to an .npz file that `data.source` reads, and `data.source: atoms` calls it directly.

Each grid holds 1-4 objects (the number uniform); each object has one colour 1-9 (uniform) and is
one 4-connected piece of 2-15 pixels of one of four kinds:
  blob (40%): grown from one pixel to its size (uniform 2-15): again and again a random pixel of it
      and a random direction are drawn, and the neighbour there is added when not already in it;
  rectangle (20%): filled, h x w drawn uniformly among the pairs with 2 <= h*w <= 15;
  line (20%): horizontal or vertical (even odds), its length uniform 2-15;
  pattern (20%): a 4-connected shape that fits in 3x3, its size uniform 2-9, then uniform among the
      shapes of that size (shapes equal up to translation counted once).
Kinds can look alike (a 1x3 rectangle is a line); `kind` records the one drawn.

Objects neither overlap nor touch 4-adjacently, whatever their colours: then every object is exactly
one component of `validity.objects` (two same-colour objects that touched would merge into one).
Objects are placed in turn, each at up to TRIES random positions (top-left uniform over the
positions where its bounding box fits); the first free one wins, and an object with none free is
dropped. The factors describe what is on the canvas: the placed objects, in slots 0.. in the order
they were placed, the rest of the 4 slots -1. The first object always fits (size >= 15), so every
grid has at least one.
"""

from __future__ import annotations

import itertools

import numpy as np

from .validity import MAX_OBJECTS, MAX_PIXELS, MIN_OBJECTS, MIN_PIXELS, objects

GENERATOR = "arcvae.atoms v1"  # the marker a file written by `atoms` carries, as `generator`
MIN_SIZE, MAX_SIZE = MAX_PIXELS, 30  # every object fits an empty canvas of MIN_SIZE
KINDS = ("blob", "rectangle", "line", "pattern")
KIND_SHARES = (0.4, 0.2, 0.2, 0.2)
TRIES = 20
SLOT_FACTORS = ("kind", "colour", "pixels", "row", "col", "height", "width")
# The columns of `factors`: object 0's factors, then the number of objects.
FACTOR_NAMES = tuple(f"{name}_0" for name in SLOT_FACTORS) + ("n_objects",)
STEPS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # the 4 neighbours of a pixel, (row, col)

# Every (h, w) a rectangle can take.
RECTANGLES = np.array(
    [
        (h, w)
        for h in range(1, MAX_PIXELS + 1)
        for w in range(1, MAX_PIXELS + 1)
        if MIN_PIXELS <= h * w <= MAX_PIXELS
    ]
)


def pattern_shapes() -> np.ndarray:
    """(P, 3, 3) bool: each 4-connected shape of 2-9 pixels that fits in 3x3, moved to the top-left
    corner, once; ordered by pixel count."""
    shapes = set()
    for bits in itertools.product((0, 1), repeat=9):
        mask = np.array(bits, dtype=np.uint8).reshape(3, 3)
        if mask.sum() >= MIN_PIXELS and len(objects(mask)) == 1:
            rows, cols = np.nonzero(mask)
            shapes.add(tuple(zip((rows - rows.min()).tolist(), (cols - cols.min()).tolist())))
    masks = np.zeros((len(shapes), 3, 3), dtype=bool)
    for i, cells in enumerate(sorted(shapes, key=lambda cells: (len(cells), cells))):
        masks[i][tuple(np.array(cells).T)] = True
    return masks


PATTERNS = pattern_shapes()
PATTERN_PIXELS = PATTERNS.sum(axis=(1, 2))


def boxes(heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(M, 15, 15) bool: filled h x w boxes in the top-left corner."""
    side = np.arange(MAX_PIXELS)
    return (side[None, :, None] < heights[:, None, None]) & (
        side[None, None, :] < widths[:, None, None]
    )


def blobs(rng: np.random.Generator, sizes: np.ndarray, steps: np.ndarray = STEPS) -> np.ndarray:
    """(M, 15, 15) bool: blobs of the given sizes grown by accretion through `steps` (the 4
    neighbours; touching.py passes all 8), all grown together."""
    cells = np.zeros((len(sizes), MAX_PIXELS, 2), dtype=np.int64)  # (M, 15, 2) offsets from pixel 0
    count = np.ones(len(sizes), dtype=np.int64)
    # Unused cells stay at (0, 0), a pixel of every blob, so comparing against them changes nothing.
    while (growing := np.flatnonzero(count < sizes)).size:
        pick = (rng.random(growing.size) * count[growing]).astype(np.int64)
        new = cells[growing, pick] + steps[rng.integers(0, len(steps), growing.size)]  # (G, 2)
        free = ~(cells[growing] == new[:, None]).all(axis=2).any(axis=1)
        grown = growing[free]
        cells[grown, count[grown]] = new[free]
        count[grown] += 1
    cells -= cells.min(axis=1, keepdims=True)  # to the top-left corner
    masks = np.zeros((len(sizes), MAX_PIXELS, MAX_PIXELS), dtype=bool)
    masks[np.arange(len(sizes))[:, None], cells[..., 0], cells[..., 1]] = True
    return masks


def shapes(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """(M, 15, 15) bool: a shape of each object's kind, in the top-left corner."""
    masks = np.zeros((len(kind), MAX_PIXELS, MAX_PIXELS), dtype=bool)
    blob, rectangle, line, pattern = (kind == k for k in range(len(KINDS)))
    masks[blob] = blobs(rng, rng.integers(MIN_PIXELS, MAX_PIXELS + 1, blob.sum()))
    h, w = RECTANGLES[rng.integers(0, len(RECTANGLES), rectangle.sum())].T
    masks[rectangle] = boxes(h, w)
    length = rng.integers(MIN_PIXELS, MAX_PIXELS + 1, line.sum())
    vertical = rng.random(line.sum()) < 0.5
    masks[line] = boxes(np.where(vertical, length, 1), np.where(vertical, 1, length))
    # A pixel count, then a shape among those of that count (PATTERNS is ordered by count).
    pixels = rng.integers(MIN_PIXELS, PATTERN_PIXELS.max() + 1, pattern.sum())
    first = np.searchsorted(PATTERN_PIXELS, pixels, side="left")
    last = np.searchsorted(PATTERN_PIXELS, pixels, side="right")
    masks[pattern, :3, :3] = PATTERNS[
        first + (rng.random(pattern.sum()) * (last - first)).astype(int)
    ]
    return masks


def shape_bits(masks: np.ndarray, stride: int) -> list[int]:
    """Each mask (M, 15, 15) as a Python integer, bit r * stride + c for pixel (r, c)."""
    laid_out = np.zeros((len(masks), MAX_PIXELS, stride), dtype=bool)
    laid_out[:, :, :MAX_PIXELS] = masks
    packed = np.packbits(laid_out.reshape(len(masks), -1), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def place(
    wanted: np.ndarray, bits: list[int], tries_row: np.ndarray, tries_col: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top-left (row, col) of each object, -1 for those dropped.

    A canvas is one Python integer, a bit per pixel, each row followed by one guard bit that no
    object covers: a shape moved to (r, c) is `bits << (r * stride + c)`, and `forbidden` (the
    placed pixels and their 4-neighbours) is built by shifting by one column and one row. Shifts
    into a guard bit or off the canvas forbid nothing that an object could cover.
    """
    stride = size + 1
    row = [-1] * len(bits)
    col = [-1] * len(bits)
    first = 0
    for count in wanted.tolist():
        forbidden = 0
        for j in range(first, first + count):
            for r, c in zip(tries_row[j].tolist(), tries_col[j].tolist()):
                moved = bits[j] << (r * stride + c)
                if not moved & forbidden:
                    forbidden |= moved | moved << 1 | moved >> 1 | moved << stride | moved >> stride
                    row[j], col[j] = r, c
                    break
        first += count
    return np.array(row), np.array(col)


def check_arguments(n: int, size: int) -> None:
    """`generate`'s arguments (both generators': their objects fit the same smallest canvas)."""
    if n < 1 or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"need n >= 1 and {MIN_SIZE} <= size <= {MAX_SIZE}, not n={n}, size={size}"
        )


def trial_positions(
    rng: np.random.Generator, height: np.ndarray, width: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(M, TRIES) rows and cols: the top-left corners `place` tries for each object, uniform over
    those where its bounding box fits the canvas."""
    tries = rng.random((2, len(height), TRIES))
    tries_row = (tries[0] * (size - height + 1)[:, None]).astype(np.int64)
    tries_col = (tries[1] * (size - width + 1)[:, None]).astype(np.int64)
    return tries_row, tries_col


def paint(
    masks: np.ndarray, placed: np.ndarray, at: tuple[np.ndarray, ...], n: int, size: int
) -> np.ndarray:
    """(n, size, size) uint8: the `placed` objects' masks painted in their colours; `at` is each
    object's (grid, row, col, colour)."""
    owner, row, col, colour = at
    grids = np.zeros((n, size, size), dtype=np.uint8)
    which, dy, dx = np.nonzero(masks[placed])
    obj = placed[which]
    grids[owner[obj], row[obj] + dy, col[obj] + dx] = colour[obj]
    return grids


def slot_arrays(
    values: dict[str, np.ndarray], owner: np.ndarray, placed: np.ndarray, n: int, slots: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each object factor as int16 (n, slots): the placed objects of a grid in slots 0.. in the
    order placed, the rest -1; and (n,) how many each grid placed."""
    n_placed = np.bincount(owner[placed], minlength=n)
    # Slot of each placed object: its rank among the placed objects of its grid.
    slot = np.arange(len(placed)) - (np.cumsum(n_placed) - n_placed)[owner[placed]]
    per_slot = {}
    for name, column in values.items():
        per_slot[name] = np.full((n, slots), -1, dtype=np.int16)
        per_slot[name][owner[placed], slot] = column[placed]
    return per_slot, n_placed


def generate(n: int, seed: int, size: int = 16) -> dict[str, np.ndarray]:
    """n grids (size x size) and their factors, reproducibly from the seed: the arrays an atoms file
    holds (module docstring)."""
    check_arguments(n, size)
    rng = np.random.default_rng(seed)
    wanted = rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1, n)  # objects drawn per grid
    owner = np.repeat(np.arange(n), wanted)  # (M,) the grid of each drawn object
    kind = rng.choice(len(KINDS), len(owner), p=KIND_SHARES)
    colour = rng.integers(1, 10, len(owner))
    masks = shapes(rng, kind)  # (M, 15, 15)
    height = masks.any(axis=2).sum(axis=1)
    width = masks.any(axis=1).sum(axis=1)
    tries_row, tries_col = trial_positions(rng, height, width, size)
    row, col = place(wanted, shape_bits(masks, size + 1), tries_row, tries_col, size)

    placed = np.flatnonzero(row >= 0)
    grids = paint(masks, placed, (owner, row, col, colour), n, size)
    pixels = masks.sum(axis=(1, 2))
    factors = dict(
        kind=kind, colour=colour, pixels=pixels, row=row, col=col, height=height, width=width
    )
    # Objects neither touch nor overlap: each placed one is an object of the grid.
    per_slot, n_objects = slot_arrays(factors, owner, placed, n, MAX_OBJECTS)  # (N, 4) each
    table = [per_slot[name][:, 0] for name in SLOT_FACTORS] + [n_objects]
    return {
        "grids": grids,
        "n_objects": n_objects.astype(np.int16),
        **per_slot,
        "factors": np.stack(table, axis=1).astype(np.int16),  # (N, len(FACTOR_NAMES))
        "factor_names": np.array(FACTOR_NAMES),
        "generator": np.array(GENERATOR),
        "canvas": np.array(size),
    }
