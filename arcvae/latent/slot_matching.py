"""Slot-matched disentanglement of a slot model (`models/slots.py`): each slot scored against the
factors of the generator object it codes, not the grid's object 0 (the issue's "slot-matched MIG and
DCI against each object's factors, per factor").

A slot is the k-th single-colour connected component of its grid (`components`); the generator's
files carry each object's kind, colour, pixels, row, col, height and width (`atoms.SLOT_FACTORS`,
arrays (N, objects), -1 where absent). `match_slots` pairs each present slot with the object that is
the same set of pixels and pools the matched pairs over the grids: one row per object, its slot's
`per_slot` dims of μ beside its factors. `slot_disentanglement` scores those rows with MIG and DCI
(disentanglement.py), per factor, with each dim named by its part within a slot (row, colour,
shape 3, ...): pooling the slots asks whether slot k's row dim tells the row of whatever object slot
k holds, the same question for every slot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..data.atoms import SLOT_FACTORS
from ..data.grids import Grids
from ..errors import ArcVaeError
from ..models.slots import SlotVAE
from .disentanglement import dci, mig, one_minus_entropy
from .slot_code import parse

DCI_MAX_OBJECTS = 3000  # objects the trees are fitted on, a seeded subsample: ~19 s a 1000
SEED = 0
BOX = ("row", "col", "height", "width", "colour")  # what names a component within its grid


@dataclass(frozen=True)
class MatchedObjects:
    """The objects matched to slots, pooled over the grids: row m is one object."""

    codes: np.ndarray  # (M, per_slot) float: its slot's dims of μ
    factors: np.ndarray  # (M, len(SLOT_FACTORS)) int: kind, colour, pixels, row, col, height, width
    grid: np.ndarray  # (M,) the grid it is in
    slot: np.ndarray  # (M,) the slot that codes it
    placed: np.ndarray  # (M,) its column in the generator's arrays (its order of placement)
    dim_names: list[str]  # (per_slot,) each dim's part within a slot: 'presence', ..., 'shape 15'
    # slots_matched, slots_unmatched (present slots that are no generator object), objects,
    # objects_unmatched, objects_beyond_slots (of the unmatched: in grids with more components
    # than slots), grids
    counts: dict[str, int]


def object_factors(grids: Grids, where: str) -> dict[str, np.ndarray]:
    """Each object's factors by name (SLOT_FACTORS), (N, objects) int, -1 where absent: the arrays
    an atoms file (or `data.source: atoms`) carries. An ArcVaeError naming `where` when the grids
    have none."""
    found = {name: grids.extras.get(name) for name in SLOT_FACTORS}
    shapes = {None if v is None else v.shape for v in found.values()}
    if None in shapes or len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ArcVaeError(
            f"{where}: its grids carry no per-object factors (arrays {', '.join(SLOT_FACTORS)} of "
            "shape (grids, objects), as `python -m arcvae atoms` writes); slot-matched scores need "
            "data.source atoms or such a file"
        )
    return {name: values.astype(np.int64) for name, values in found.items()}


def match_slots(net: SlotVAE, grids: Grids, mu: np.ndarray, where: str) -> MatchedObjects:
    """The slots of grids (their μ (N, D) from `net`) matched to the generator objects they code.

    Matching is by masks. The atoms generator's objects never touch 4-adjacently (atoms.py), so
    each object is exactly one component of the parse, and a component is the object whose box
    (row, col, height, width) and colour are its own: no two components of one colour in a grid
    share a box, since a left-right path of one would cross a top-bottom path of the other, and
    crossing paths meet or touch, which would make them one component. So equal box, colour and
    pixel count means equal masks (the count is checked too: where objects of one colour touch, as
    touching.py's may, they merge into a component that is neither, and stay unmatched). A slot
    and an object match only one to one; an object beyond the model's slots is unmatched.
    """
    if not isinstance(net, SlotVAE):
        raise ArcVaeError(f"{where}: slot-matched scores need a slot model (model.arch=slots)")
    objects = object_factors(grids, where)
    if mu.shape != (len(grids), net.latent_dim):
        raise ValueError(f"μ is {mu.shape}, not (grids, D) = ({len(grids)}, {net.latent_dim})")
    parsed = parse(grids.pixels, net.slots, net.connectivity)  # (N, K) each
    present = objects["row"] >= 0  # (N, J)

    same = parsed["present"][:, :, None] & present[:, None, :]  # (N, K, J)
    for name in (*BOX, "pixels"):
        same &= parsed[name][:, :, None] == objects[name][:, None, :]
    one_to_one = same & (same.sum(2, keepdims=True) == 1) & (same.sum(1, keepdims=True) == 1)
    grid, slot, obj = np.nonzero(one_to_one)  # in reading order: by grid, then slot

    slots = mu.reshape(len(mu), net.slots, net.per_slot)
    # a slot's presence mean is +1 exactly where the parse finds it: a μ of other grids would not
    if not np.array_equal(slots[..., 0] > 0, parsed["present"]):
        raise ValueError("μ's presence dims disagree with the parse of these grids")
    beyond = present & ~one_to_one.any(1) & (parsed["count"] > net.slots)[:, None]
    counts = {
        "grids": len(grids),
        "slots_matched": len(grid),
        "slots_unmatched": int(parsed["present"].sum()) - len(grid),
        "objects": int(present.sum()),
        "objects_unmatched": int(present.sum()) - len(grid),
        "objects_beyond_slots": int(beyond.sum()),
    }
    return MatchedObjects(
        codes=slots[grid, slot].astype(np.float64),
        factors=np.stack([objects[name][grid, obj] for name in SLOT_FACTORS], axis=1),
        grid=grid,
        slot=slot,
        placed=obj,
        dim_names=[name.split(": ", 1)[1] for name in net.dim_names[: net.per_slot]],
        counts=counts,
    )


def slot_disentanglement(
    matched: MatchedObjects, max_objects: int = DCI_MAX_OBJECTS, seed: int = SEED
) -> dict:
    """MIG and DCI of the matched objects' slot codes against their factors, overall and per
    factor; a plain dict for JSON.

    MIG on every matched object; DCI on a seeded subsample of at most `max_objects` (gradient-
    boosted trees cost rows × classes, and row or col have 16 classes). Per factor:
      MIG: the gap, the best and second dims by name, I(best dim; factor) / H(factor);
      DCI: completeness (1 - the entropy of its importance column, base D), disentanglement (the
        per-dim disentanglement averaged with this factor's importance as weights: do the dims
        that tell this factor tell it alone), the most important dim and its share of the column,
        and the trees' accuracy on held-out objects.
    """
    names, factors, codes = matched.dim_names, matched.factors, matched.codes
    if len(codes) < 10:
        raise ArcVaeError(f"{len(codes)} objects matched to slots; slot-matched scores need 10")
    m = mig(codes, factors)
    mi = np.array(m["mutual_information_nats"])  # (D, F)
    order = np.argsort(-mi, axis=0, kind="stable")  # (D, F)

    rows = np.arange(len(codes))
    if len(rows) > max_objects:
        rows = np.sort(np.random.default_rng(seed).choice(len(codes), max_objects, replace=False))
    start = time.perf_counter()
    d = dci(codes[rows], factors[rows])
    seconds = time.perf_counter() - start
    r = np.array(d["importance"])  # (D, F)
    dim_disentanglement = one_minus_entropy(r)  # (D,)
    column = r.sum(0)  # (F,)

    per_factor = {}
    for k, name in enumerate(SLOT_FACTORS):
        weights = r[:, k] / column[k] if column[k] > 0 else None
        h = m["entropy_nats"][k]
        per_factor[name] = {
            "mig": m["per_factor"][k],
            "mig_best_dim": names[order[0, k]],
            "mig_second_dim": names[order[1, k]],
            "mi_best_share": float(mi[order[0, k], k] / h) if h > 0 else None,
            "entropy_nats": h,
            "dci_completeness": float(one_minus_entropy(r[:, k][None])[0])
            if weights is not None
            else None,
            "dci_disentanglement": float(weights @ dim_disentanglement)
            if weights is not None
            else None,
            "dci_top_dim": names[int(r[:, k].argmax())] if weights is not None else None,
            "dci_top_share": float(weights.max()) if weights is not None else None,
            "accuracy": d["accuracy_per_factor"][k],
        }
    return {
        "factors": list(SLOT_FACTORS),
        "dims": names,
        "matching": matched.counts,
        "mig": {"score": m["score"], "objects": len(codes)},
        "dci": {
            "disentanglement": d["disentanglement"],
            "completeness": d["completeness"],
            "informativeness": d["informativeness"],
            "informativeness_train": d["informativeness_train"],
            "objects": len(rows),
            "cap": f"a seeded subsample (seed {seed}) of at most {max_objects} matched objects",
            "seconds": round(seconds, 1),
            "importance": d["importance"],  # (D, F)
            "dim_disentanglement": dim_disentanglement.tolist(),  # (D,)
        },
        "per_factor": per_factor,
    }


def report_lines(result: dict) -> list[str]:
    """`slot_disentanglement`'s result as console lines: the matching, the overall scores, then one
    line per factor (MIG gap and best dim, DCI disentanglement, completeness, accuracy)."""
    c, m, d = result["matching"], result["mig"], result["dci"]
    lines = [
        f"slot-matched: {c['slots_matched']} of {c['objects']} objects matched to slots in "
        f"{c['grids']} grids ({c['objects_unmatched']} unmatched, {c['slots_unmatched']} slots "
        "no object)",
        f"  MIG {fmt(m['score'])} on {m['objects']} objects; DCI disentanglement "
        f"{fmt(d['disentanglement'])}  completeness {fmt(d['completeness'])}  informativeness "
        f"{fmt(d['informativeness'])} on {d['objects']} objects ({d['seconds']:.0f} s)",
    ]
    width = max(len(name) for name in result["factors"])
    for name in result["factors"]:
        f = result["per_factor"][name]
        lines.append(
            f"  {name:<{width}}  MIG {fmt(f['mig'])} ({f['mig_best_dim']})  DCI D "
            f"{fmt(f['dci_disentanglement'])} C {fmt(f['dci_completeness'])} "
            f"({f['dci_top_dim'] or '-'})  accuracy {fmt(f['accuracy'])}"
        )
    return lines


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
