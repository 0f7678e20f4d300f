"""Training step time by canvas, and samples/s over the real epoch plan, for one or more
configurations.

    python bench/step_times.py                                   # the default recipe
    python bench/step_times.py train.batch_size=128 vs train.batch_size=256
    python bench/step_times.py --steps 320 model.blocks=1

Each configuration (overrides; `vs` separates configurations) runs the speedrun's `Trainer` (the
trainer's own `run.set_up`, `batches.epoch_plan`, `make_batch`, `train_step`) over the first
`--steps` batches of epoch 0's plan, so the mix of canvases is the real one. Reported: samples/s
over those batches (batch building included, the first batch of each canvas excluded: it builds that
shape's kernels) and the median step time per canvas. Why the batch size matters on a CPU: a step
has a fixed cost (the optimizer over every weight, kernel launches) that a small canvas does not
amortise, and most of ARC's grids sit on small canvases.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speedrun import Trainer  # noqa: E402  (bench/ is the script's folder, so on sys.path)

from arcvae.config_io import load_config


def measure(overrides: list[str], steps: int) -> tuple[float, dict[int, float]]:
    """(samples/s over the plan, {canvas: median step ms}) for one configuration."""
    run = Trainer(load_config(None, ["train.progress=false", *overrides]))
    times = defaultdict(list)
    seen = set()
    samples = 0
    seconds = 0.0
    for _ in range(min(steps, len(run.plan))):
        canvas = run.plan[run.batch][0]
        before = run.samples
        start = time.perf_counter()
        run.step(0.5)  # half-way through a budget: β at its maximum, as for most of a run's steps
        elapsed = time.perf_counter() - start
        if canvas in seen:  # the first batch of a canvas pays for building its kernels
            times[canvas].append(elapsed)
            samples, seconds = samples + run.samples - before, seconds + elapsed
        seen.add(canvas)
    return samples / seconds, {c: 1000 * statistics.median(t) for c, t in sorted(times.items())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "overrides", nargs="*", help="config overrides; `vs` starts the next configuration"
    )
    p.add_argument(
        "--steps", type=int, default=240, help="batches of the epoch plan per configuration"
    )
    args = p.parse_args(argv)
    configs = []
    current = []
    for word in args.overrides:
        if word == "vs":
            configs.append(current)
            current = []
        else:
            current.append(word)
    configs.append(current)
    for overrides in configs:
        rate, per_canvas = measure(overrides, args.steps)
        steps = ", ".join(f"{c}x{c} {ms:.0f}" for c, ms in per_canvas.items())
        print(
            f"{' '.join(overrides) or '(defaults)'}: {rate:,.0f} samples/s; ms per step by canvas: "
            f"{steps}",
            flush=True,
        )


if __name__ == "__main__":
    main()
