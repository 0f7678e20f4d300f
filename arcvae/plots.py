"""Pictures of a run, in the standard ARC palette: reconstructions, curves, KL heat map, β schedule."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from .tracking import read_metrics  # noqa: E402

# fchollet/ARC-AGI apps/css/common.css, colours 0-9.
ARC_PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25"]
ARC_CMAP = ListedColormap(ARC_PALETTE)


def _grid(ax, grid: np.ndarray, title: str | None = None) -> None:
    ax.imshow(grid, cmap=ARC_CMAP, vmin=0, vmax=9, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def save_reconstructions(path: Path, originals: np.ndarray, recons: np.ndarray, title: str = "") -> None:
    """Originals (N, S, S) above their reconstructions, pixel accuracy under each pair."""
    n = len(originals)
    cols = min(n, 8)
    pair_rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(2 * pair_rows, cols, figsize=(1.6 * cols, 3.4 * pair_rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        acc = (originals[i] == recons[i]).mean()
        _grid(axes[r][c], originals[i], "original")
        _grid(axes[r + 1][c], recons[i], f"recon {acc:.1%}")
        axes[r][c].axis("on")
        axes[r + 1][c].axis("on")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series(records: list[dict], split: str, key: str) -> tuple[list[float], list[float]]:
    rows = [r for r in records if r.get("split") == split and r.get(key) is not None]
    return [r["epoch"] for r in rows], [r[key] for r in rows]


def save_curves(run_dir: Path) -> None:
    """plots/curves.png (loss, β, KL/dim, accuracy), plots/kl_heatmap.png, plots/per_class_accuracy.png."""
    records = read_metrics(run_dir)
    if not records:
        return
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)
    panels = [("recon", "reconstruction (per grid)"), ("kl", "KL (nats, true)"), ("beta", "β"),
              ("kl_dim_mean", "KL per dim: mean"), ("kl_dim_min", "KL per dim: min"),
              ("non_black_accuracy", "non-black accuracy")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (key, title) in zip(axes.flat, panels):
        for split, style in (("train", "-"), ("val", "o-")):
            x, y = _series(records, split, key)
            if x:
                ax.plot(x, y, style, label=split, markersize=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    _save_heatmap_and_classes(records, out)


def _save_heatmap_and_classes(records: list[dict], out: Path) -> None:
    split = "val" if any(r["split"] == "val" for r in records) else "train"
    rows = [r for r in records if r["split"] == split and r.get("kl_per_dim")]
    if not rows:
        return
    kl = np.array([r["kl_per_dim"] for r in rows])                   # (evaluations, D)
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    im = ax.imshow(kl, aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(-0.5, kl.shape[1] - 0.5, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)), [f"{e:g}" for e in epochs], fontsize=6)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel(f"epoch ({split})")
    ax.set_title("KL per dimension (nats): a dark column is a collapsed dimension", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "kl_heatmap.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    acc = np.array([[np.nan if a is None else a for a in r["per_class_accuracy"]] for r in rows])
    for c in range(acc.shape[1]):
        ax.plot(epochs, acc[:, c], "o-", color=ARC_PALETTE[c], label=str(c), markersize=3,
                markeredgecolor="#444444", linewidth=1.5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("recall")
    ax.set_title(f"per-colour accuracy ({split})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(ncol=5, fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "per_class_accuracy.png", dpi=100)
    plt.close(fig)


def save_beta_schedule(path: Path, epochs: list[float], betas: list[float], title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(epochs, betas)
    ax.set_xlabel("epoch")
    ax.set_ylabel("β")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
