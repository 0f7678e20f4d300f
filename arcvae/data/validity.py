"""Is a grid one of the researchers' atoms grids (issue 25), and do a model's samples look like
them?

The rules (those `atoms.generate` draws from): a canvas x canvas grid holding 1-4 objects, an object
being a 4-connected component of one colour 1-9 of 2-15 pixels. Components are single-colour by
construction, so two touching objects of the same colour are one object, and pixels that meet only
at a corner are two.

`grid_statistics` gives the distributions the samples are compared on (object counts, object sizes,
colours), `total_variation` the distance between two of them, `compare` all of it for a model's
samples beside its data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MIN_OBJECTS, MAX_OBJECTS = 1, 4
MIN_PIXELS, MAX_PIXELS = 2, 15

# The bins of each distribution: the last bins of counts and sizes hold everything above the rules.
BINS = {
    "n_objects": [str(k) for k in range(MAX_OBJECTS + 1)] + [f"{MAX_OBJECTS + 1}+"],
    "pixels": [str(k) for k in range(1, MAX_PIXELS + 1)] + [f"{MAX_PIXELS + 1}+"],
    "colour": [str(c) for c in range(1, 10)],
}
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class GridObject:
    """One 4-connected single-colour component of a grid's non-black pixels."""

    colour: int
    cells: list[tuple[int, int]]  # (row, col) of each pixel

    @property
    def pixels(self) -> int:
        return len(self.cells)


def objects(grid) -> list[GridObject]:
    """The objects of a grid (rows x cols, colours 0-9), in reading order of their first pixel."""
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
            for dy, dx in NEIGHBOURS:
                ny, nx = y + dy, x + dx
                if 0 <= ny < height and 0 <= nx < width and not seen[ny][nx]:
                    if rows[ny][nx] == colour:
                        seen[ny][nx] = True
                        todo.append((ny, nx))
        found.append(GridObject(colour, cells))
    return found


def is_valid(grid, canvas: int) -> bool:
    """Does the grid follow the rules: canvas x canvas, 1-4 objects of 2-15 pixels each?"""
    if np.shape(grid) != (canvas, canvas):
        return False
    found = objects(grid)
    return MIN_OBJECTS <= len(found) <= MAX_OBJECTS and all(
        MIN_PIXELS <= o.pixels <= MAX_PIXELS for o in found
    )


def shares(values: list[int], labels: list[str]) -> dict[str, float]:
    """The share of `values` (bin indices) in each bin, by label; all 0 when there are none."""
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=len(labels))
    total = max(int(counts.sum()), 1)
    return {label: int(count) / total for label, count in zip(labels, counts)}


def grid_statistics(grids: Iterable) -> dict[str, dict[str, float]]:
    """Grids by object count, and their objects by size (pixels) and colour: shares per bin."""
    counts, sizes, colours = [], [], []
    for grid in grids:
        found = objects(grid)
        counts.append(min(len(found), MAX_OBJECTS + 1))
        sizes += [min(o.pixels, MAX_PIXELS + 1) - 1 for o in found]
        colours += [o.colour - 1 for o in found]
    return {
        "n_objects": shares(counts, BINS["n_objects"]),
        "pixels": shares(sizes, BINS["pixels"]),
        "colour": shares(colours, BINS["colour"]),
    }


def total_variation(p: dict[str, float], q: dict[str, float]) -> float | None:
    """Half the L1 distance between two distributions over the same bins (0 equal, 1 disjoint);
    None when either holds nothing (no objects at all)."""
    if not sum(p.values()) or not sum(q.values()):
        return None
    return 0.5 * sum(abs(p[label] - q[label]) for label in p)


def compare(samples: list, data: list, canvas: int, data_name: str) -> dict:
    """The samples beside the data they should resemble: the share of each that follows the rules,
    their statistics and the distance between them (what `sample` reports)."""
    ours, theirs = grid_statistics(samples), grid_statistics(data)
    return {
        "valid_share": float(np.mean([is_valid(g, canvas) for g in samples])),
        "canvas": canvas,
        "data": data_name,
        "data_valid_share": float(np.mean([is_valid(g, canvas) for g in data])),
        "samples": ours,
        "data_statistics": theirs,
        "total_variation": {name: total_variation(ours[name], theirs[name]) for name in BINS},
    }


def report_lines(report: dict) -> list[str]:
    """A `compare` report for the console: the valid shares, then its distributions
    (`distribution_lines`)."""
    canvas = report["canvas"]
    return [
        f"valid (validity.is_valid on {canvas}x{canvas}): {report['valid_share']:.1%} of the "
        f"samples, {report['data_valid_share']:.1%} of the {report['data']}",
        *distribution_lines(report, BINS),
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
