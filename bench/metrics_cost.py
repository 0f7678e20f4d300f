"""What the per-log health figures cost: one training epoch with a record every step against one
record per epoch, the same steps otherwise, alternated to cancel drift on a shared machine.

    OMP_NUM_THREADS=1 python bench/metrics_cost.py                 # CPU, cpu_small settings
    python bench/metrics_cost.py --device cuda --repeats 5

A record (arcvae.trainer.log_train) adds one forward pass at z = μ on the current batch, the
figures' device-to-host copy, a metrics.jsonl line and TensorBoard scalars, histogram and image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arcvae.config_io import load_config
from arcvae.training.loggers import open_log
from arcvae.training.trainer import build_run, train_epoch

ROOT = Path(__file__).resolve().parents[1]


def epoch_seconds(log_every: int, args, run_dir: Path) -> tuple[float, int]:
    """Wall time of one epoch of training steps (no evaluation, no pictures) and its step count."""
    cfg = load_config(
        ROOT / "configs" / "cpu_small.yaml",
        [
            f"train.log_every={log_every}",
            f"train.device={args.device}",
            "train.progress=false",
            f"data.samples_per_epoch={args.samples}",
            "data.val_limit=1",
        ],
    )
    run_dir.mkdir(parents=True)
    run = build_run(cfg, run_dir)
    run.log = open_log(run_dir)
    bar = tqdm(disable=True)
    train_epoch(run, 0, bar)  # warm-up: allocator, first-call overheads
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(run, 1, bar)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    run.log.close()
    return time.perf_counter() - start, run.steps_per_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--samples", type=int, default=2048, help="samples per epoch (cpu_small batch: 64)"
    )
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times: dict[int, list[float]] = {1: [], 10**9: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for log_every in times:
                seconds, steps = epoch_seconds(log_every, args, Path(tmp) / f"{log_every}-{r}")
                times[log_every].append(seconds / steps)
    every = statistics.median(times[1])
    never = statistics.median(times[10**9])
    # the 'never' epoch still writes its one closing record
    per_record = (every - never) / (1 - 1 / steps)
    print(f"{steps} steps of batch 64 per epoch, median of {args.repeats}, device {args.device}")
    print(f"step, one record per epoch:  {1e3 * never:7.1f} ms")
    print(f"step + a record every step:  {1e3 * every:7.1f} ms   (+{per_record / never:.0%})")
    print(
        f"one record costs ~{1e3 * per_record:.1f} ms: at the default log_every=50, "
        f"{per_record / 50 / never:.1%} of training time"
    )


if __name__ == "__main__":
    main()
