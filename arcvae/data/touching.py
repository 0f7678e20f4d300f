"""The researchers' "touching" grids: 1-6 single-colour objects on a black canvas that may touch,
objects read with 8-connectivity (`validity.TOUCHING`). It follows `atoms`' conventions and returns
the same kind of arrays, sharing its helpers where the idea is the same. `generate` is a pure
function of (n, seed, size); `python -m arcvae atoms --style touching` writes its arrays, and
`--splits` the researchers' file layout (train / val / test).

The distribution, exactly:

Number of objects drawn per grid: 1-6 with weights COUNT_WEIGHTS = 6:5:4:3:2:1 (that is 6/21 for
one object ... 1/21 for six; mean 2.67). Each object independently has one colour 1-9 (uniform)
and a kind (KIND_SHARES):
  blob (30%): grown from one pixel to its size (uniform 2-15) by 8-connected accretion: again and
      again a random pixel of it and a random one of the 8 directions (orthogonal or diagonal) are
      drawn, and the neighbour there is added when not already in it. Its bounding box is at most
      15 a side (a blob grown along a diagonal);
  rectangle (20%): filled, h x w drawn uniformly among the 24 pairs 1 <= h, w <= 5 with h*w >= 2
      (2-25 pixels);
  line (30%): direction uniform among horizontal, vertical, diagonal down-right (\\) and diagonal
      down-left (/), length uniform 2-8 (a diagonal line of length L is L pixels in an L x L box);
  pattern (20%): a sub-kind uniform among PATTERN_KINDS, then uniform among the distinct shapes of
      that sub-kind (every rotation and reflection of its base shapes, shapes equal up to
      translation counted once), each fitting in 3x3:
        checker2  2x2 checkerboard (2 pixels, 2 shapes)
        checker3  3x3 checkerboard, either parity (the X of 5 pixels, the diamond of 4; 2 shapes)
        L         the L tetromino (3x2, 8 shapes) and the 3x3 corner of 5 pixels (4 shapes)
        T         the T tetromino (3x2, 4 shapes) and the 3x3 T of 5 pixels (4 shapes)
        plus      the 3x3 plus (5 pixels, 1 shape)
        zigzag    the S/Z tetromino (4 shapes), the 3x3 staircase W of 5 pixels (4 shapes) and
                  the diagonal zigzag of 3 pixels in 2x3 (pixels at (0,0) (1,1) (0,2); 4 shapes).
`kind` records the one drawn (codes 0-3 as in KINDS, the same codes as atoms); `variant` the line
direction (LINE_DIRECTIONS) or the pattern sub-kind (PATTERN_KINDS), -1 for blobs and rectangles.
Every drawn object is one 8-connected piece of one colour with at least 2 pixels.

Placement: objects are placed in the order drawn, each at up to TRIES = 20 random positions
(top-left uniform over the positions where its bounding box fits on the canvas); the first position
where it overlaps no pixel already placed wins, and an object with none is dropped. Only overlap is
forbidden: objects may touch, orthogonally or at a corner, whatever their colours. The first object
always fits (every bounding box is at most 15 a side), so every grid has at least one.

Objects of a grid ("components"): the 8-connected single-colour components of the final grid
(`validity.objects` with `validity.NEIGHBOURS8`). A drawn object is always inside one component,
and two placed objects of the same colour that touch (8-adjacently) are one component; objects of
different colours that touch stay apart. So a grid has 1 to 6 components, each of 2 to 150
(= 6 x 25) pixels (`validity.is_valid` under `validity.TOUCHING`).

Arrays (`generate`): `grids` uint8 (n, size, size); `n_objects` int16 (n,) the components of each
grid; per placed object, in slots 0.. in the order placed (the rest of the 6 slots -1), int16
(n, 6): `kind colour pixels row col height width variant` (row, col: the top-left of its bounding
box); `n_placed` int16 (n,) the objects placed (>= n_objects); `factors` int16 (n, 8), columns
`factor_names`: object 0's kind ... width, then n_objects (the components); `generator`
"arcvae.atoms touching v1"; `canvas` the size.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import atoms
from .atoms import KINDS, boxes, shape_bits
from .validity import TOUCHING

GENERATOR = "arcvae.atoms touching v1"  # the marker of `generate`'s arrays, as `generator`
MIN_OBJECTS, MAX_OBJECTS = TOUCHING.objects
MIN_SIZE, MAX_SIZE = atoms.MIN_SIZE, atoms.MAX_SIZE  # canvas sides: every object fits 15 x 15
COUNT_WEIGHTS = (6, 5, 4, 3, 2, 1)  # relative odds of drawing 1, 2, ..., 6 objects
KIND_SHARES = (0.30, 0.20, 0.30, 0.20)  # of KINDS, the codes atoms uses
LINE_DIRECTIONS = ("horizontal", "vertical", "diagonal_down_right", "diagonal_down_left")
PATTERN_KINDS = ("checker2", "checker3", "L", "T", "plus", "zigzag")
MIN_PIXELS = TOUCHING.pixels[0]  # every drawn object, hence every component
BLOB_PIXELS = (2, 15)  # atoms' blob sizes: its 15 x 15 masks hold a blob grown along a diagonal
RECTANGLE_SIDE = 5
LINE_LENGTH = (2, 8)
MAX_OBJECT_PIXELS = RECTANGLE_SIDE * RECTANGLE_SIDE  # 25, a 5x5 rectangle
MAX_COMPONENT_PIXELS = TOUCHING.pixels[1]  # 150: six touching 5x5 rectangles
SLOT_FACTORS = atoms.SLOT_FACTORS
SLOT_ARRAYS = SLOT_FACTORS + ("variant",)
# The columns of `factors`: object 0's factors, then the number of components.
FACTOR_NAMES = atoms.FACTOR_NAMES
# The 8 neighbours of a pixel in this order (not validity.NEIGHBOURS8's): the blobs' draws index
# it, and the same seed must give the researchers' standalone generator's grids.
STEPS8 = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])  # (8, 2)

# Every (h, w) a rectangle can take.
RECTANGLES = np.array(
    [
        (h, w)
        for h in range(1, RECTANGLE_SIDE + 1)
        for w in range(1, RECTANGLE_SIDE + 1)
        if h * w >= MIN_PIXELS
    ]
)

# The base shapes of each pattern sub-kind (rows of a picture, '#' a pixel).
PATTERN_BASES = {
    "checker2": ["#.", ".#"],
    "checker3": ["#.#", ".#.", "#.#", "", ".#.", "#.#", ".#."],
    "L": ["#.", "#.", "##", "", "#..", "#..", "###"],
    "T": ["###", ".#.", "", "###", ".#.", ".#."],
    "plus": [".#.", "###", ".#."],
    "zigzag": [".##", "##.", "", "#..", "##.", ".##", "", "#.#", ".#."],
}


def _pictures(lines: list[str]) -> list[np.ndarray]:
    """The shapes of a PATTERN_BASES entry (pictures separated by empty lines) as bool arrays."""
    shapes, rows = [], []
    for line in lines + [""]:
        if line:
            rows.append([ch == "#" for ch in line])
        elif rows:
            shapes.append(np.array(rows, dtype=bool))
            rows = []
    return shapes


def pattern_shapes() -> tuple[np.ndarray, np.ndarray]:
    """(P, 3, 3) bool: every rotation and reflection of every base shape, in the top-left corner,
    each distinct shape of a sub-kind once; and (P,) the sub-kind of each (ordered by sub-kind)."""
    masks, variant = [], []
    for v, name in enumerate(PATTERN_KINDS):
        seen = set()
        for base in _pictures(PATTERN_BASES[name]):
            for turns, flip in itertools.product(range(4), (False, True)):
                shape = np.rot90(base[:, ::-1] if flip else base, turns)
                key = (shape.shape, shape.tobytes())
                if key in seen:
                    continue
                seen.add(key)
                mask = np.zeros((3, 3), dtype=bool)
                mask[: shape.shape[0], : shape.shape[1]] = shape
                masks.append(mask)
                variant.append(v)
    return np.array(masks), np.array(variant)


PATTERNS, PATTERN_VARIANT = pattern_shapes()
PATTERN_FIRST = np.searchsorted(PATTERN_VARIANT, np.arange(len(PATTERN_KINDS)), side="left")
PATTERN_COUNT = np.bincount(PATTERN_VARIANT, minlength=len(PATTERN_KINDS))


def lines(length: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(M, 15, 15) bool: lines of the given lengths and directions (LINE_DIRECTIONS codes)."""
    masks = np.zeros((len(length), atoms.MAX_PIXELS, atoms.MAX_PIXELS), dtype=bool)
    straight = direction < 2
    vertical = direction == 1
    masks[straight] = boxes(
        np.where(vertical, length, 1)[straight], np.where(vertical, 1, length)[straight]
    )
    which, step = np.nonzero(np.arange(LINE_LENGTH[1])[None, :] < length[:, None])  # pixel `step`
    diagonal = direction[which] >= 2
    which, step = which[diagonal], step[diagonal]
    down_left = direction[which] == 3
    masks[which, step, np.where(down_left, length[which] - 1 - step, step)] = True
    return masks


def shapes(rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, 15, 15) bool: a shape of each object's kind in the top-left corner; (M,) its variant."""
    masks = np.zeros((len(kind), atoms.MAX_PIXELS, atoms.MAX_PIXELS), dtype=bool)
    variant = np.full(len(kind), -1, dtype=np.int64)
    blob, rectangle, line, pattern = (kind == k for k in range(len(KINDS)))
    sizes = rng.integers(BLOB_PIXELS[0], BLOB_PIXELS[1] + 1, blob.sum())
    masks[blob] = atoms.blobs(rng, sizes, STEPS8)  # 8-connected accretion
    h, w = RECTANGLES[rng.integers(0, len(RECTANGLES), rectangle.sum())].T
    masks[rectangle] = boxes(h, w)
    length = rng.integers(LINE_LENGTH[0], LINE_LENGTH[1] + 1, line.sum())
    direction = rng.integers(0, len(LINE_DIRECTIONS), line.sum())
    masks[line] = lines(length, direction)
    variant[line] = direction
    # A sub-kind, then a shape among those of that sub-kind (PATTERNS is ordered by sub-kind).
    sub = rng.integers(0, len(PATTERN_KINDS), pattern.sum())
    pick = PATTERN_FIRST[sub] + (rng.random(pattern.sum()) * PATTERN_COUNT[sub]).astype(np.int64)
    masks[pattern, :3, :3] = PATTERNS[pick]
    variant[pattern] = sub
    return masks, variant


def place(
    wanted: np.ndarray,
    bits: list[int],
    colour: np.ndarray,
    tries_row: np.ndarray,
    tries_col: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-left (row, col) of each object, -1 for those dropped, and the number of 8-connected
    single-colour components of each grid.

    A canvas is one Python integer, a bit per pixel, each row followed by one guard bit that no
    object covers: a shape moved to (r, c) is `bits << (r * stride + c)`. An object is placed where
    it overlaps nothing placed. Its 8-neighbourhood (shifts by 1, stride - 1, stride, stride + 1
    either way; those that leave the row land in a guard bit or off the canvas) tells which placed
    objects of its colour it touches: those and it are then one component (labels merged).
    """
    stride = size + 1
    row = [-1] * len(bits)
    col = [-1] * len(bits)
    components = [0] * len(wanted)
    colours = colour.tolist()
    first = 0
    for g, count in enumerate(wanted.tolist()):
        occupied = 0
        placed: list[tuple[int, int]] = []  # (moved bits, colour) of each placed object
        label: list[int] = []  # its component label
        for j in range(first, first + count):
            for r, c in zip(tries_row[j].tolist(), tries_col[j].tolist()):
                moved = bits[j] << (r * stride + c)
                if moved & occupied:
                    continue
                occupied |= moved
                row[j], col[j] = r, c
                mine = len(label)
                touched = set()
                halo = 0
                for k, (other, other_colour) in enumerate(placed):
                    if other_colour != colours[j]:
                        continue
                    if not halo:
                        halo = moved << 1 | moved >> 1
                        for shift in (stride - 1, stride, stride + 1):
                            halo |= moved << shift | moved >> shift
                    if halo & other:
                        touched.add(label[k])
                label = [mine if lab in touched else lab for lab in label]
                label.append(mine)
                placed.append((moved, colours[j]))
                break
        components[g] = len(set(label))
        first += count
    return np.array(row), np.array(col), np.array(components)


def generate(n: int, seed: int, size: int = 16) -> dict[str, np.ndarray]:
    """n grids (size x size) and their factors, reproducibly from the seed (module docstring)."""
    atoms.check_arguments(n, size)
    rng = np.random.default_rng(seed)
    weights = np.array(COUNT_WEIGHTS, dtype=float)
    wanted = rng.choice(np.arange(MIN_OBJECTS, MAX_OBJECTS + 1), n, p=weights / weights.sum())
    owner = np.repeat(np.arange(n), wanted)  # (M,) the grid of each drawn object
    kind = rng.choice(len(KINDS), len(owner), p=KIND_SHARES)
    colour = rng.integers(1, 10, len(owner))
    masks, variant = shapes(rng, kind)  # (M, 15, 15), (M,)
    height = masks.any(axis=2).sum(axis=1)
    width = masks.any(axis=1).sum(axis=1)
    tries_row, tries_col = atoms.trial_positions(rng, height, width, size)
    bits = shape_bits(masks, size + 1)
    row, col, n_objects = place(wanted, bits, colour, tries_row, tries_col, size)

    placed = np.flatnonzero(row >= 0)
    grids = atoms.paint(masks, placed, (owner, row, col, colour), n, size)
    pixels = masks.sum(axis=(1, 2))
    values = dict(
        kind=kind,
        colour=colour,
        pixels=pixels,
        row=row,
        col=col,
        height=height,
        width=width,
        variant=variant,
    )
    # Placed objects may merge into one component: the slots hold what was placed, `n_objects`
    # the components (what a reader of the grid counts).
    per_slot, n_placed = atoms.slot_arrays(values, owner, placed, n, MAX_OBJECTS)  # (N, 6) each
    table = [per_slot[name][:, 0] for name in SLOT_FACTORS] + [n_objects]
    return {
        "grids": grids,
        "n_objects": n_objects.astype(np.int16),
        **per_slot,
        "n_placed": n_placed.astype(np.int16),
        "factors": np.stack(table, axis=1).astype(np.int16),  # (N, len(FACTOR_NAMES))
        "factor_names": np.array(FACTOR_NAMES),
        "generator": np.array(GENERATOR),
        "canvas": np.array(size),
    }
