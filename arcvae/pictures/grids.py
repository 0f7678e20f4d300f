"""Pictures of grids in the standard ARC palette: originals above their reconstructions, and tables
of grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

# fchollet/ARC-AGI apps/css/common.css, colours 0-9.
ARC_PALETTE = [
    "#000000",
    "#0074D9",
    "#FF4136",
    "#2ECC40",
    "#FFDC00",
    "#AAAAAA",
    "#F012BE",
    "#FF851B",
    "#7FDBFF",
    "#870C25",
]
ARC_CMAP = ListedColormap(ARC_PALETTE)
GRID_LINES = "#555555"  # as in the ARC app: shows black cells against the black padding


def _grid(ax, grid: np.ndarray, title: str, extent: tuple[int, int] | None) -> None:
    """One grid in the palette with cell lines; `extent` (rows, cols) outlines the true grid when
    the view is larger."""
    rows, cols = grid.shape
    ax.imshow(grid, cmap=ARC_CMAP, vmin=0, vmax=9, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color=GRID_LINES, linewidth=0.4 if max(rows, cols) > 15 else 0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if extent is not None and extent != (rows, cols):
        ax.add_patch(
            Rectangle(
                (-0.5, -0.5),
                extent[1],
                extent[0],
                fill=False,
                edgecolor="white",
                linestyle="--",
                linewidth=1.2,
            )
        )
    ax.set_title(title, fontsize=7)


def _blank_axes(n_rows: int, n_cols: int, size: tuple[float, float]):
    """A figure of n_rows x n_cols axes, all hidden until a grid is drawn in one."""
    fig, axes = plt.subplots(n_rows, n_cols, figsize=size, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def _save(fig, path: Path, title: str) -> None:
    """Write the figure, the title in a strip of fixed height (a share of the height would cut into
    a tall figure's first row)."""
    top = 1.0
    if title:
        top = 1 - 0.35 / fig.get_figheight()
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / fig.get_figheight(), va="top")
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _view(recon: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """The true grid grown to take in any colour the decoder painted in the padding (a mistake to
    show)."""
    painted = np.argwhere(recon != 0)
    if not len(painted):
        return size
    return max(size[0], painted[:, 0].max() + 1), max(size[1], painted[:, 1].max() + 1)


def _pair_title(original: np.ndarray, recon: np.ndarray) -> str:
    """original: the true grid; recon: the reconstruction on the same pixels, or of its own
    (predicted) shape."""
    if recon.shape != original.shape:
        return f"shape {recon.shape[0]}×{recon.shape[1]}"
    if (original == recon).all():
        return "exact"
    colour = original != 0
    if not colour.any():
        return f"pixels {(original == recon).mean():.0%}"
    return f"non-black {(original[colour] == recon[colour]).mean():.0%}"


def save_reconstructions(
    path: Path,
    originals: np.ndarray,
    recons: list[np.ndarray],
    title: str = "",
    sizes: np.ndarray | None = None,
) -> None:
    """Originals (N, S, S) above their reconstructions, each pair cropped to the true grid.

    sizes (N, 2) gives each grid's (rows, cols) before padding; without it the whole canvas is
    drawn. A reconstruction is a whole (S, S) canvas (black mode: anything painted past the grid is
    shown too) or a grid of its predicted shape (symbol mode). Under each: 'exact', the recall of
    the original's non-black pixels, or the wrong shape it came back with.
    """
    n = len(originals)
    cols = min(n, 8)
    pair_rows = (n + cols - 1) // cols
    fig, axes = _blank_axes(2 * pair_rows, cols, (1.5 * cols + 0.4, 3.1 * pair_rows))
    for i in range(n):
        r = 2 * (i // cols)
        c = i % cols
        size = tuple(int(v) for v in sizes[i]) if sizes is not None else originals[i].shape
        truth = originals[i][: size[0], : size[1]]
        recon = recons[i]
        # a whole canvas: crop both to the grid and what was painted past it
        if recon.shape == originals[i].shape:
            rows, width = _view(recon, size)
            shown, recon, judged = (
                originals[i][:rows, :width],
                recon[:rows, :width],
                recon[: size[0], : size[1]],
            )
        else:
            shown = truth
            judged = recon
        for ax in (axes[r][c], axes[r + 1][c]):
            ax.axis("on")
        _grid(axes[r][c], shown, f"{size[0]}×{size[1]}", size)
        _grid(axes[r + 1][c], recon, _pair_title(truth, judged), size)
    for r in range(pair_rows):
        axes[2 * r][0].set_ylabel("original", fontsize=8)
        axes[2 * r + 1][0].set_ylabel("reconstruction", fontsize=8)
    _save(fig, path, title)


def save_grid_table(
    path: Path,
    rows: list[list[np.ndarray]],
    title: str = "",
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
) -> None:
    """Rows of grids (of any shapes; rows may differ in length), each titled with its shape;
    `col_labels` head the first row's cells, `row_labels` stand left of each row (latent traversals,
    interpolations, samples)."""
    n_cols = max(len(row) for row in rows)
    fig, axes = _blank_axes(len(rows), n_cols, (1.3 * n_cols + 1.2, 1.45 * len(rows) + 0.5))
    for r, row in enumerate(rows):
        for c, grid in enumerate(row):
            shape = f"{grid.shape[0]}×{grid.shape[1]}"
            axes[r][c].axis("on")
            _grid(
                axes[r][c],
                grid,
                f"{col_labels[c]}  ({shape})" if col_labels and r == 0 else shape,
                None,
            )
        if row_labels:
            axes[r][0].set_ylabel(row_labels[r], fontsize=7)
    _save(fig, path, title)
