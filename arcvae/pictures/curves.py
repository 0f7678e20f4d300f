"""Pictures of a run's figures: curves, the KL-per-dim heat map, per-colour accuracy, the β
schedule, and several runs overlaid for `compare`. Grids themselves are drawn by `grid_plots`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.patheffects as pe  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from ..config import MonitorConfig
from ..training.metrics import colour_label, flagged_epochs
from ..training.tracking import KL_IMAGE_RANGE
from .grids import ARC_PALETTE

PALE = {4, 5, 8}  # yellow, grey, teal: thin lines of these vanish on white without an outline
EVAL_SPLITS = ("val", "train_eval")
RUN_STYLES = ["-", "--", "-.", ":"]
SPLIT_COLOURS = {"train": "#1f77b4", "val": "#d62728", "train_eval": "#d62728"}


def _series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    rows = [r for r in records if r.get(key) is not None]
    return [r["epoch"] for r in rows], [r[key] for r in rows]


# (title, [(key, line style)], log scale?, floor attribute of MonitorConfig drawn as a line)
CURVE_PANELS = [
    ("loss = recon + β·KL'", [("loss", "-")], False, None),
    ("reconstruction (nats per grid)", [("recon", "-")], False, None),
    (
        "KL per grid: true (solid), after free bits (dashed)",
        [("kl", "-"), ("kl_clamped", "--")],
        False,
        None,
    ),
    ("β", [("beta", "-")], False, None),
    (
        "KL per dim, log: mean (solid), min (dashed)",
        [("kl_dim_mean", "-"), ("kl_dim_min", "--")],
        True,
        "kl_floor",
    ),
    (
        "accuracy: non-black (solid), pixel (dashed), grid (dotted)",
        [("non_black_accuracy", "-"), ("pixel_accuracy", "--"), ("grid_accuracy", ":")],
        False,
        "non_black_floor",
    ),
]


def save_curves(run_dir: Path, records: list[dict], monitor: MonitorConfig, start: float) -> None:
    """plots/curves.png, plots/kl_heatmap.png and plots/per_class_accuracy.png from a run's
    records.

    `monitor` and `start` (the first epoch the alarm judges) draw the alarm's floors and quiet
    warm-up.
    """
    if not records:
        return
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)
    evals = [r for r in records if r["split"] in EVAL_SPLITS]
    by_split = {s: [r for r in records if r["split"] == s] for s in ("train", *EVAL_SPLITS)}
    flagged = flagged_epochs(evals, monitor, start)
    columns = 3
    fig, axes = plt.subplots(
        -(-len(CURVE_PANELS) // columns),
        columns,  # an axis for every panel
        figsize=(13, 3.25 * -(-len(CURVE_PANELS) // columns)),
        squeeze=False,
    )
    for ax in axes.flat[len(CURVE_PANELS) :]:
        ax.axis("off")
    for ax, panel in zip(axes.flat, CURVE_PANELS):
        _draw_panel(ax, panel, by_split, (monitor, start, flagged) if evals else None)
    _curves_legend(fig, by_split, bool(evals))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out / "curves.png", dpi=80)
    plt.close(fig)
    rows = evals or by_split["train"]
    if rows:
        save_kl_heatmap(out / "kl_heatmap.png", rows, monitor)
        save_class_accuracy(out / "per_class_accuracy.png", rows, monitor)


def _draw_panel(ax, panel: tuple, by_split: dict, alarm: tuple | None) -> None:
    """One CURVE_PANELS entry; `alarm` (monitor, first judged epoch, flagged epochs) when there are
    evaluations."""
    title, keys, log, floor = panel
    for split, records in by_split.items():
        for key, style in keys:
            x, y = _series(records, key)
            if log:
                # a dead dimension reads 0: keep it on the log axis, at the bottom
                y = np.maximum(y, 1e-4)
            ax.plot(
                x,
                y,
                style,
                color=SPLIT_COLOURS[split],
                marker="o" if split != "train" else None,
                markersize=3,
                linewidth=1.2,
            )
    # the alarm judges evaluations only: show its floors, its quiet warm-up, and where it fired
    if alarm is not None:
        monitor, start, flagged = alarm
        if floor:
            ax.axhline(getattr(monitor, floor), color="0.4", linestyle="-.", linewidth=1)
        ax.axvspan(0, start, color="0.9", zorder=0)
        for epoch in flagged:
            ax.axvline(epoch, color="red", alpha=0.35, linewidth=3)
    ax.set_yscale("log" if log else "linear")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.grid(alpha=0.3)


def _curves_legend(fig, by_split: dict, with_alarm: bool) -> None:
    handles = [
        plt.Line2D([], [], color=SPLIT_COLOURS[s], marker="o" if s != "train" else None, label=s)
        for s, rows in by_split.items()
        if rows
    ]
    if with_alarm:
        handles += [
            plt.Line2D([], [], color="0.4", linestyle="-.", label="alarm floor"),
            plt.Rectangle((0, 0), 1, 1, color="0.9", label="warm-up (alarm off)"),
            plt.Line2D([], [], color="red", alpha=0.35, linewidth=3, label="collapse flagged"),
        ]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9, frameon=False)


def save_kl_heatmap(path: Path, rows: list[dict], monitor: MonitorConfig) -> None:
    """KL per dimension (columns) per evaluation (rows), log colour scale: a dark column is a dead
    dimension."""
    # (E, D): one row per evaluation
    kl = np.array([[np.nan if v is None else v for v in r["kl_per_dim"]] for r in rows], float)
    lo, hi = KL_IMAGE_RANGE
    fig, ax = plt.subplots(
        figsize=(np.clip(4 + 0.14 * kl.shape[1], 7, 14), min(2.2 + 0.22 * len(rows), 9))
    )
    im = ax.imshow(
        np.maximum(kl, lo),
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        norm=LogNorm(vmin=lo, vmax=max(hi, np.nanmax(kl, initial=hi))),
    )
    step = max(1, len(rows) // 15)
    ax.set_yticks(range(0, len(rows), step), [f"{r['epoch']:g}" for r in rows[::step]], fontsize=7)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel(f"epoch ({rows[0]['split']})")
    ax.set_title(
        "KL per latent dimension over training (log scale)\n"
        "a column going dark is a dimension collapsing",
        fontsize=9,
    )
    bar = fig.colorbar(im, ax=ax, pad=0.02)
    bar.ax.axhline(monitor.kl_floor, color="cyan", linewidth=2)
    bar.set_label(f"nats; cyan line: alarm floor {monitor.kl_floor:g}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_class_accuracy(path: Path, rows: list[dict], monitor: MonitorConfig) -> None:
    """Recall of each colour over epochs, in its ARC colour; pale colours outlined so they read on
    white."""
    acc = np.array(
        [[np.nan if a is None else a for a in r["per_class_accuracy"]] for r in rows], dtype=float
    )
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    for c in range(acc.shape[1]):
        outline = (
            [pe.Stroke(linewidth=3.2, foreground="#333333"), pe.Normal()] if c in PALE else None
        )
        ax.plot(
            epochs,
            acc[:, c],
            "o-",
            color=ARC_PALETTE[c],
            label=colour_label(c),
            markersize=4,
            markeredgecolor="#333333",
            linewidth=1.8,
            path_effects=outline,
        )
    ax.axhline(
        monitor.non_black_floor, color="0.4", linestyle="-.", linewidth=1, label="non-black floor"
    )
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("epoch")
    ax.set_ylabel("recall")
    ax.set_title(
        f"per-colour accuracy ({rows[0]['split']}; a colour absent from the set is not drawn)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_comparison(path: Path, runs: list[tuple[str, list[dict]]], monitor: MonitorConfig) -> None:
    """β, mean KL/dim and non-black accuracy of several runs overlaid, one colour per run.

    β comes from the (denser) train records; KL and accuracy from evaluations where a run has them.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [
        ("beta", "β (log above 0.01)", False, None),
        ("kl_dim_mean", "mean KL per dim (nats, log)", True, monitor.kl_floor),
        ("non_black_accuracy", "non-black accuracy", False, monitor.non_black_floor),
    ]
    for i, (label, records) in enumerate(runs):
        train = [r for r in records if r.get("split") == "train"]
        evals = [r for r in records if r.get("split") in EVAL_SPLITS]
        for ax, (key, _, log, _) in zip(axes, panels):
            x, y = _series(train if key == "beta" and train else evals or train, key)
            # Runs often share a β or an accuracy exactly: a dash pattern per run keeps each line
            # visible.
            ax.plot(
                x,
                np.maximum(y, 1e-4) if log else y,
                RUN_STYLES[i % len(RUN_STYLES)],
                color=f"C{i % 10}",
                label=label if key == "beta" else None,
                marker="o" if evals and key != "beta" else None,
                markersize=3,
                linewidth=1.6,
            )
    for ax, (_, title, log, floor) in zip(axes, panels):
        if floor is not None:
            ax.axhline(floor, color="0.5", alpha=0.4, linewidth=4)
        ax.set_yscale("log" if log else "linear")
        ax.set_title(title + ("; grey band: alarm floor" if floor is not None else ""), fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    # runs' β often differ by orders of magnitude, and start at 0
    axes[0].set_yscale("symlog", linthresh=0.01)
    fig.legend(loc="upper center", ncol=min(len(runs), 4), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.05 * ((len(runs) + 3) // 4)))
    fig.savefig(path, dpi=80)
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
