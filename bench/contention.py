"""Training speed beside another CPU-bound process, for each `train.threads` setting (issue 28).

    python bench/contention.py                          # the default recipe
    python bench/contention.py --steps 40 --window 10   # steadier figures, a longer run

Each setting (torch's default of all cores, 1 thread, `auto`) trains the default recipe with the
speedrun's `Trainer` (the trainer's own `run.set_up`, epoch plan, `make_batch` and `train_step`,
as bench/step_times.py drives it) three times: idle, beside one competing process niced to 10,
and beside one not niced. A competitor is `python -c` spinning in a session of its own, as a
program started from a second terminal is; with autogroups, `nice` ranks processes only within
their session, so the niced one takes as much as the other.

A row trains windows of `--window` steps, each judged by `threads.SpeedWatch` as the trainer judges
a log window (`train.log_every` steps there): a warm-up window and the reference windows idle, then
the competitor starts, then one window in which `auto` notices it (its seconds are printed), then
`--steps` steps (whole windows) whose samples/s the table shows. Every row starts on torch's
default threads and replays the same batches. The last line is `ratio: X.XX`: samples/s of
`train.threads=auto` beside the niced competitor over its samples/s idle.

The competitors are killed when a row ends, on Ctrl-C or an exception, and each exits by itself
when this script dies otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speedrun import Trainer  # noqa: E402  (bench/ is the script's folder, so on sys.path)

from arcvae.config_io import load_config
from arcvae.training.threads import REFERENCE_WINDOWS, SpeedWatch

DEFAULT_THREADS = torch.get_num_threads()  # torch's default: all cores, or OMP_NUM_THREADS
SETTINGS = {f"{DEFAULT_THREADS} (all cores)": DEFAULT_THREADS, "1": 1, "auto": "auto"}
# name: (competitors, niced)
CONDITIONS = {"idle": (0, False), "beside 1 niced": (1, True), "beside 1": (1, False)}
# A CPU-bound loop that ends once its parent is gone (a parent killed outright runs no cleanup).
COMPETITOR = "import os\n{nice}parent = os.getppid()\nwhile os.getppid() == parent:\n    pass"
BENCH = ["train.device=cpu", "train.progress=false", "data.val_source=none"]


@contextmanager
def competing(n: int, niced: bool = False):
    """`n` CPU-bound processes, each in a session of its own (niced to 10 with `niced`), for the
    block; killed after it, also on Ctrl-C or an exception."""
    code = COMPETITOR.format(nice="os.nice(10)\n" if niced else "")
    processes = []
    try:
        for _ in range(n):
            processes.append(subprocess.Popen([sys.executable, "-c", code], start_new_session=True))
        yield processes
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def watched_window(run: Trainer, watch: SpeedWatch, steps: int) -> tuple[int, float]:
    """The next `steps` training steps, judged by the watch as the trainer judges a log window;
    (samples, seconds)."""
    before = run.samples
    start = time.perf_counter()
    for _ in range(steps):
        run.step(0.5)  # half-way through a budget: β at its maximum, as in bench/step_times.py
    seconds = time.perf_counter() - start
    slowdown = watch.window(
        run.samples // run.cfg.train.batch_size, (run.samples - before) / seconds
    )
    if slowdown is not None:
        print("  " + slowdown.warning(), flush=True)
    return run.samples - before, seconds


def measure(
    overrides: list[str], setting, condition: str, window: int, windows: int
) -> tuple[float, float]:
    """(samples/s over `windows` measured windows of `window` steps, seconds of the window in
    which the competitor started) for one setting under one condition."""
    torch.set_num_threads(DEFAULT_THREADS)  # as a fresh process starts; set_up applies `setting`
    run = Trainer(load_config(None, [*BENCH, *overrides, f"train.threads={setting}"]))
    watch = SpeedWatch(run.cfg.train.threads, run.device.type)
    for _ in range(1 + REFERENCE_WINDOWS):
        watched_window(run, watch, window)
    competitors, niced = CONDITIONS[condition]
    with competing(competitors, niced):
        _, noticed = watched_window(run, watch, window)
        samples = seconds = 0.0
        for _ in range(windows):
            window_samples, window_seconds = watched_window(run, watch, window)
            samples, seconds = samples + window_samples, seconds + window_seconds
    return samples / seconds, noticed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides, as for train_vae.py")
    p.add_argument(
        "--steps", type=int, default=8, help="steps measured per row, in whole windows (default 8)"
    )
    p.add_argument(
        "--window", type=int, default=4, help="steps in a window the watch judges (default 4)"
    )
    args = p.parse_args(argv)
    windows = -(-args.steps // args.window)
    print(
        f"torch {torch.__version__}, {DEFAULT_THREADS} threads by default; each row: "
        f"{1 + REFERENCE_WINDOWS} idle windows of {args.window} steps, the window the competitor "
        f"starts in, then {windows * args.window} steps measured",
        flush=True,
    )
    table = {}
    for name, setting in SETTINGS.items():
        for condition in CONDITIONS:
            print(f"train.threads={setting}, {condition}", flush=True)
            table[name, condition] = measure(
                args.overrides, setting, condition, args.window, windows
            )
    print(f"\n{'train.threads':<16}" + "".join(f"{c:>18}" for c in CONDITIONS))
    for name in SETTINGS:
        cells = []
        for condition in CONDITIONS:
            rate, noticed = table[name, condition]
            cells.append(f"{rate:,.0f}" + (f" ({noticed:.1f} s)" if condition != "idle" else ""))
        print(f"{name:<16}" + "".join(f"{cell:>18}" for cell in cells))
    print(
        f"(samples/s over the steps measured; in brackets the seconds of the {args.window}-step "
        "window in which the competitor started, the one in which auto notices it)"
    )
    print(f"\nratio: {table['auto', 'beside 1 niced'][0] / table['auto', 'idle'][0]:.2f}")


if __name__ == "__main__":
    main()
