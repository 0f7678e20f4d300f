"""Is a grid one of the researchers' generated grids (issue 25), and do a model's samples look like
them?

Two sets of rules (`Rules`), one a generator:
  ATOMS (`atoms.generate`): 1-4 objects, an object being a 4-connected component of one colour 1-9
      of 2-15 pixels; pixels that meet only at a corner are two objects.
  TOUCHING (`touching.generate`): 1-6 objects, an object being an 8-connected component of one
      colour of 2-150 pixels (six touching 5x5 rectangles of one colour); a diagonal line is one.
Components are single-colour by construction, so two touching objects of the same colour are one
object, and touching objects of two colours are two. A `Check` is a set of rules on a canvas: what
`sample` judges a run's samples by (`grids.atoms_canvas` finds it from the run's data source).

`grid_statistics` gives the distributions the samples are compared on (object counts, object sizes,
colours), `total_variation` the distance between two of them, `compare` all of it for a model's
samples beside its data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # 4-connectivity
NEIGHBOURS8 = NEIGHBOURS + ((-1, -1), (-1, 1), (1, -1), (1, 1))  # and the corners


@dataclass(frozen=True)
class Rules:
    """What one generator's grids are: how pixels join into objects, how many objects a grid holds
    and how large each is; and how the statistics bin them."""

    name: str
    neighbours: tuple[tuple[int, int], ...]
    objects: tuple[int, int]  # the fewest and the most objects a grid
    pixels: tuple[int, int]  # the smallest and the largest object
    # Object sizes up to this have a bin each in the statistics, the larger share the last bin: a
    # bin for each of TOUCHING's 150 sizes would make a console row too wide to read.
    binned_pixels: int

    @property
    def bins(self) -> dict[str, list[str]]:
        """The bins of each distribution: the last bins of counts and sizes hold all above."""
        most, sizes = self.objects[1], self.binned_pixels
        return {
            "n_objects": [str(k) for k in range(most + 1)] + [f"{most + 1}+"],
            "pixels": [str(k) for k in range(1, sizes + 1)] + [f"{sizes + 1}+"],
            "colour": [str(c) for c in range(1, 10)],
        }


ATOMS = Rules("atoms", NEIGHBOURS, objects=(1, 4), pixels=(2, 15), binned_pixels=15)
# The largest drawn touching object is a 5x5 rectangle (25 pixels, the last bin of its own).
TOUCHING = Rules("touching", NEIGHBOURS8, objects=(1, 6), pixels=(2, 6 * 25), binned_pixels=25)
RULES = {rules.name: rules for rules in (ATOMS, TOUCHING)}

# The atoms rules by their old names (atoms.py and callers from before TOUCHING).
MIN_OBJECTS, MAX_OBJECTS = ATOMS.objects
MIN_PIXELS, MAX_PIXELS = ATOMS.pixels
BINS = ATOMS.bins


@dataclass(frozen=True)
class Check:
    """A set of rules on a canvas x canvas grid: what a run's samples are judged by."""

    rules: Rules
    canvas: int


@dataclass(frozen=True)
class GridObject:
    """One connected single-colour component of a grid's non-black pixels."""

    colour: int
    cells: list[tuple[int, int]]  # (row, col) of each pixel

    @property
    def pixels(self) -> int:
        return len(self.cells)


def objects(grid, neighbours: tuple[tuple[int, int], ...] = NEIGHBOURS) -> list[GridObject]:
    """The objects of a grid (rows x cols, colours 0-9), in reading order of their first pixel:
    its single-colour components joined through `neighbours` (4-connected by default)."""
    array = np.asarray(grid)
    height, width = array.shape
    rows = array.tolist()  # Python lists: a flood fill visits each pixel once, faster than numpy
    seen = [[False] * width for _ in range(height)]
    found = []
    for start in np.flatnonzero(array).tolist():
        r, c = divmod(start, width)
        if seen[r][c]:
            continue
        colour = rows[r][c]
        seen[r][c] = True
        cells, todo = [], [(r, c)]
        while todo:
            y, x = todo.pop()
            cells.append((y, x))
            for dy, dx in neighbours:
                ny, nx = y + dy, x + dx
                if 0 <= ny < height and 0 <= nx < width and not seen[ny][nx]:
                    if rows[ny][nx] == colour:
                        seen[ny][nx] = True
                        todo.append((ny, nx))
        found.append(GridObject(colour, cells))
    return found


def is_valid(grid, canvas: int, rules: Rules = ATOMS) -> bool:
    """Does the grid follow the rules: canvas x canvas, integer colours 0-9, as many objects of
    such sizes as they allow (the atoms rules: 1-4 objects of 2-15 pixels each)?"""
    array = np.asarray(grid)
    if array.shape != (canvas, canvas) or not np.issubdtype(array.dtype, np.integer):
        return False
    if array.size and (array.min() < 0 or array.max() > 9):
        return False
    found = objects(array, rules.neighbours)
    (fewest, most), (smallest, largest) = rules.objects, rules.pixels
    return fewest <= len(found) <= most and all(smallest <= o.pixels <= largest for o in found)


def shares(values: list[int], labels: list[str]) -> dict[str, float]:
    """The share of `values` (bin indices) in each bin, by label; all 0 when there are none."""
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=len(labels))
    total = max(int(counts.sum()), 1)
    return {label: int(count) / total for label, count in zip(labels, counts)}


def grid_statistics(grids: Iterable, rules: Rules = ATOMS) -> dict[str, dict[str, float]]:
    """Grids by object count, and their objects by size (pixels) and colour: shares per bin of
    `rules.bins`, objects found as `rules` join them."""
    counts, sizes, colours = [], [], []
    most, binned = rules.objects[1], rules.binned_pixels
    for grid in grids:
        found = objects(grid, rules.neighbours)
        counts.append(min(len(found), most + 1))
        sizes += [min(o.pixels, binned + 1) - 1 for o in found]
        colours += [o.colour - 1 for o in found]
    bins = rules.bins
    return {
        "n_objects": shares(counts, bins["n_objects"]),
        "pixels": shares(sizes, bins["pixels"]),
        "colour": shares(colours, bins["colour"]),
    }


def total_variation(p: dict[str, float], q: dict[str, float]) -> float | None:
    """Half the L1 distance between two distributions over the same bins (0 equal, 1 disjoint);
    None when either holds nothing (no objects at all)."""
    if not sum(p.values()) or not sum(q.values()):
        return None
    return 0.5 * sum(abs(p[label] - q[label]) for label in p)


def compare(samples: list, data: list, check: Check | int, data_name: str) -> dict:
    """The samples beside the data they should resemble: the share of each that follows the rules,
    their statistics and the distance between them (what `sample` reports). `check` is a `Check`,
    or a canvas side for the atoms rules."""
    if not isinstance(check, Check):
        check = Check(ATOMS, check)
    rules, canvas = check.rules, check.canvas
    ours, theirs = grid_statistics(samples, rules), grid_statistics(data, rules)
    return {
        "valid_share": float(np.mean([is_valid(g, canvas, rules) for g in samples])),
        "canvas": canvas,
        "rules": rules.name,
        "data": data_name,
        "data_valid_share": float(np.mean([is_valid(g, canvas, rules) for g in data])),
        "samples": ours,
        "data_statistics": theirs,
        "total_variation": {name: total_variation(ours[name], theirs[name]) for name in rules.bins},
    }


def report_lines(report: dict) -> list[str]:
    """A `compare` report for the console: the valid shares, then its distributions
    (`distribution_lines`)."""
    canvas, rules = report["canvas"], RULES[report.get("rules", ATOMS.name)]
    named = "" if rules is ATOMS else f", the {rules.name} rules,"  # the atoms line as it was
    return [
        f"valid (validity.is_valid{named} on {canvas}x{canvas}): {report['valid_share']:.1%} of "
        f"the samples, {report['data_valid_share']:.1%} of the {report['data']}",
        *distribution_lines(report, rules.bins),
    ]


def distribution_lines(report: dict, bins: dict[str, list[str]]) -> list[str]:
    """Two rows per distribution of `bins` in percent, the samples' above the data's, and their
    distance: the report's `samples`, `data_statistics` and `total_variation`."""
    lines = []
    for name, labels in bins.items():
        distance = report["total_variation"][name]
        width = max(4, *(len(label) for label in labels))
        lines.append(f"  {name:<9} " + " ".join(f"{label:>{width}}" for label in labels) + "    TV")
        for who, stats in (("samples", report["samples"]), ("data", report["data_statistics"])):
            row = " ".join(f"{100 * stats[name][label]:{width}.0f}" for label in labels)
            tv = "" if who == "data" else "     -" if distance is None else f"  {distance:.3f}"
            lines.append(f"  {who:<9} {row}{tv}")
    return lines
