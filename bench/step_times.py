"""Training step time by canvas, and samples/s over the real epoch plan, for one or more configurations.

    python bench/step_times.py                                   # the default recipe
    python bench/step_times.py train.batch_size=128 vs train.batch_size=256
    python bench/step_times.py --steps 320 model.blocks=1

Each configuration (overrides; `vs` separates configurations) runs the trainer's own pieces (`run.set_up`,
`steps.epoch_plan`, `make_batch`, `train_step`) over the first `--steps` batches of epoch 0's plan, so the
mix of canvases is the real one. Reported: samples/s over those batches (batch building included, the
first batch of each canvas excluded: it builds that shape's kernels) and the median step time per canvas.
Why the batch size matters on a CPU: a step has a fixed cost (the optimizer over every weight, kernel
launches) that a small canvas does not amortise, and most of ARC's grids sit on small canvases.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arcvae.config_io import load_config  # noqa: E402
from arcvae.run import set_up  # noqa: E402
from arcvae.steps import epoch_plan, make_batch, make_optimizer, train_step  # noqa: E402


def measure(overrides: list[str], steps: int) -> tuple[float, dict[int, float]]:
    """(samples/s over the plan, {canvas: median step ms}) for one configuration."""
    cfg = load_config(None, ["train.progress=false", *overrides])
    setup = set_up(cfg)
    train = setup.train.to(setup.device)
    optimizer = make_optimizer(setup.net, cfg, cfg.train.lr)
    plan = epoch_plan(train, cfg, 0, max(1, cfg.data.samples_per_epoch // cfg.train.batch_size))
    times, seen, samples, seconds = defaultdict(list), set(), 0, 0.0
    for b in range(min(steps, len(plan))):
        start = time.perf_counter()
        batch = make_batch(train, plan, cfg, 0, b)
        train_step(setup.net, optimizer, batch, 0.5, setup.options, cfg, setup.device, cfg.train.lr)
        elapsed = time.perf_counter() - start
        canvas = batch.grids.shape[-1]
        if canvas in seen:  # the first batch of a canvas pays for building its kernels
            times[canvas].append(elapsed)
            samples, seconds = samples + len(batch.grids), seconds + elapsed
        seen.add(canvas)
    return samples / seconds, {c: 1000 * statistics.median(t) for c, t in sorted(times.items())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides; `vs` starts the next configuration")
    p.add_argument("--steps", type=int, default=240, help="batches of the epoch plan per configuration")
    args = p.parse_args(argv)
    configs, current = [], []
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
        print(f"{' '.join(overrides) or '(defaults)'}: {rate:,.0f} samples/s; ms per step by canvas: {steps}", flush=True)


if __name__ == "__main__":
    main()
