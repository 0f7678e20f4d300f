"""torch's CPU threads for a run (`train.threads`), and the watch that notices another process
taking the cores (issue 28).

Small kernels on several threads wait for their slowest thread. When another process shares a
core with one of them (another terminal is another session, and with autogroups `nice` does not
reach across sessions), every kernel waits for that core's turn, and training falls by one or two
orders of magnitude; one thread loses only the share of the machine the other process takes. Idle,
all cores are fastest. So `auto` starts on torch's default and trains on 1 thread from the first
log window whose speed fell below `SLOWED` of the run's own early speed (`SpeedWatch`).
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

# A window below this share of the reference speed is a slowdown. Another process on the cores
# costs a multi-threaded run far more than this; the mix of canvases in a window far less.
SLOWED = 0.25
# A slowdown ends, and a later one is reported again, once a window is back above this share.
RECOVERED = 0.5
# Windows after the first (which builds kernels) whose median speed is the reference.
REFERENCE_WINDOWS = 3


def set_threads(setting: int | str) -> None:
    """A number: torch's intra-op threads from now on. `auto` leaves torch's default (all cores,
    or OMP_NUM_THREADS)."""
    if setting != "auto":
        torch.set_num_threads(setting)


@contextmanager
def threads_kept():
    """torch's thread count as it was before the block: a sweep trains its runs one after another
    in one process, and each starts from the process's count, not from the last run's."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Slowdown:
    """A log window that ran far below the run's reference speed."""

    step: int
    samples_per_s: float
    reference_samples_per_s: float
    threads: int  # what the window ran on
    threads_after: int  # what training goes on with
    setting: int | str  # train.threads
    device: str  # the device type, "cpu" or "cuda"

    def record(self) -> dict:
        """The figures metrics.jsonl and summary.json keep."""
        return {k: v for k, v in asdict(self).items() if k not in ("setting", "device")}

    def warning(self) -> str:
        """The console line: what happened, the likely cause, and the key that helps."""
        where = "the CPU cores" if self.device == "cpu" else "the GPU or the CPU cores"
        return (
            f"warning: training slowed to {self.samples_per_s:,.0f} samples/s from "
            f"{self.reference_samples_per_s:,.0f} at step {self.step}: another process is "
            f"probably using {where}; {self.advice()}"
        )

    def advice(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        if self.threads_after < self.threads:
            return "train.threads=auto now trains on 1 thread (set train.threads=N to choose)"
        if self.setting == "auto":
            return f"train.threads=auto keeps {threads} here (set train.threads=N to choose)"
        if self.threads > 1 and self.device == "cpu":
            return (
                f"train.threads={self.setting} keeps {threads} (train.threads=1 or auto is much "
                "faster on shared cores)"
            )
        return f"train.threads={self.setting} keeps {threads}"


@dataclass
class SpeedWatch:
    """Judges each log window's samples/s against the run's reference: the median of the
    `REFERENCE_WINDOWS` windows after the first. The first window of a slowdown returns a
    `Slowdown` (and, under `auto` on the CPU, has switched torch to 1 thread); the next ones do not,
    until the speed is back above `RECOVERED` of the reference.

    A process that is already on the cores when the run starts slows the reference windows too, so
    it is not noticed: the watch compares the run with itself, not with other machines.
    """

    setting: int | str  # train.threads
    device: str  # the device type: only the CPU's threads are switched
    windows: int = 0
    early: list[float] = field(default_factory=list)  # the reference windows' samples/s
    slowed: bool = False  # inside a slowdown that was reported

    def window(self, step: int, samples_per_s: float) -> Slowdown | None:
        """A window of training steps that ended at `step` ran at `samples_per_s`."""
        self.windows += 1
        if self.windows == 1:
            return None
        if len(self.early) < REFERENCE_WINDOWS:
            self.early.append(samples_per_s)
            return None
        reference = statistics.median(self.early)
        if self.slowed:
            self.slowed = samples_per_s < RECOVERED * reference
            return None
        if samples_per_s >= SLOWED * reference:
            return None
        self.slowed = True
        threads = torch.get_num_threads()
        if self.setting == "auto" and self.device == "cpu" and threads > 1:
            torch.set_num_threads(1)
        return Slowdown(
            step,
            samples_per_s,
            reference,
            threads,
            torch.get_num_threads(),
            self.setting,
            self.device,
        )
