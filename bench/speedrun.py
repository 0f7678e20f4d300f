"""Time to quality on full-size ARC, like airbench's time to 94% on CIFAR-10.

    python bench/speedrun.py --minutes 30 --out runs/speedrun_new               # the default recipe
    python bench/speedrun.py --minutes 30 --out runs/speedrun_today --baseline  # the seed's network
    python bench/speedrun.py --minutes 10 --out DIR model.blocks=1              # any overrides

Trains on all ARC-AGI-1 training grids (full size, augmented: the trainer's own batches and step)
for a wall-clock budget of training time, and evaluates on all 3,564 ARC-AGI-1 evaluation grids
every `--eval-every-minutes` (evaluation time is excluded from the budget and reported apart). It
records the first training time at which validation non-black accuracy reaches 50/70/85/95% and
exact grids 10/25/50%, counted only at evaluations where β is at its maximum, every latent dimension
is active and the mean KL per dimension is at least `monitor.kl_floor` (0.05 nats): a collapsed
model cannot set a time.

β and the learning rate (train.lr_schedule) follow the config on a clock: the budget stands for
`train.epochs` epochs, so with the speedrun's defaults (10 epochs, warm-up 1, ramp 2 to β = 0.5) β
is 0 for the first 10% of the budget, rises until 30% and holds at 0.5 for the rest. Data epochs
(plans of `data.samples_per_epoch` samples) run back to back, independent of that clock. `--out DIR`
writes speedrun.json (figures, time_to, the evaluation history, the config).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# noqa: E402
from arcvae.config import latent_size
from arcvae.config_io import load_config, to_dict
from arcvae.data.batches import epoch_plan, grid_batches, make_batch
from arcvae.training.evaluation import evaluate
from arcvae.training.run import set_up
from arcvae.training.schedules import learning_rate, scheduled_beta
from arcvae.training.steps import make_optimizer, train_step

RECIPE = [
    "train.epochs=10",
    "beta.schedule=linear_warmup",
    "beta.warmup_epochs=1",
    "beta.ramp_epochs=2",
    "beta.max_beta=0.5",
    "loss.free_bits=0.3",
    "data.val_source=arc1",
    "data.val_split=evaluation",
]
# Today's network: the defaults before issue 13 (and before bf16 on the CPU), everything else as the
# recipe.
BASELINE = [
    "model.arch=conv",
    "data.padding=black",
    "model.latent_dim=64",
    "model.channels=[64,128,256]",
    "loss.recon=focal",
    "loss.class_weights=inverse_sqrt",
    "train.lr_schedule=constant",
    "train.precision=fp32",
    "train.channels_last=false",
    "train.batch_size=128",
    "train.lr=0.001",
]
TARGETS = {
    "non_black_50": ("non_black_accuracy", 0.50),
    "non_black_70": ("non_black_accuracy", 0.70),
    "non_black_85": ("non_black_accuracy", 0.85),
    "non_black_95": ("non_black_accuracy", 0.95),
    "exact_10": ("grid_accuracy", 0.10),
    "exact_25": ("grid_accuracy", 0.25),
    "exact_50": ("grid_accuracy", 0.50),
}


def counts(point: dict, max_beta: float, latent_dim: int, kl_floor: float) -> bool:
    """May this evaluation set a time_to? Only at full β, every dimension active, mean KL/dim >= the
    floor."""
    return (
        point["beta"] >= max_beta - 1e-9
        and point["active_units"] == latent_dim
        and point["kl_dim_mean"] >= kl_floor
    )


def times_to(history: list[dict], max_beta: float, latent_dim: int, kl_floor: float) -> dict:
    """Figure name -> the first counted evaluation's training minutes at which it was reached (or
    None)."""
    reached = {name: None for name in TARGETS}
    for point in history:
        if not counts(point, max_beta, latent_dim, kl_floor):
            continue
        for name, (key, target) in TARGETS.items():
            if reached[name] is None and point[key] >= target:
                reached[name] = point["minutes"]
    return reached


class Trainer:
    """The trainer's own pieces (set-up, epoch plans, augmented batches, the step) driven by a
    clock."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.setup = set_up(cfg)
        self.device, self.net = self.setup.device, self.setup.net
        self.train = self.setup.train.to(self.device)
        self.optimizer = make_optimizer(self.net, cfg.train.weight_decay, cfg.train.lr)
        self.n_batches = max(1, cfg.data.samples_per_epoch // cfg.train.batch_size)
        self.epoch = 0
        self.batch = 0
        self.samples = 0
        self.plan = epoch_plan(self.train, cfg, 0, self.n_batches)

    def beta(self, fraction: float) -> float:
        epochs = self.cfg.train.epochs
        return scheduled_beta(self.cfg.beta, min(fraction, 1.0) * epochs, epochs)

    def step(self, fraction: float) -> None:
        """One training step at `fraction` of the budget (β and the learning rate follow the
        clock)."""
        if self.batch == self.n_batches:
            self.epoch, self.batch = self.epoch + 1, 0
            self.plan = epoch_plan(self.train, self.cfg, self.epoch, self.n_batches)
        batch = make_batch(self.train, self.plan, self.cfg, self.epoch, self.batch)
        train_step(
            self.net,
            self.optimizer,
            batch,
            self.beta(fraction),
            self.setup.options,
            self.setup.precision,
            self.cfg.train.grad_clip,
            learning_rate(self.cfg.train, fraction),
        )
        self.batch, self.samples = self.batch + 1, self.samples + len(batch.grids)

    def evaluate(self, beta: float) -> dict:
        batches = (
            batch for _, batch in grid_batches(self.setup.val, self.cfg, self.cfg.train.batch_size)
        )
        return evaluate(
            self.net,
            batches,
            beta,
            self.setup.options,
            self.setup.precision,
            self.cfg.monitor.active_threshold,
        )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def speedrun(cfg, minutes: float, eval_every: float) -> dict:
    """Train for `minutes` of training time, evaluating every `eval_every` minutes and at the
    end."""
    run = Trainer(cfg)
    budget = minutes * 60
    trained = 0.0
    eval_seconds = 0.0
    history = []
    next_eval = min(eval_every * 60, budget)
    while trained < budget:
        start = time.perf_counter()
        while trained + (time.perf_counter() - start) < next_eval:
            run.step((trained + time.perf_counter() - start) / budget)
        sync(run.device)
        trained += time.perf_counter() - start
        start = time.perf_counter()
        beta = run.beta(trained / budget)
        figures = run.evaluate(beta)
        eval_seconds += time.perf_counter() - start
        history.append(
            {
                **figures,
                "val_grids": figures["samples"],
                "minutes": trained / 60,
                "samples": run.samples,
                "beta": beta,
            }
        )
        print(row(history[-1]), flush=True)
        next_eval = min(next_eval + eval_every * 60, budget)
    return report(cfg, minutes, history, eval_seconds)


def report(cfg, minutes: float, history: list[dict], eval_seconds: float) -> dict:
    last = history[-1]
    max_beta = cfg.beta.max_beta
    return {
        "minutes": minutes,
        "beta": last["beta"],
        "latent_dim": latent_size(cfg.model, cfg.data.grid_size),
        "active_units": last["active_units"],
        "min_kl_per_dim": last["kl_dim_min"],
        "kl_per_dim": last["kl_per_dim"],
        "val_non_black_accuracy": last["non_black_accuracy"],
        "val_grid_accuracy": last["grid_accuracy"],
        "val_pixel_accuracy": last["pixel_accuracy"],
        "per_class_accuracy": last["per_class_accuracy"],
        "time_to": times_to(
            history, max_beta, latent_size(cfg.model, cfg.data.grid_size), cfg.monitor.kl_floor
        ),
        "samples_seen": last["samples"],
        "eval_minutes": eval_seconds / 60,
        "history": [{k: v for k, v in point.items() if k != "kl_per_dim"} for point in history],
        "config": to_dict(cfg),
    }


HEADER = (
    f"{'min':>6} {'samples':>9} {'beta':>5} {'non-black':>9} {'pixels':>7} {'exact':>6} {'AU':>4} "
    f"{'KL/dim min':>10}"
)


def row(p: dict) -> str:
    return (
        f"{p['minutes']:6.1f} {p['samples']:9d} {p['beta']:5.2f} "
        f"{100 * p['non_black_accuracy']:8.1f}% {100 * p['pixel_accuracy']:6.1f}% "
        f"{100 * p['grid_accuracy']:5.1f}% {p['active_units']:4d} {p['kl_dim_min']:10.3f}"
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "overrides",
        nargs="*",
        help="config overrides, as for train_vae.py (after the speedrun's recipe)",
    )
    p.add_argument("--config", default=None)
    p.add_argument("--minutes", type=float, default=30.0, help="training time budget (default 30)")
    p.add_argument(
        "--eval-every-minutes", type=float, default=2.0, help="training minutes between evaluations"
    )
    p.add_argument("--baseline", action="store_true", help="today's network: " + " ".join(BASELINE))
    p.add_argument("--out", type=Path, default=None, help="folder for speedrun.json")
    args = p.parse_args(argv)
    cfg = load_config(
        args.config,
        [*RECIPE, *(BASELINE if args.baseline else []), "train.progress=false", *args.overrides],
    )
    print(HEADER)
    result = speedrun(cfg, args.minutes, args.eval_every_minutes)
    print(
        "time to (training minutes): "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.1f}'}" for k, v in result["time_to"].items())
    )
    print(
        f"{result['samples_seen']} samples in {args.minutes:g} training minutes; evaluation took "
        f"{result['eval_minutes']:.1f} minutes more"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speedrun.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
