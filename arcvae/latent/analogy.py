"""`python -m arcvae analogy RUN --data arc1 --split evaluation`: ARC tasks as latent arithmetic.

For each task, Δ = the mean over its training pairs of μ(output) − μ(input); the prediction for a
test input x is decode(μ(x) + Δ), all at the posterior mean. It is scored against the test outputs
with the figures of training (`metrics.grid_figures`), beside two baselines: the test input copied
(many ARC outputs share most pixels with their input), and decode(μ(x)) unchanged (what the model
makes of the input itself, so the part of the score that Δ adds shows).

Shapes: a copy is exact only with the output's shape; a decode is judged on its shape where the
model predicts one (symbol mode) and on the output's own pixels of its whole canvas otherwise (black
mode).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..data.grids import TaskGrid
from ..training.metrics import grid_figures
from .trained_run import TrainedRun

METHODS = {
    "copy": "copy the test input",
    "decode_input": "decode z(test input)",
    "analogy": "decode z(test input) + Δ",
}


@dataclass
class Task:
    """One task's grids as indices into the list of all grids: (input, output) per pair."""

    origin: str
    train: list[tuple[int, int]] = field(default_factory=list)
    test: list[tuple[int, int]] = field(default_factory=list)


def gather_tasks(grids: list[TaskGrid], run: TrainedRun) -> list[Task]:
    """The tasks with a training pair and a test pair with its output, every grid fitting the
    model's canvas."""
    # task -> (subset, pair) -> role -> index
    pairs: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    for i, g in enumerate(grids):
        # the origin names the file too: ids may repeat across files
        pairs[g.origin][g.subset, g.pair_index][g.role] = i
    tasks = []
    for origin, by_pair in pairs.items():
        if not all(run.fits(grids[i].grid) for roles in by_pair.values() for i in roles.values()):
            continue
        task = Task(origin)
        for (subset, _), roles in by_pair.items():
            if "output" in roles:  # hidden test outputs cannot be scored
                getattr(task, subset).append((roles["input"], roles["output"]))
        if task.train and task.test:
            tasks.append(task)
    return tasks


def predictions(
    run: TrainedRun, grids: list[TaskGrid], tasks: list[Task]
) -> dict[str, list[np.ndarray]]:
    """Every method's prediction for every test pair, in task order."""
    needed = sorted({i for t in tasks for pair in t.train + t.test for i in pair})
    mu = dict(
        zip(
            needed, run.encode([grids[i].grid for i in needed], [grids[i].label for i in needed])[0]
        )
    )
    inputs = []
    moved = []
    for task in tasks:
        delta = np.mean([mu[o] - mu[i] for i, o in task.train], axis=0)  # (D,)
        inputs += [i for i, _ in task.test]
        moved += [mu[i] + delta for i, _ in task.test]
    return {
        "copy": [grids[i].grid for i in inputs],
        "decode_input": run.decode(np.stack([mu[i] for i in inputs])),
        "analogy": run.decode(np.stack(moved)),
    }


def score(run: TrainedRun, predicted: dict, targets: list[np.ndarray], names: list[str]) -> dict:
    """Each method's figures over all test pairs, and the pairs it reproduced exactly."""
    report = {}
    for method, grids in predicted.items():
        judge_shape = method == "copy" or run.predicts_shape
        exact = [
            name
            for name, guess, truth in zip(names, grids, targets)
            if grid_figures([guess], [truth], judge_shape)["grid_accuracy"] == 1.0
        ]
        report[method] = {**grid_figures(grids, targets, judge_shape), "exact": exact}
    return report
