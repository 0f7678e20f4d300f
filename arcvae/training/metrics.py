"""Health figures of a β-VAE on grids, accumulated on the device and read back only when logged.

Definitions (docs/design.md):
accuracy on the argmax of the logits at z = μ, over each grid's own pixels
(the padding is not a pixel of the grid, in either padding mode); non-black accuracy over pixels
whose target is not 0; per-class accuracy = recall of each colour (None when absent); grid accuracy
= every own pixel right and, where the model predicts the shape (size logits), rows and cols right
too; shape accuracy = share of grids whose predicted rows and cols are right (None without size
logits); active units (Burda et al. 2016, https://arxiv.org/abs/1509.00519): Var_x(E_q[z_d|x]) >
threshold. A dim's KL and its variance are taken over the grids whose canvas reaches it
(`VAEOutput.reached`: the latent cells beyond a small canvas are the prior there, and would dilute
both); a dim no grid reached has no KL (None in kl_per_dim) and is not active.
"""

from __future__ import annotations

import numpy as np
import torch

from ..canvas import N_COLOURS, inside, mark_outside
from ..config import BetaConfig, MonitorConfig
from ..data.grids import pad_grids
from .bits import BIT_FIGURES
from .losses import LOSS_TERMS, LossBreakdown, reached_share
from .schedules import warmup_epochs


def new_stats(latent_dim: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Zeroed sums; `add_batch` adds to them, `summarize` turns them into figures."""

    def zeros(*shape, dtype=torch.float64):
        return torch.zeros(*shape, dtype=dtype, device=device)

    return {
        "n": zeros(()),
        "terms": zeros(len(LOSS_TERMS)),
        "kl_per_dim": zeros(latent_dim),
        "reached": zeros(latent_dim),  # grids (or, for the running train sums, steps) per dim
        "mu": zeros(latent_dim),
        "mu_sq": zeros(latent_dim),
        "class_correct": zeros(N_COLOURS),
        "class_total": zeros(N_COLOURS),
        "grids_correct": zeros(()),
        "shape_correct": zeros(()),
        "shape_total": zeros(()),
    }


def add_predictions(
    stats: dict[str, torch.Tensor],
    predicted: torch.Tensor,
    target: torch.Tensor,
    sizes: torch.Tensor,
    predicted_sizes: torch.Tensor | None = None,
) -> None:
    """Add one batch's pixel, grid and shape counts, in place and without host syncs.

    predicted (B, C, C) colours (any other token, e.g. PAD, is never right); target (B, C, C)
    (anything, e.g. PAD, outside the grids); sizes (B, 2) the grids' rows and cols, which say which
    pixels are the grid's own; predicted_sizes (B, 2), or None where the shape is not judged (a
    model that does not predict it).
    """
    B = target.shape[0]
    own = inside(sizes, target.shape[-1]).flatten(1)  # (B, C*C)
    target = target.long().flatten(1).masked_fill(~own, 0)  # (B, C*C), PAD -> a valid index
    correct = (predicted.long().flatten(1) == target) & own  # (B, C*C)
    stats["class_total"].scatter_add_(0, target.flatten(), own.flatten().double())
    stats["class_correct"].scatter_add_(0, target.flatten(), correct.flatten().double())
    grid_right = (correct | ~own).all(1)
    if predicted_sizes is not None:
        grid_right &= add_shapes(stats, predicted_sizes, sizes)
    stats["grids_correct"] += grid_right.sum()
    stats["n"] += B


def add_shapes(
    stats: dict[str, torch.Tensor], predicted_sizes: torch.Tensor, sizes: torch.Tensor
) -> torch.Tensor:
    """Count the shapes predicted right (B, 2 each), in place; returns which were (B,) bool."""
    shape_right = (predicted_sizes == sizes).all(1)
    stats["shape_correct"] += shape_right.sum()
    stats["shape_total"] += shape_right.shape[0]
    return shape_right


def add_accuracy(
    stats: dict[str, torch.Tensor],
    logits: torch.Tensor,
    target: torch.Tensor,
    sizes: torch.Tensor,
    mu: torch.Tensor,
    size_logits: torch.Tensor | None = None,
    reached: torch.Tensor | None = None,
) -> None:
    """`add_predictions` of the argmax of the logits (B, 10, C, C) decoded at z = μ at the grids'
    own shapes (the shape is coded exactly, so a grid is exact when its pixels are), the shape
    head's accuracy from the size logits (B, 2, 30) or None (what a free-running decode of μ would
    give), plus the posterior-mean sums of mu (B, D) and the grids that reach each dim (`reached`
    (D,) bool, None: every dim)."""
    add_predictions(stats, logits.argmax(1), target, sizes)
    if size_logits is not None:
        add_shapes(stats, size_logits.argmax(-1) + 1, sizes)
    stats["mu"] += mu.detach().double().sum(0)
    stats["mu_sq"] += mu.detach().double().pow(2).sum(0)
    share = 1.0 if reached is None else reached_share(reached, stats["reached"])
    stats["reached"] += mu.shape[0] * share


def add_batch(
    stats: dict[str, torch.Tensor],
    logits: torch.Tensor,
    target: torch.Tensor,
    sizes: torch.Tensor,
    mu: torch.Tensor,
    kl_per_sample_dim: torch.Tensor,
    parts: LossBreakdown,
    size_logits: torch.Tensor | None = None,
) -> None:
    """`add_accuracy`, plus the batch's loss terms and KL per sample and dimension (B, D); the dims
    the batch reaches are the breakdown's (`parts.reached`)."""
    add_accuracy(stats, logits, target, sizes, mu, size_logits, parts.reached)
    B = target.shape[0]
    stats["terms"] += torch.stack([getattr(parts, t) for t in LOSS_TERMS]).detach().double() * B
    stats["kl_per_dim"] += kl_per_sample_dim.detach().double().sum(0)


def loss_figures(sums: dict[str, torch.Tensor]) -> dict:
    """The mean loss terms and KL per dimension of sums kept on the host (`n`, `terms`,
    `kl_per_dim`, `reached`); min, mean and max over the dims that were reached."""
    n = max(sums["n"].item(), 1.0)
    reached = sums["reached"] > 0
    kl_per_dim = sums["kl_per_dim"] / sums["reached"].clamp(min=1)
    measured = kl_per_dim[reached] if reached.any() else kl_per_dim.new_zeros(1)
    return {
        **dict(zip(LOSS_TERMS, (sums["terms"] / n).tolist())),
        "kl_per_dim": [round(v, 5) if r else None for v, r in zip(kl_per_dim.tolist(), reached)],
        "kl_dim_min": measured.min().item(),
        "kl_dim_mean": measured.mean().item(),
        "kl_dim_max": measured.max().item(),
    }


def accuracy_figures(sums: dict[str, torch.Tensor], active_threshold: float = 0.01) -> dict:
    """Active units and the accuracy figures of sums kept on the host."""
    n = max(sums["n"].item(), 1.0)
    count = sums["reached"].clamp(min=1)
    mu_var = sums["mu_sq"] / count - (sums["mu"] / count).pow(2)  # a dim never reached: 0
    correct = sums["class_correct"]
    total = sums["class_total"]
    non_black_total = total[1:].sum().item()
    return {
        "active_units": int((mu_var > active_threshold).sum().item()),
        "pixel_accuracy": (correct.sum() / total.sum().clamp(min=1)).item(),
        "non_black_accuracy": correct[1:].sum().item() / non_black_total
        if non_black_total
        else None,
        "per_class_accuracy": [(c / t).item() if t > 0 else None for c, t in zip(correct, total)],
        "grid_accuracy": sums["grids_correct"].item() / n,
        "shape_accuracy": (sums["shape_correct"] / sums["shape_total"]).item()
        if sums["shape_total"] > 0
        else None,
        "samples": int(n),
    }


GRID_FIGURES = (
    "pixel_accuracy",
    "non_black_accuracy",
    "grid_accuracy",
    "shape_accuracy",
    "per_class_accuracy",
    "samples",
)


def grid_figures(predicted: list[np.ndarray], targets: list[np.ndarray], judge_shape: bool) -> dict:
    """The accuracy figures of grids already decoded against their targets (a list each, any
    shapes).

    A prediction is a grid of its own shape or a whole canvas (black mode); as everywhere, only the
    target's own pixels count, and a pixel the prediction does not cover is wrong. `judge_shape`: a
    grid is exact only with the target's shape too (set it where the shape was predicted).
    """
    canvas = max(max(g.shape) for g in [*predicted, *targets])
    truth = pad_grids(targets, canvas)
    guess = pad_grids(predicted, canvas)
    stats = new_stats(1, "cpu")
    add_predictions(
        stats,
        mark_outside(guess.pixels, guess.sizes),
        truth.pixels,
        truth.sizes,
        guess.sizes if judge_shape else None,
    )
    figures = accuracy_figures(stats)
    return {key: figures[key] for key in GRID_FIGURES}


# Bands of a grid's longest side: ARC's small grids and its large ones behave very differently.
SIDE_BANDS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 30))


def figures_by_side(
    predicted: list[np.ndarray], targets: list[np.ndarray], judge_shape: bool
) -> dict:
    """`grid_figures` for each band of the target's longest side that holds grids, by name ("1-5",
    ...)."""
    bands = {}
    for lo, hi in SIDE_BANDS:
        keep = [i for i, target in enumerate(targets) if lo <= max(target.shape) <= hi]
        if keep:
            bands[f"{lo}-{hi}"] = grid_figures(
                [predicted[i] for i in keep], [targets[i] for i in keep], judge_shape
            )
    return bands


def summarize(stats: dict[str, torch.Tensor], active_threshold: float = 0.01) -> dict:
    """Sums -> the figures of the metrics.jsonl contract (plain Python numbers)."""
    s = {k: v.cpu() for k, v in stats.items()}  # the one host sync
    return {**loss_figures(s), **accuracy_figures(s, active_threshold)}


FREE_BITS_FIGURES = ("kl_exempt", "dims_under_free_bits")


def free_bits_figures(figures: dict, free_bits: float) -> dict:
    """What free bits did in these figures: `kl_exempt` = KL' − KL, the nats a grid the loss
    charged above the true KL, and `dims_under_free_bits`, the dimensions whose mean KL is under
    λ = `free_bits` nats (the KL term does not pull on them)."""
    return {
        "kl_exempt": figures["kl_clamped"] - figures["kl"],
        "dims_under_free_bits": sum(
            kl < free_bits for kl in figures["kl_per_dim"] if kl is not None
        ),
    }


# The figures every record and summary carries (docs/design.md's metrics.jsonl contract), in record
# order; the bits and the free bits' figures are measured by evaluations only (a training run's
# train records have none).
FIGURES = (
    *LOSS_TERMS,
    "kl_per_dim",
    "kl_dim_min",
    "kl_dim_mean",
    "kl_dim_max",
    "active_units",
    "pixel_accuracy",
    "non_black_accuracy",
    "per_class_accuracy",
    "grid_accuracy",
    "shape_accuracy",
    *BIT_FIGURES,
    *FREE_BITS_FIGURES,
)


# Colour names for messages, in the order of the ARC palette (docs/design.md).
COLOUR_NAMES = [
    "black",
    "blue",
    "red",
    "green",
    "yellow",
    "grey",
    "fuchsia",
    "orange",
    "teal",
    "brown",
]


def colour_label(c: int) -> str:
    return f"{c} {COLOUR_NAMES[c]}"


def collapse_reasons(
    figures: dict, cfg: MonitorConfig, dim_names: list[str] | None = None
) -> list[str]:
    """Why these figures count as posterior collapse (empty list: healthy), naming dims (by
    `dim_names`, e.g. 'slot 2: row', where the model names them; else by index) and colours.

    Each reason names the config key of its floor, so a reader knows what tripped and what to tune.
    """
    reasons = []
    if figures["kl_dim_mean"] < cfg.kl_floor:
        measured = [(d, kl) for d, kl in enumerate(figures["kl_per_dim"]) if kl is not None]
        dead = [d for d, kl in measured if kl < cfg.kl_floor]
        alive = [d for d, kl in measured if kl >= cfg.kl_floor]
        # When most dims are dead, the few still alive are the shorter, more telling list.
        named = (lambda dims: [dim_names[d] for d in dims]) if dim_names else (lambda dims: dims)
        if len(dead) <= 12 or len(alive) > 12:
            which = _short_list(named(dead))
        else:
            which = f"all but {_short_list(named(alive))}" if alive else "all"
        reasons.append(
            f"mean KL/dim {figures['kl_dim_mean']:.3f} < monitor.kl_floor={cfg.kl_floor:g} nats "
            f"({len(dead)}/{len(measured)} dims below: {which})"
        )
    non_black = figures["non_black_accuracy"]
    if non_black is not None and non_black < cfg.non_black_floor:
        weak = [
            f"{colour_label(c)} {acc:.0%}"
            for c, acc in enumerate(figures["per_class_accuracy"])
            if c > 0 and acc is not None and acc < cfg.non_black_floor
        ]
        reasons.append(
            f"non-black accuracy {non_black:.1%} < monitor.non_black_floor={cfg.non_black_floor:g} "
            f"(colours below: {', '.join(weak) or 'no single one'})"
        )
    rate = figures.get("rate_bits")  # evaluations only
    if rate is not None and rate < cfg.rate_floor_bits:
        reasons.append(
            f"rate {rate:.1f} bits a grid < monitor.rate_floor_bits={cfg.rate_floor_bits:g} "
            "(the true KL in bits)"
        )
    return reasons


def alarm_start(beta: BetaConfig) -> float:
    """The first epoch the alarm judges: the first evaluation after an epoch of β > 0.

    The evaluation that ends the warm-up still sees a model trained at β = 0: low figures there are
    under-training, not collapse. Without a warm-up that is the end of epoch 1.
    """
    return warmup_epochs(beta) + 1.0


def flagged_epochs(evaluations: list[dict], cfg: MonitorConfig, start: float) -> list:
    """Epochs of the evaluation records (read back from metrics.jsonl) on which the alarm fires."""
    return [
        r["epoch"]
        for r in evaluations
        if r["epoch"] >= start and r.get("kl_dim_mean") is not None and collapse_reasons(r, cfg)
    ]


def reason_kinds(reasons: list[str]) -> list[str]:
    """'KL', 'rate' and/or 'accuracy': which parts of the alarm these collapse_reasons come
    from."""
    kinds = {
        "KL": any(r.startswith("mean KL/dim") for r in reasons),
        "rate": any(r.startswith("rate ") for r in reasons),
        "accuracy": any(r.startswith("non-black accuracy") for r in reasons),
    }
    return [k for k, fired in kinds.items() if fired]


def worst_colour(per_class: list) -> tuple[int, float] | None:
    """The present colour with the lowest recall, or None when no colour was seen."""
    present = [(acc, c) for c, acc in enumerate(per_class) if acc is not None]
    if not present:
        return None
    acc, c = min(present)
    return c, acc


def _short_list(items: list, limit: int = 12) -> str:
    text = ",".join(map(str, items[:limit]))
    return text + (f",... (+{len(items) - limit})" if len(items) > limit else "")
