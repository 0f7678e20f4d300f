"""How often the operations on the slot code come out right, on held-out grids (`structure`).

For each grid one object is chosen at random (its slot in the parse) and an operation, or a chain
of two or three, is drawn with random parameters (`random_operation`). Where the chain applies to
the grid itself (`apply_to_grid`: the object stays on the canvas, touches nothing, and a scaled one
stays within the sizes learnt), the grid counts, and the chain is applied to the grid's posterior
mean μ (`apply_chain`) and decoded. Exact: the decoded grid equals the chain applied to the grid,
every pixel. A code the chain refuses (it judges that the object would leave the canvas or touch
another) counts as a miss; so `refused` says how often the code's judgement is stricter than the
grid's. Beside each row, on the same grids:
  reconstruction: decode(μ(x)) == x, the bound an operation on μ starts from;
  target: decode(μ(op(x))) == op(x), whether the model draws the right answer from its own code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..models.slots import SlotVAE, components
from .shape_maps import ShapeMaps
from .slot_operations import (
    CannotApply,
    Operation,
    Recolour,
    Reflect,
    Rotate,
    Scale,
    Translate,
    apply_chain,
    apply_to_grid,
    chain_text,
)

SEED = 0
SHIFT = 3  # translate draws each of dr and dc from -SHIFT..SHIFT, not both 0
ROWS = {  # the rows of the table: a name, and the operations each draw picks from per step
    "translate": (("translate",), 1),
    "rotate_90": (("rotate_90",), 1),
    "reflect": (("reflect",), 1),
    "recolour": (("recolour",), 1),
    "scale": (("scale",), 1),
    "chains of 2": (("translate", "rotate_90", "reflect", "recolour", "scale"), 2),
    "chains of 3": (("translate", "rotate_90", "reflect", "recolour", "scale"), 3),
}
Decode = Callable[[torch.Tensor], list[np.ndarray]]  # z (N, D) -> grids
Encode = Callable[[list[np.ndarray]], np.ndarray]  # grids -> μ (N, D)


def random_operation(kind: str, rng: np.random.Generator, colour: int) -> Operation:
    """One operation of `kind` with random parameters; recolour picks a colour other than
    `colour`."""
    if kind == "translate":
        while True:
            dr, dc = rng.integers(-SHIFT, SHIFT + 1, 2).tolist()
            if dr or dc:
                return Translate(dr, dc)
    if kind == "recolour":
        return Recolour(int(rng.choice([c for c in range(1, 10) if c != colour])))
    if kind == "reflect":
        return Reflect(str(rng.choice(["lr", "ud"])))
    if kind == "scale":
        return Scale()
    if kind == "rotate_90":
        return Rotate()
    raise ValueError(f"no operation of kind {kind!r}")


def random_chain(
    kinds: tuple[str, ...], depth: int, rng, colour: int, distinct: bool = False
) -> list[Operation]:
    """`depth` random operations of `kinds`; `distinct`: no kind twice where there are enough
    kinds (two recolourings in a row are one)."""
    replace = not distinct or depth > len(kinds)
    drawn = rng.choice(kinds, depth, replace=replace)
    return [random_operation(str(kind), rng, colour) for kind in drawn]


def score_row(
    net: SlotVAE,
    maps: ShapeMaps,
    grids: np.ndarray,
    mu: torch.Tensor,
    decode: Decode,
    encode: Encode,
    kinds: tuple[str, ...],
    depth: int,
    seed: int,
) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """One row of the table (module docstring) on grids (N, C, C) with their μ (N, D); and the
    first three scored grids as (x, op(x), decode(op(μ(x)))) for a picture."""
    rng = np.random.default_rng(seed)
    found = components(torch.from_numpy(grids).long(), net.slots, net.connectivity)
    count = found["present"].sum(1).numpy()
    picked, slots, chains, targets = [], [], [], []
    for i, grid in enumerate(grids):
        if count[i] == 0:
            continue
        slot = int(rng.integers(count[i]))
        chain = random_chain(kinds, depth, rng, int(found["colour"][i, slot]))
        try:
            target, _ = apply_to_grid(
                grid, found["masks"][i, slot].numpy(), chain, net.connectivity, maps.largest_pixels
            )
        except CannotApply:
            continue
        picked.append(i)
        slots.append(slot)
        chains.append(chain)
        targets.append(target)
    if not picked:
        return {"grids": 0, "of": len(grids)}, []
    # the chains differ per grid: apply them grouped by text, every group at once
    moved = mu[picked].clone()
    refused = np.zeros(len(picked), dtype=bool)
    slot_of = torch.tensor(slots)
    texts = [chain_text(c) for c in chains]
    for text in set(texts):
        group = [k for k, t in enumerate(texts) if t == text]
        codes = mu[[picked[k] for k in group]]
        chain = chains[group[0]]
        z, problems = apply_chain(net, maps, codes, slot_of[group], chain, grids.shape[1])
        moved[group] = z
        refused[group] = [p is not None for p in problems]
    decoded = decode(moved)
    exact = np.array([np.array_equal(d, t) for d, t in zip(decoded, targets)]) & ~refused
    rebuilt = decode(mu[picked])
    bound = np.array([np.array_equal(r, grids[i]) for r, i in zip(rebuilt, picked)])
    drawn_target = decode(torch.from_numpy(encode(targets)))
    target = np.array([np.array_equal(d, t) for d, t in zip(drawn_target, targets)])
    scores = {
        "grids": len(picked),
        "of": len(grids),
        "exact": float(exact.mean()),
        "refused": float(refused.mean()),
        "reconstruction": float(bound.mean()),
        "target": float(target.mean()),
        "exact_where_reconstructed": float(exact[bound].mean()) if bound.any() else None,
    }
    examples = [(grids[picked[k]], targets[k], decoded[k]) for k in range(min(3, len(picked)))]
    return scores, examples


def score_operations(
    net: SlotVAE, maps: ShapeMaps, grids: np.ndarray, mu: torch.Tensor, decode, encode
) -> tuple[dict, dict]:
    """Every row of ROWS (module docstring), each with its own seed: scores and example triples."""
    scores, examples = {}, {}
    for k, (name, (kinds, depth)) in enumerate(ROWS.items()):
        scores[name], examples[name] = score_row(
            net, maps, grids, mu, decode, encode, kinds, depth, SEED + k
        )
    return scores, examples
