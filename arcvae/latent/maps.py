"""A map of the latent space: the posterior means μ of held-out grids projected to two dimensions,
coloured by what is known of each grid (issue 27): the projections and colourings here, the
pictures in pictures/maps.py.

PCA is linear and fast: its axes are the directions of most variance, so distances along them mean
what they say. t-SNE (van der Maaten & Hinton 2008; scikit-learn's Barnes-Hut) keeps neighbourhoods
instead: clusters show, but distances between them and their sizes mean nothing. t-SNE rather than
UMAP because scikit-learn, already a dependency, has it; UMAP would add umap-learn and numba for a
picture of the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.atoms import FACTOR_NAMES, KINDS
from ..data.grids import Grids
from ..errors import ArcVaeError

METHODS = ("pca", "tsne")
MAX_POINTS = 2000  # grids a map shows (the first ones): t-SNE's cost grows with their number
MIN_POINTS = 3  # PCA to 2 dimensions needs 2 points, t-SNE a perplexity below N - 1
TOP_TASKS = 10  # a map by task colours the tasks with most grids; the others are grey
SEED = 0
SCORED = ("kind", "colour", "pixels", "row", "col")  # the factors of a one-object grid
SCALES = {"kind": "classes", "colour": "palette", "n_objects": "classes"}  # the rest: continuous


@dataclass(frozen=True)
class Colouring:
    """What colours a map's points: one value per grid, drawn as `scale` says."""

    name: str  # the factor or property: 'colour', 'row', 'longest_side', 'task'
    values: np.ndarray  # (N,) ints
    # 'classes': a legend of distinct colours, named by `labels`; 'palette': the values are ARC
    # colours, drawn in them; 'continuous': a colour bar
    scale: str
    labels: dict[int, str] = field(default_factory=dict)


def project(mu: np.ndarray, method: str) -> tuple[np.ndarray, str]:
    """(N, 2) points of μ (N, D) by `method`, and what the axes are."""
    # imported here: scikit-learn takes a second to import, and every training run imports this
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "pca":
        pca = PCA(n_components=2, random_state=SEED)
        points = pca.fit_transform(mu)
        share = pca.explained_variance_ratio_
        return points, f"PCA: axes explain {share[0]:.0%} and {share[1]:.0%} of the variance"
    if method == "tsne":
        perplexity = min(30.0, (len(mu) - 1) / 3)  # t-SNE needs perplexity < N
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=SEED).fit_transform(mu)
        return points, f"t-SNE (perplexity {perplexity:g}): neighbourhoods, not distances"
    raise ValueError(f"unknown method {method!r}")


def task_colouring(tasks: np.ndarray) -> Colouring:
    """Tasks as classes: the TOP_TASKS tasks with the most grids; the rest one grey class (-1)."""
    names, counts = np.unique(tasks, return_counts=True)
    top = names[np.argsort(-counts, kind="stable")[:TOP_TASKS]]
    values = np.full(len(tasks), -1)
    for i, name in enumerate(top):
        values[tasks == name] = i
    labels = {i: str(name) for i, name in enumerate(top)} | {-1: "other tasks"}
    return Colouring("task", values, "classes", labels)


def grid_factors(grids: Grids) -> dict[str, np.ndarray] | None:
    """The grids' factors by name ('kind', ..., 'n_objects': object 0's and the count) from the
    `factors` array an atoms file holds (atoms.FACTOR_NAMES); None when they have none."""
    factors = grids.extras.get("factors")
    if factors is None or factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        return None
    return {name.removesuffix("_0"): factors[:, k] for k, name in enumerate(FACTOR_NAMES)}


def factor_colourings(factors: dict[str, np.ndarray], names: tuple[str, ...]) -> list[Colouring]:
    labels = {"kind": dict(enumerate(KINDS))}
    return [
        Colouring(name, factors[name], SCALES.get(name, "continuous"), labels.get(name, {}))
        for name in names
    ]


def grid_colourings(grids: Grids) -> list[Colouring]:
    """What a map of these grids is coloured by: their factors when they have them (over all
    grids, object 0's), else their longest side and, for ARC tasks, their task."""
    factors = grid_factors(grids)
    if factors is not None:
        return factor_colourings(factors, ("n_objects", *SCORED))
    colourings = [Colouring("longest_side", grids.sizes.max(dim=1).values.numpy(), "continuous")]
    if "task" in grids.extras:
        colourings.append(task_colouring(grids.extras["task"]))
    return colourings


def factor_columns(grids: Grids, where: str) -> dict[str, np.ndarray]:
    """The grids' factors by name; an ArcVaeError naming `where` when they have none."""
    factors = grid_factors(grids)
    if factors is None:
        raise ArcVaeError(
            f"{where}: its grids carry no factors (an array 'factors' of {len(FACTOR_NAMES)} "
            "columns, as `python -m arcvae atoms` writes); train on data.source atoms or on such "
            "a file. `python -m arcvae map RUN` draws the latent map of any run"
        )
    return factors
