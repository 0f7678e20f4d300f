"""Figures on the console: the evaluation line, the class table, the expected time. What a record
holds is records.py; where records go as training runs, loggers.py."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..canvas import N_COLOURS

# Nats mapped to black and white in KL pictures (TensorBoard strip, heat map): 0.001 to 10.
KL_IMAGE_RANGE = (1e-3, 10.0)


def console_line(record: dict) -> str:
    """One compact line per evaluation, e.g. `ep 12 β=0.031 rec=41.2 KL=18.3 KL/dim min .07 ...
    bits: rate 26.4 + dist 60.2 = 86.6`."""
    nb = record.get("non_black_accuracy")
    parts = [
        f"ep {record['epoch']:g}"
        if isinstance(record["epoch"], int)
        else f"ep {record['epoch']:.2f}",
        f"{record['split']:<5}",
        f"β={record['beta']:.3g}",
        f"rec={record['recon']:.1f}",
        f"KL={record['kl']:.1f}" + _clamped_part(record),
        f"KL/dim min {record['kl_dim_min']:.2f} mean {record['kl_dim_mean']:.2f}",
        f"AU {record['active_units']}/{len(record['kl_per_dim'])}",
        f"px {record['pixel_accuracy']:.1%}",
        f"non-black {nb:.1%}" if nb is not None else "non-black -",
        f"grid {record['grid_accuracy']:.0%}",
    ]
    if record.get("neg_elbo_bits") is not None:  # an evaluation's: bits per grid
        parts.append(
            f"bits: rate {record['rate_bits']:.1f} + dist {record['distortion_bits']:.1f} = "
            f"{record['neg_elbo_bits']:.1f}"
        )
    if by_part := record.get("rate_bits_by_part"):  # a model that names its dims
        parts.append("(" + " ".join(f"{k} {v:.1f}" for k, v in by_part.items()) + ")")
    return " ".join(parts)


def _clamped_part(record: dict) -> str:
    """`(KL'=…)` when free bits lift the optimised KL above the true one: the floor is holding dims
    up. An evaluation's adds the lift and the dims under the floor:
    `(KL'=19.6: +0.4, 12 dims < fb)`."""
    if record.get("kl_clamped") is None or record["kl_clamped"] - record["kl"] < 0.05:
        return ""
    if record.get("dims_under_free_bits") is None:
        return f" (KL'={record['kl_clamped']:.1f})"
    return (
        f" (KL'={record['kl_clamped']:.1f}: +{record['kl_exempt']:.1f}, "
        f"{record['dims_under_free_bits']} dims < fb)"
    )


def class_table(global_counts: list[float], batch_counts: list[float], weights: list[float]) -> str:
    """Colour | share in the whole training set | share in the batch | weight."""
    g_total = sum(global_counts) or 1
    b_total = sum(batch_counts) or 1
    lines = ["colour  global%   batch%   weight"]
    for c in range(N_COLOURS):
        lines.append(
            f"{c:>6}  {100 * global_counts[c] / g_total:7.2f}  "
            f"{100 * batch_counts[c] / b_total:7.2f}  {weights[c]:7.3f}"
        )
    lo = min(weights)
    hi = max(weights)
    lines.append(f"weights: min {lo:.3f}  max {hi:.3f}  ratio {hi / lo:.1f}")
    return "\n".join(lines)


def expected_time(samples_left: int, rate: float, steps: tuple[int, int], evaluations: int) -> str:
    """The line that tells, after the first steps, how long the rest of the run should take, from
    the rate over `steps` (first, last)."""
    seconds = samples_left / rate
    left = f"{seconds:.0f} more seconds" if seconds < 120 else f"{seconds / 60:.0f} more minutes"
    return (
        f"expected: about {left} of training ({rate:.0f} samples/s over steps {steps[0]}-"
        f"{steps[1]}), plus {evaluations} evaluations"
    )


def say(text: str) -> None:
    """Console output that shares the terminal with a progress bar without breaking it."""
    tqdm.write(text, file=sys.stdout)
