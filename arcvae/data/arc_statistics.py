"""Do a model's samples look like ARC grids? Distributions a person would look at, of a set of
grids, and the distance between two sets (what `sample` reports for a run not trained on atoms).

  black: each grid's share of black pixels, in tenths;
  colours: the number of distinct colours in each grid, black included;
  component: the sizes of the single-colour 4-connected components of non-black pixels
      (`validity.objects`), in doubling bins: ARC's objects;
  side: each grid's longest side, in fives;
  symmetric: the share of grids equal to their mirror left-right or top-bottom, their transpose
      (square grids) or their half turn.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .validity import objects, shares, total_variation

COMPONENT_EDGES = (1, 2, 3, 5, 9, 17, 33, 65)  # bin k holds sizes from edge k to edge k+1 - 1
ARC_BINS = {
    "black": [f"{10 * k}%" for k in range(10)],
    "colours": [str(k) for k in range(1, 11)],
    "component": ["1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", "65+"],
    "side": ["1-5", "6-10", "11-15", "16-20", "21-25", "26-30"],
    "symmetric": ["no", "yes"],
}


def is_symmetric(grid: np.ndarray) -> bool:
    mirrors = [grid[:, ::-1], grid[::-1], grid[::-1, ::-1]]
    if grid.shape[0] == grid.shape[1]:
        mirrors.append(grid.T)
    return any(np.array_equal(grid, m) for m in mirrors)


def arc_statistics(grids: Iterable[np.ndarray]) -> dict[str, dict[str, float]]:
    """The shares of each ARC_BINS distribution over the grids (components: over all of theirs)."""
    black, colours, components, sides, symmetric = [], [], [], [], []
    for grid in grids:
        grid = np.asarray(grid)
        black.append(min(int(10 * np.mean(grid == 0)), 9))
        colours.append(len(np.unique(grid)) - 1)
        sizes = [o.pixels for o in objects(grid)]
        components += (np.searchsorted(COMPONENT_EDGES, sizes, side="right") - 1).tolist()
        sides.append((max(grid.shape) - 1) // 5)
        symmetric.append(int(is_symmetric(grid)))
    return {
        "black": shares(black, ARC_BINS["black"]),
        "colours": shares(colours, ARC_BINS["colours"]),
        "component": shares(components, ARC_BINS["component"]),
        "side": shares(sides, ARC_BINS["side"]),
        "symmetric": shares(symmetric, ARC_BINS["symmetric"]),
    }


def compare_arc(samples: list[np.ndarray], data: list[np.ndarray], data_name: str) -> dict:
    """The samples' statistics beside the data's, and the total variation between each pair of
    distributions; `mean_total_variation` over the five (0: alike, 1: disjoint)."""
    ours, theirs = arc_statistics(samples), arc_statistics(data)
    distances = {name: total_variation(ours[name], theirs[name]) for name in ARC_BINS}
    known = [d for d in distances.values() if d is not None]
    return {
        "data": data_name,
        "samples": ours,
        "data_statistics": theirs,
        "total_variation": distances,
        "mean_total_variation": float(np.mean(known)) if known else None,
    }
