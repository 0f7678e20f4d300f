"""Pictures of the latent space: the maps of latent/maps.py drawn, one file per colouring."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..latent.maps import MAX_POINTS, METHODS, Colouring, project
from .grids import ARC_PALETTE

OTHER = "#cccccc"
CLASS_COLOURS = plt.cm.tab10.colors


def _scatter(ax, points: np.ndarray, colouring: Colouring) -> None:
    if colouring.scale == "continuous":
        shown = ax.scatter(*points.T, c=colouring.values, cmap="viridis", s=4, linewidths=0)
        plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        return
    for value in np.unique(colouring.values).tolist():
        if colouring.scale == "palette":
            colour = ARC_PALETTE[value]
        else:
            colour = OTHER if value < 0 else CLASS_COLOURS[value % len(CLASS_COLOURS)]
        where = colouring.values == value
        label = colouring.labels.get(value, str(value))
        ax.scatter(*points[where].T, color=colour, s=4, linewidths=0, label=label)
    ax.legend(fontsize=6, markerscale=2.5, loc="best", framealpha=0.6)


def save_maps(
    out: Path,
    mu: np.ndarray,
    colourings: list[Colouring],
    title: str,
    methods: tuple[str, ...] = METHODS,
) -> list[Path]:
    """One picture per colouring, `latent_map_<name>.png` in `out`, a panel per method, of the
    first MAX_POINTS grids; returns the files written."""
    mu = mu[:MAX_POINTS]
    projected = {method: project(mu, method) for method in methods}
    written = []
    for colouring in colourings:
        shown = dataclasses.replace(colouring, values=colouring.values[:MAX_POINTS])
        fig, axes = plt.subplots(1, len(methods), figsize=(5.2 * len(methods), 4.6), squeeze=False)
        for ax, method in zip(axes[0], methods):
            points, what = projected[method]
            _scatter(ax, points, shown)
            ax.set_title(what, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{title}, coloured by {colouring.name}", fontsize=9)
        fig.tight_layout()
        path = out / f"latent_map_{colouring.name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
