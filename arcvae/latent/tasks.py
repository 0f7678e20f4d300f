"""ARC tasks made in a slot model's latent: input = decode(z), output = decode(F(z)), F a chain of
operations on the code (`python -m arcvae tasks`, docs/latent.md).

A task draws its chain F: `depth` operations of the kinds asked for (no kind twice where there are
enough), each with random parameters (slot_scores.random_operation), acting on one object of every
input that a rule picks (TARGETS: the first in reading order, or the largest). Its inputs are drawn
near each other in the latent: one base code from the object prior, then for each pair every
object of the base moved by up to NEAR cells (a translation of the code, left out where it cannot
apply) and its shape code moved by N(0, SHAPE_NOISE²), the slots put back in reading order. F is
applied to each input's code and both are decoded.

A task is kept only when every grid is valid (the run's validity rules), its inputs differ, F
applies to every input's code, and every output is exactly F applied to its input as a grid
(`apply_to_grid` on the object the rule picks in the decoded input). What is left out is counted
by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from ..data.validity import NEIGHBOURS, NEIGHBOURS8, Check, is_valid
from ..data.validity import objects as found_objects
from ..models.slots import PARTS, SlotVAE
from .object_prior import ObjectPrior
from .shape_maps import ShapeMaps
from .slot_code import drawn, in_reading_order, read, slots_of, write
from .slot_operations import (
    CannotApply,
    Operation,
    apply_chain,
    apply_to_grid,
    chain_text,
    code_problems,
)
from .slot_scores import random_chain

NEAR = 2  # cells an input's objects move from the base's, at most, each way
SHAPE_NOISE = 0.1  # the standard deviation added to an input's shape codes (prior units)
BATCH = 64  # candidate tasks drawn at once
TARGETS = {  # the rules that pick the object F acts on, as a task's recipe names them
    "first": "the first object in reading order of each input",
    "largest": "the largest object (most pixels) of each input",
}
MOST_CANDIDATES = 50  # candidates per task asked for, before giving up


@dataclass(frozen=True)
class Recipe:
    """What every task of a run of `tasks` shares: the kinds its chain draws from, the chain's
    length, the train pairs a task (and one test pair), and the objects an input holds (None: as
    the prior draws them). Depth and object count set a task's difficulty."""

    kinds: tuple[str, ...]
    depth: int
    pairs: int
    objects: int | None = None
    target: str = "first"  # which object of each input F acts on: a key of TARGETS


@dataclass
class Task:
    """A kept task: its chain, the rule that picks the object it acts on (TARGETS) and its pairs
    (input, output) as grids, the last pair the test."""

    chain: list[Operation]
    target: str
    pairs: list[tuple[np.ndarray, np.ndarray]]

    def as_arc(self) -> dict:
        """The standard ARC task layout: train pairs, then the one test pair."""
        listed = [{"input": i.tolist(), "output": o.tolist()} for i, o in self.pairs]
        return {"train": listed[:-1], "test": listed[-1:]}

    def recipe(self) -> dict:
        return {
            "operations": chain_text(self.chain),
            "steps": [str(op) for op in self.chain],
            "object": TARGETS[self.target],
            "train_pairs": len(self.pairs) - 1,
            "test_pairs": 1,
        }


@dataclass
class Generator:
    """What makes tasks: the model, its shape maps and object prior, and the rules grids keep."""

    net: SlotVAE
    maps: ShapeMaps
    prior: ObjectPrior
    check: Check

    def near(self, base: torch.Tensor, copies: int, rng: np.random.Generator) -> torch.Tensor:
        """`copies` codes near each code of base (B, D): (B · copies, D), the copies of a base
        together (module docstring)."""
        net, canvas = self.net, self.check.canvas
        z = base.repeat_interleave(copies, 0)
        present = read(net, z)["presence"]
        for slot in range(net.slots):
            which = torch.full((len(z),), slot)
            shift = torch.from_numpy(rng.integers(-NEAR, NEAR + 1, (len(z), 2)))
            parts = read(net, z)
            moved = write(net, z, which, "row", parts["row"][:, slot] + shift[:, 0])
            moved = write(net, moved, which, "col", parts["col"][:, slot] + shift[:, 1])
            problems = code_problems(net, moved, which, canvas, "a nearby input")
            fits = torch.tensor([p is None for p in problems]) & present[:, slot]
            z = torch.where(fits[:, None], moved, z)
        noise = slots_of(net, torch.from_numpy(rng.normal(0, SHAPE_NOISE, z.shape)).float())
        noise[..., : len(PARTS)] = 0  # the exact parts stay exact
        z = z + (noise * present[..., None]).flatten(1)
        return in_reading_order(net, z, canvas)

    def candidates(self, recipe: Recipe, seed: int, decode) -> tuple[list, Counter]:
        """BATCH candidate tasks from one seed: those kept, and why the others were not."""
        rng = np.random.default_rng(seed)
        canvas, copies = self.check.canvas, recipe.pairs + 1
        base = self.prior.sample(self.net, BATCH, seed, recipe.objects)
        picked, _ = self.targets(base, recipe.target)
        colours = read(self.net, base)["colour"][torch.arange(BATCH), picked].tolist()
        chains = [random_chain(recipe.kinds, recipe.depth, rng, c, distinct=True) for c in colours]
        inputs = self.near(base, copies, rng)
        slots, single = self.targets(inputs, recipe.target)
        outputs = inputs.clone()
        refused = ~single.numpy()
        for t, chain in enumerate(chains):
            rows = slice(t * copies, (t + 1) * copies)
            outputs[rows], problems = apply_chain(
                self.net, self.maps, inputs[rows], slots[rows], chain, canvas
            )
            refused[rows] |= [p is not None for p in problems]
        grids_in, grids_out = decode(inputs), decode(outputs)
        kept, dropped = [], Counter()
        for t, chain in enumerate(chains):
            rows = range(t * copies, (t + 1) * copies)
            pairs = [(grids_in[r], grids_out[r]) for r in rows]
            why = self.judge(chain, [i for i, _ in pairs], [o for _, o in pairs], recipe)
            if refused[t * copies : (t + 1) * copies].any():
                why = "the chain cannot apply to every input's code (or no single target)"
            if why:
                dropped[why] += 1
            else:
                kept.append(Task(chain, recipe.target, pairs))
        return kept, dropped

    def targets(self, z: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The slot (B,) each code's target object is in, and whether there is exactly one such
        object (B,) bool: slot 0 for "first" (slots are in reading order), the slot drawing most
        cells for "largest"."""
        present = read(self.net, z)["presence"]
        if target == "first":
            return torch.zeros(len(z), dtype=torch.long), present[:, 0]
        sizes = drawn(self.net, z, self.check.canvas).flatten(2).sum(2) * present  # (B, K)
        most = sizes.max(1).values
        return sizes.argmax(1), (sizes == most[:, None]).sum(1) == 1

    def judge(
        self, chain, inputs: list[np.ndarray], outputs: list[np.ndarray], recipe: Recipe
    ) -> str | None:
        """Why a candidate task is not kept (None: it is)."""
        rules, canvas = self.check.rules, self.check.canvas
        if not all(is_valid(g, canvas, rules) for g in inputs + outputs):
            return "a grid is not valid"
        neighbours = NEIGHBOURS8 if self.net.connectivity == 8 else NEIGHBOURS
        found = [found_objects(g, neighbours) for g in inputs]
        if recipe.objects is not None and any(len(f) != recipe.objects for f in found):
            return f"an input does not hold {recipe.objects} objects"
        if len({g.tobytes() for g in inputs}) < len(inputs):
            return "two inputs are the same grid"
        for grid, output, its_objects in zip(inputs, outputs, found):
            target = target_cells(its_objects, recipe.target, grid.shape)
            if target is None:
                return "an input has no single target object"
            try:
                wanted, _ = apply_to_grid(
                    grid, target, chain, self.net.connectivity, self.maps.largest_pixels
                )
            except CannotApply:
                return "the chain cannot apply to an input grid"
            if not np.array_equal(wanted, output):
                return "an output is not F of its input"
        return None


def target_cells(found: list, target: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The cells (a bool mask of `shape`) of the object a TARGETS rule picks among a grid's
    objects (`validity.objects`, in reading order); None where it picks none or two."""
    if not found:
        return None
    if target == "first":
        chosen = found[0]
    else:
        sizes = [o.pixels for o in found]
        if sizes.count(max(sizes)) > 1:
            return None
        chosen = found[sizes.index(max(sizes))]
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(np.array(chosen.cells).T)] = True
    return mask


def generate_tasks(
    generator: Generator, recipe: Recipe, n: int, seed: int, decode
) -> tuple[list[Task], Counter, int]:
    """n tasks (fewer if MOST_CANDIDATES · n candidates keep fewer), why the others were left out,
    and how many candidates were drawn."""
    kept, dropped, drawn = [], Counter(), 0
    batch = 0
    while len(kept) < n and drawn < MOST_CANDIDATES * n:
        tasks, why = generator.candidates(recipe, seed * 100_003 + batch, decode)
        kept += tasks
        dropped += why
        drawn += BATCH
        batch += 1
    return kept[:n], dropped, drawn
