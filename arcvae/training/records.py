"""A line of metrics.jsonl: the one place a record is made and read back (docs/design.md, "the run
folder"). Every record has `split`, `step`, `epoch`, `beta` and `lr`, then its figures: `split` is
`train` (running means since the last record), `val` or `train_eval` (an evaluation), or `slowdown`
(training fell below a quarter of its early speed)."""

from __future__ import annotations

import json
from pathlib import Path

SPLITS = ("train", "val", "train_eval", "slowdown")


def make_record(split: str, step: int, epoch: float, beta, lr: float, figures: dict) -> dict:
    """The record of `figures` at this point of a run; `beta` a float or a 0-d tensor."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return {"split": split, "step": step, "epoch": epoch, "beta": float(beta), "lr": lr, **figures}


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
