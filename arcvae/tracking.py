"""Where figures go: metrics.jsonl, TensorBoard, the console line, and the run's summary.json."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from .data import N_COLOURS
from .files import write_text_atomic

# Nats mapped to black and white in KL pictures (TensorBoard strip, heat map): 0.001 to 10.
KL_IMAGE_RANGE = (1e-3, 10.0)


def _clean(value):
    """JSON has no NaN/inf: write them as null rather than produce an unreadable file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(_clean(payload), indent=2) + "\n")


def scan_metrics(run_dir: Path) -> tuple[list[dict], int]:
    """The records of a run's metrics.jsonl ([] if absent) and how many lines could not be parsed.

    A kill can cut the last line short; such lines are skipped (and counted, for `compare` to
    report) rather than making a whole run unreadable.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return [], 0
    records = []
    bad = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and "split" in record:
            records.append(record)
        else:
            bad += 1
    return records, bad


def read_metrics(run_dir: Path) -> list[dict]:
    """The readable records of a run's metrics.jsonl ([] if absent)."""
    return scan_metrics(run_dir)[0]


def kl_stripe(kl: torch.Tensor, cell: int = 8) -> np.ndarray:
    """KL per dim as an image strip (cell x cell pixels per dim), magma on a fixed log scale.

    Fixed, not per-record, limits: normalising by the record's max would paint a fully collapsed
    latent (all dims ~0) as bright as a healthy one. Black: <= KL_IMAGE_RANGE[0] nats; white: >=
    [1].
    """
    lo, hi = np.log10(KL_IMAGE_RANGE)
    level = (np.log10(np.maximum(kl.numpy(), KL_IMAGE_RANGE[0])) - lo) / (hi - lo)  # (D,) in [0, 1]
    rgb = colormaps["magma"](np.clip(level, 0, 1))[:, :3]  # (D, 3)
    # (cell, D*cell, 3)
    return np.repeat(np.repeat(rgb[None], cell, axis=0), cell, axis=1).astype(np.float32)


class RunLog:
    """Appends records to metrics.jsonl and mirrors their figures to TensorBoard."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
        self.tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        self.jsonl.write(json.dumps(_clean(record)) + "\n")
        split = record["split"]
        step = record["step"]
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                self.tb.add_scalar(f"{split}/{key}", value, step)
        # One add_scalar per colour under one group: add_scalars would write a run folder per
        # colour.
        for c, acc in enumerate(record.get("per_class_accuracy") or []):
            if acc is not None:
                self.tb.add_scalar(f"per_class_accuracy/{split}_colour{c}", acc, step)
        if record.get("kl_per_dim"):
            kl = torch.tensor(record["kl_per_dim"], dtype=torch.float32)
            self.tb.add_histogram(f"kl_per_dim/{split}", kl, step)
            self.tb.add_image(f"kl_per_dim_image/{split}", kl_stripe(kl), step, dataformats="HWC")

    def close(self) -> None:
        self.jsonl.close()
        self.tb.close()


class NullLog:
    """What processes other than rank 0 log to: nothing (one writer per run folder)."""

    def log(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


def console_line(record: dict) -> str:
    """One compact line per evaluation, e.g. `ep 12 β=0.031 rec=41.2 KL=18.3 KL/dim min .07 ...`."""
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
    return " ".join(parts)


def _clamped_part(record: dict) -> str:
    """`(KL'=…)` when free bits lift the optimised KL above the true one: the floor is holding dims
    up."""
    if record.get("kl_clamped") is None or record["kl_clamped"] - record["kl"] < 0.05:
        return ""
    return f" (KL'={record['kl_clamped']:.1f})"


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


def expected_time(samples_left: int, rate: float, measured_steps: int, evaluations: int) -> str:
    """The line that tells, after the first steps, how long the rest of the run should take."""
    seconds = samples_left / rate
    left = f"{seconds:.0f} more seconds" if seconds < 120 else f"{seconds / 60:.0f} more minutes"
    return (
        f"expected: about {left} of training ({rate:.0f} samples/s over the first {measured_steps} "
        f"steps), plus {evaluations} evaluations"
    )


def say(text: str) -> None:
    """Console output that shares the terminal with a progress bar without breaking it."""
    tqdm.write(text, file=sys.stdout)
