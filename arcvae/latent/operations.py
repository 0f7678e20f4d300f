"""Object operations as latent vectors, and traversals that change one factor (issue 27).

On grids holding one object (one 4-connected single-colour component on black), each operation
makes pairs (x, op(x)). A pair's operation vector is z(op(x)) - z(x), z the posterior mean μ.
The pairs of each group (the whole operation, or one colour pair c -> c' of a recolouring) are
split in two halves by a seeded shuffle: Δ is the mean vector over the first half, and on the
second half decode(z(x) + Δ) is compared with op(x), exactly. Beside it, on the same pairs:
  unchanged: decode(z(x)), what the vector has to improve on;
  copy: x itself (exact only where op(x) = x);
  target: decode(z(op(x))), whether the model can reconstruct op(x) at all, the most Δ can reach.

Traversals: each dimension of each grid's μ is moved by each of TRAVERSE_STEPS (prior standard
deviations); the decoded grid's object is measured (`measure`), and a move counts for a factor when
that factor, and no other, differs from the object of decode(μ). The best dimension of a factor is
the one that does so most often. The object's kind is drawn by the generator, not visible in a
grid, so it has no traversal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data.validity import objects

TRAVERSE_STEPS = (-2.0, -1.0, 1.0, 2.0)
MEASURED = ("colour", "pixels", "row", "col", "height", "width")  # what `measure` reads off a grid
SEED = 0
EXAMPLES = 3  # held-out pairs of each operation a picture shows

Encode = Callable[[list[np.ndarray]], np.ndarray]  # grids -> μ (N, D)
Decode = Callable[[np.ndarray], list[np.ndarray]]  # z (N, D) -> grids


def box(grid: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the non-black pixels, bottom and right exclusive."""
    rows, cols = np.nonzero(grid)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def measure(grid: np.ndarray) -> dict[str, int] | None:
    """The MEASURED factors of a grid's one object; None unless the grid holds exactly one."""
    found = objects(grid)
    if len(found) != 1:
        return None
    cells = np.array(found[0].cells)
    top, left = cells.min(axis=0)
    bottom, right = cells.max(axis=0) + 1
    return {
        "colour": found[0].colour,
        "pixels": len(cells),
        "row": int(top),
        "col": int(left),
        "height": int(bottom - top),
        "width": int(right - left),
    }


# ---------------------------------------------------------------- the operations
# Each takes a one-object grid and gives [(op(x), group)]: none where it does not apply.


def move_right(grid: np.ndarray) -> list[tuple[np.ndarray, str]]:
    if grid[:, -1].any():
        return []
    return [(np.roll(grid, 1, axis=1), "")]


def move_down(grid: np.ndarray) -> list[tuple[np.ndarray, str]]:
    if grid[-1].any():
        return []
    return [(np.roll(grid, 1, axis=0), "")]


def recolour(grid: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """To each of the 8 other colours: one group, so one vector, per pair c -> c'."""
    colour = int(grid.max())
    return [
        (np.where(grid > 0, new, 0).astype(grid.dtype), f"{colour}->{new}")
        for new in range(1, 10)
        if new != colour
    ]


def mirror(grid: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Left-right, in the object's bounding box (a symmetric object stays as it is)."""
    top, bottom, left, right = box(grid)
    out = grid.copy()
    out[top:bottom, left:right] = grid[top:bottom, left:right][:, ::-1]
    return [(out, "")]


def grow_rectangle(grid: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """A filled rectangle (lines included) one row taller, where the row below it is free."""
    top, bottom, left, right = box(grid)
    if bottom == grid.shape[0] or not grid[top:bottom, left:right].all():
        return []
    out = grid.copy()
    out[bottom, left:right] = grid[top, left]
    return [(out, "")]


OPERATIONS: dict[str, Callable[[np.ndarray], list[tuple[np.ndarray, str]]]] = {
    "move_right": move_right,
    "move_down": move_down,
    "recolour": recolour,
    "mirror": mirror,
    "grow_rectangle": grow_rectangle,
}


# ---------------------------------------------------------------- scoring


def exact(decoded: Sequence[np.ndarray], wanted: Sequence[np.ndarray]) -> float:
    return float(np.mean([np.array_equal(a, b) for a, b in zip(decoded, wanted)]))


def score_operation(
    encode: Encode,
    decode: Decode,
    grids: Sequence[np.ndarray],
    operation: Callable[[np.ndarray], list[tuple[np.ndarray, str]]],
) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The operation's vector applied to held-out pairs, beside the baselines (module docstring):
    the share of pairs decoded exactly to op(x) by each; and the first EXAMPLES held-out pairs as
    (x, op(x), decode(z(x) + Δ)), for a picture."""
    before, after, groups = [], [], []
    for grid in grids:
        for target, group in operation(grid):
            before.append(grid)
            after.append(target)
            groups.append(group)
    groups = np.array(groups)
    z_before, z_after = encode(before), encode(after)
    rng = np.random.default_rng(SEED)
    tested, moved = [], []
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        half = len(members) // 2
        if half == 0:  # one pair: nothing to estimate a vector on
            continue
        delta = (z_after[members[:half]] - z_before[members[:half]]).mean(axis=0)
        tested.append(members[half:])
        moved.append(z_before[members[half:]] + delta)
    if not tested:
        return {"pairs": 0}, []
    test = np.concatenate(tested)
    wanted = [after[i] for i in test]
    applied = decode(np.concatenate(moved))
    scores = {
        "pairs": len(test),  # held-out pairs scored
        "vector": exact(applied, wanted),
        "unchanged": exact(decode(z_before[test]), wanted),
        "copy": exact([before[i] for i in test], wanted),
        "target": exact(decode(z_after[test]), wanted),
    }
    examples = [(before[i], after[i], applied[k]) for k, i in enumerate(test[:EXAMPLES])]
    return scores, examples


def traversal_scores(decode: Decode, mu: np.ndarray, dims: Sequence[int]) -> dict:
    """For each MEASURED factor: the dimension among `dims` whose moves change that factor alone
    most often, and that share of its moves (over grids and TRAVERSE_STEPS); and, per dimension,
    the shares of its moves that change each factor alone."""
    base = [measure(g) for g in decode(mu)]
    only = np.zeros((len(dims), len(MEASURED)))  # moves that change factor k alone
    for row, d in enumerate(dims):
        z = np.repeat(mu, len(TRAVERSE_STEPS), axis=0)  # (N * steps, D)
        z[:, d] += np.tile(TRAVERSE_STEPS, len(mu))
        moved = decode(z)
        for i, grid in enumerate(moved):
            before, after = base[i // len(TRAVERSE_STEPS)], measure(grid)
            if before is None or after is None:
                continue
            changed = [k for k, name in enumerate(MEASURED) if before[name] != after[name]]
            if len(changed) == 1:
                only[row, changed[0]] += 1
    only /= len(mu) * len(TRAVERSE_STEPS)
    best = only.argmax(axis=0)
    return {
        "steps": list(TRAVERSE_STEPS),
        "best": {
            name: {"dim": int(dims[best[k]]), "changes_it_alone": float(only[best[k], k])}
            for k, name in enumerate(MEASURED)
        },
        "dims": [int(d) for d in dims],
        "changes_alone": only.tolist(),  # (len(dims), len(MEASURED))
    }
