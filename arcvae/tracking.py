"""Where figures go: metrics.jsonl, TensorBoard, the console line, and the run's summary.json."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from .data import N_COLOURS


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
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2) + "\n")
    os.replace(tmp, path)


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl ([] if absent); a line cut short by a kill is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class RunLog:
    """Appends records to metrics.jsonl and mirrors their figures to TensorBoard."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
        self.tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        self.jsonl.write(json.dumps(_clean(record)) + "\n")
        split, step = record["split"], record["step"]
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("step",):
                self.tb.add_scalar(f"{split}/{key}", value, step)
        if record.get("per_class_accuracy"):
            scalars = {str(c): a for c, a in enumerate(record["per_class_accuracy"]) if a is not None}
            self.tb.add_scalars(f"{split}/per_class_accuracy", scalars, step)
        if record.get("kl_per_dim"):
            kl = torch.tensor(record["kl_per_dim"])
            self.tb.add_histogram(f"{split}/kl_per_dim", kl, step)
            # KL per dim as a one-row image: a dark stripe is a collapsed dimension.
            self.tb.add_image(f"{split}/kl_per_dim_image", (kl / kl.max().clamp(min=1e-8)).view(1, 1, -1), step)

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
        f"ep {record['epoch']:g}" if isinstance(record["epoch"], int) else f"ep {record['epoch']:.2f}",
        f"{record['split']:<5}",
        f"β={record['beta']:.3g}",
        f"rec={record['recon']:.1f}",
        f"KL={record['kl']:.1f}",
        f"KL/dim min {record['kl_dim_min']:.2f} mean {record['kl_dim_mean']:.2f}",
        f"AU {record['active_units']}/{len(record['kl_per_dim'])}",
        f"px {record['pixel_accuracy']:.1%}",
        f"non-black {nb:.1%}" if nb is not None else "non-black -",
        f"grid {record['grid_accuracy']:.0%}",
    ]
    return " ".join(parts)


def class_table(global_counts: list[float], batch_counts: list[float], weights: list[float]) -> str:
    """Colour | share in the whole training set | share in the batch | weight."""
    g_total, b_total = sum(global_counts) or 1, sum(batch_counts) or 1
    lines = ["colour  global%   batch%   weight"]
    for c in range(N_COLOURS):
        lines.append(f"{c:>6}  {100 * global_counts[c] / g_total:7.2f}  {100 * batch_counts[c] / b_total:7.2f}"
                     f"  {weights[c]:7.3f}")
    lo, hi = min(weights), max(weights)
    lines.append(f"weights: min {lo:.3f}  max {hi:.3f}  ratio {hi / lo:.1f}")
    return "\n".join(lines)


def say(text: str) -> None:
    """Console output that shares the terminal with a progress bar without breaking it."""
    tqdm.write(text, file=sys.stdout)
