"""A run: its folder, the set-up that training and the overfit check share, its state, checkpoints
and summary.

`set_up` loads and validates everything before a file is written (bad input loses nothing);
`Progress` is all that changes as training goes and is checkpointed with the weights.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..config import Config, latent_size
from ..config_io import config_hash, diff_keys, load_config_text, to_dict, to_yaml
from ..data.grids import Grids, load_datasets
from ..errors import ArcVaeError
from ..files import write_json_atomic, write_text_atomic
from ..models.build import build_model
from . import checkpoint as ckpt
from .bits import LN2
from .class_weights import class_weights
from .distributed import World, broadcast_from_main, device_for, init_world, resolve_device
from .loggers import RunLog, check_wandb, open_log
from .losses import LossOptions, uses_class_weights
from .metrics import FIGURES
from .precision import Precision
from .records import read_metrics
from .schedules import AdaptiveBeta, learning_rate, schedule_warnings, scheduled_beta
from .threads import SpeedWatch, set_threads
from .tracking import say

# ---------------------------------------------------------------- the run folder


def holds_run(out: Path) -> bool:
    return (out / "metrics.jsonl").exists() or (out / "summary.json").exists()


def refuse_existing_run(out: Path, overwrite: bool) -> None:
    """Refuse a folder that already holds a run unless `overwrite`; checks only, writes nothing."""
    out = Path(out)
    if holds_run(out) and not overwrite:
        raise ArcVaeError(
            f"{out}: already holds a run (use --overwrite to replace it, --resume {out} to "
            "continue it, or another --out)"
        )


def prepare_run_dir(out: Path, overwrite: bool) -> Path:
    """A fresh run folder; one that already holds a run is refused unless `overwrite`."""
    out = Path(out)
    refuse_existing_run(out, overwrite)
    if holds_run(out):
        for name in ("metrics.jsonl", "summary.json"):
            (out / name).unlink(missing_ok=True)
        for path in ckpt.list_checkpoints(out):
            path.unlink()
        for path in (
            (out / "tensorboard").glob("events.*") if (out / "tensorboard").is_dir() else []
        ):
            path.unlink()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    return out


# ---------------------------------------------------------------- set-up shared by training and the
# overfit check


def say_overflow(net: torch.nn.Module, train: Grids, val: Grids | None) -> None:
    """How many grids hold more objects than the model has slots (`SlotVAE.overflow`): their extra
    objects are not in the latent and cost their pixels as reconstruction errors."""
    for name, grids in (("training", train), ("validation", val)):
        if grids is None:
            continue
        # the parse has no weights: it runs where the grids are (the CPU, before training)
        over = sum(
            int(net.overflow(grids.pixels[i : i + 4096].long()).sum())
            for i in range(0, len(grids), 4096)
        )
        say(
            f"slots: {over} of {len(grids)} {name} grids hold more objects than "
            f"model.slots={net.slots}" + ("; their extra objects are not coded" if over else "")
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Setup:
    """What every run starts from: where it runs, its data, its loss options and a fresh model."""

    world: World
    device: torch.device
    train: Grids  # on the CPU; training moves it to the device
    val: Grids | None
    options: LossOptions
    net: torch.nn.Module  # the bare model, on the device
    precision: Precision  # decided once from train.precision and the device


def load_weights(
    cfg: Config, train: Grids, device: torch.device, world: World, recompute: bool
) -> torch.Tensor | None:
    """Class weights from the whole training set, computed (and cached) once, on rank 0; the others
    receive them."""
    if not uses_class_weights(cfg.loss):
        return None
    if not world.main:
        return broadcast_from_main(torch.empty(10, device=device), world)
    weights = class_weights(
        train,
        cfg.data.source,
        cfg.data.augment,
        cfg.loss.class_weights,
        cfg.loss.effective_beta,
        cfg.loss.max_weight_ratio,
        cfg.data.cache_dir,
        recompute,
        cfg.data.padding,
    )
    say(
        f"class weights ({weights.method}, "
        f"{'loaded from cache' if weights.source == 'cache' else 'computed'}"
        f" over {len(train)} grids): " + " ".join(f"{w:.2f}" for w in weights.weights)
    )
    return broadcast_from_main(weights.tensor(device), world)


def set_up(cfg: Config, recompute_weights: bool = False) -> Setup:
    """Set torch's threads (train.threads), join torchrun's group (if launched so), seed, load and
    check the data, weigh the classes, build the model."""
    check_wandb(cfg.monitor)
    set_threads(cfg.train.threads)
    world = init_world(cfg.train.device)
    device = device_for(world, resolve_device(cfg.train.device))
    seed_everything(cfg.train.seed)
    train, val = load_datasets(cfg.data)
    if world.main:
        say(
            f"data: {len(train)} training grids from {train.origin}"
            f" ({train.skipped} larger than {cfg.data.grid_size}x{cfg.data.grid_size} skipped), "
            + (
                f"{len(val)} validation grids from {val.origin} ({val.skipped} skipped)"
                if val
                else "no validation set"
            )
            + (f"; {world.size} processes" if world.active else "")
        )
    weights = load_weights(cfg, train, device, world, recompute_weights)
    options = LossOptions.from_config(cfg.loss, weights, cfg.data.padding)
    precision = Precision.decide(cfg.train.precision, device)
    channels_last = (
        cfg.train.channels_last if cfg.train.channels_last is not None else precision.bf16
    )
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = build_model(cfg).to(device, memory_format=layout)
    if world.main and hasattr(net, "overflow"):  # a model that cannot code every grid whole
        say_overflow(net, train, val)
    return Setup(world, device, train, val, options, net, precision)


# ---------------------------------------------------------------- state, checkpoints, summary


@dataclass
class Progress:
    """What changes as training goes; saved in checkpoints."""

    step: int = 0
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches done in the current epoch
    bad_steps_in_row: int = 0
    skipped_steps: int = 0
    collapse_events: list = field(default_factory=list)
    collapsed_now: bool = False  # the latest evaluation after warm-up showed collapse
    slowdowns: list = field(default_factory=list)  # the run's `slowdown` records
    worst_kl_dim_mean: float | None = None
    worst_non_black: float | None = None
    running: dict | None = None  # loss sums since the last 'train' record, on the device

    def took_step(self, batch: int) -> None:
        """Batch `batch` of the epoch was trained on."""
        self.step += 1
        self.batch_in_epoch = batch + 1

    def finished_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0

    def count_step(self, finite: bool) -> int:
        """A step's verdict (skipped when not finite); returns the non-finite steps in a row."""
        if finite:
            self.bad_steps_in_row = 0
        else:
            self.bad_steps_in_row += 1
            self.skipped_steps += 1
        return self.bad_steps_in_row

    def note_evaluation(self, record: dict, collapse_reasons: list[str]) -> None:
        """An evaluation after warm-up: the worst figures so far, a collapse event if any, and
        whether the run is collapsed now (a later healthy evaluation clears it)."""
        worst = self.worst_kl_dim_mean
        self.worst_kl_dim_mean = (
            record["kl_dim_mean"] if worst is None else min(worst, record["kl_dim_mean"])
        )
        non_black = record["non_black_accuracy"]
        if non_black is not None:
            worst = self.worst_non_black
            self.worst_non_black = non_black if worst is None else min(worst, non_black)
        if collapse_reasons:
            event = {"epoch": self.epoch, "step": self.step, "reasons": collapse_reasons}
            self.collapse_events.append(event)
        self.collapsed_now = bool(collapse_reasons)

    def end_status(self) -> str:
        """A finished run's status: `collapsed` only while its last evaluation after warm-up shows
        collapse; one that recovered is `completed` (its events stay in `collapse_events`)."""
        return "collapsed" if self.collapsed_now else "completed"


class Pictures(Protocol):
    """What a run draws into plots/ (pictures/run_pictures.py draws it): handed to `train` and
    `overfit_batch` by the command line, so that training imports no plotting."""

    def evaluation(self, run: Run, grids: Grids) -> None:
        """After each evaluation of a training run: reconstructions of `grids`, the curves, and at
        the end the latent map."""

    def overfit(
        self,
        run_dir: Path,
        records: list[dict],
        cfg: Config,
        picked: Grids,
        predicted: list,
        title: str,
    ) -> Path:
        """After the overfit check: the batch above its reconstructions, the curves; returns the
        reconstructions' file."""


@dataclass
class Run:
    """One training run: the set-up, the optimiser, where it writes, and its progress."""

    cfg: Config
    run_dir: Path
    setup: Setup
    model: torch.nn.Module  # what a training step calls: the net, compiled and/or wrapped in DDP
    optimizer: torch.optim.Optimizer
    controller: AdaptiveBeta | None
    steps_per_epoch: int
    speed: SpeedWatch  # not saved: a resumed run measures its own reference speed again
    log: RunLog = field(default_factory=RunLog)  # no loggers until `start` (rank 0)
    progress: Progress = field(default_factory=Progress)
    stop_requested: bool = False  # set by SIGINT/SIGTERM; not saved
    timed: bool = False  # the expected-time line has been printed
    pictures: Pictures | None = None  # what the run draws after each evaluation; None: nothing

    @property
    def world(self) -> World:
        return self.setup.world

    @property
    def device(self) -> torch.device:
        return self.setup.device

    @property
    def net(self) -> torch.nn.Module:
        return self.setup.net

    def beta(self) -> float | torch.Tensor:
        if self.controller is not None:
            return self.controller.beta
        return scheduled_beta(
            self.cfg.beta, self.progress.step / self.steps_per_epoch, self.cfg.train.epochs
        )

    def lr(self) -> float:
        return learning_rate(
            self.cfg.train, self.progress.step / (self.cfg.train.epochs * self.steps_per_epoch)
        )


def save(run: Run) -> None:
    """A checkpoint of everything needed to continue exactly (rank 0 writes)."""
    if not run.world.main:
        return
    payload = {
        "model": run.net.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "controller": run.controller.state_dict() if run.controller else None,
        "progress": vars(run.progress),
        "rng": ckpt.rng_state(),
        "config_yaml": to_yaml(run.cfg),
        "config_hash": config_hash(run.cfg),
    }
    ckpt.save_checkpoint(run.run_dir, run.progress.step, payload, run.cfg.train.keep_checkpoints)


def check_resume_config(cfg: Config, state: dict, force: bool) -> None:
    changed = diff_keys(load_config_text(state["config_yaml"]), cfg)
    if changed and not force:
        raise ArcVaeError(
            f"cannot resume with a different config (changed: {', '.join(changed)}); use --force "
            "to resume anyway"
        )


def restore(run: Run, state: dict) -> None:
    ckpt.load_state(run.net, state["model"])
    ckpt.load_state(run.optimizer, state["optimizer"])
    if run.controller is not None and state["controller"] is not None:
        run.controller.load_state_dict(state["controller"])
    run.progress = Progress(**state["progress"])
    if run.progress.running is not None:
        run.progress.running = {k: v.to(run.device) for k, v in run.progress.running.items()}
    ckpt.set_rng_state(state["rng"])
    # the checkpoint holds rank 0's RNG; the others need their own noise again
    if run.world.rank > 0:
        torch.manual_seed(run.cfg.train.seed + run.world.rank + 1_000_003 * run.progress.step)


def write_summary(run: Run, status: str, started: float, message: str | None = None) -> dict:
    """summary.json: the final figures, the worst seen after warm-up, the collapse record,
    status."""
    records = run.log.records
    final = [r for r in records if r["split"] in ("val", "train_eval")]
    last_train = [r for r in records if r["split"] == "train"]
    p = run.progress
    summary = {
        "status": status,
        "message": message,
        "schedule": run.cfg.beta.schedule,
        "epochs": p.epoch,
        "step": p.step,
        "beta": float(run.beta()),
        "final": final[-1] if final else None,
        "final_train": last_train[-1] if last_train else None,
        "worst_kl_dim_mean_after_warmup": p.worst_kl_dim_mean,
        "worst_non_black_accuracy_after_warmup": p.worst_non_black,
        "collapse_flagged": bool(p.collapse_events),
        "first_collapse_epoch": p.collapse_events[0]["epoch"] if p.collapse_events else None,
        "collapse_events": p.collapse_events,
        "collapsed_at_end": p.collapsed_now,
        "recovered_from_collapse": bool(p.collapse_events) and not p.collapsed_now,
        "free_bits_allowance": free_bits_allowance(run.cfg),
        "slowdowns": p.slowdowns,
        "skipped_steps": p.skipped_steps,
        "device": str(run.device),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    # The contract's headline figures at the top level, taken from the final evaluation.
    source = summary["final"] or summary["final_train"] or {}
    summary.update({key: source.get(key) for key in FIGURES})
    write_json_atomic(run.run_dir / "summary.json", summary)
    return summary


def start(run: Run, resume_state: dict | None, overwrite: bool) -> None:
    """Continue from a checkpoint or start a fresh folder; then config.yaml and the log (rank 0)."""
    if resume_state is not None:
        restore(run, resume_state)
        dropped = ckpt.rewind_metrics(run.run_dir, run.progress.step) if run.world.main else 0
        if run.world.main:
            p = run.progress
            say(
                f"resumed {run.run_dir} at step {p.step} (epoch {p.epoch}, batch "
                f"{p.batch_in_epoch})"
                + (f"; dropped {dropped} records logged after it" if dropped else "")
            )
    elif run.world.main:
        prepare_run_dir(run.run_dir, overwrite)
    if run.world.main:
        earlier = read_metrics(run.run_dir) if resume_state is not None else []
        run.log = open_folder(run.run_dir, run.cfg, earlier)


def open_folder(run_dir: Path, cfg: Config, earlier: list[dict] | None = None) -> RunLog:
    """What every run folder starts with, training's and the overfit check's: config.yaml (fully
    resolved) and the log its records go to, after the `earlier` ones of a resumed run."""
    write_text_atomic(run_dir / "config.yaml", to_yaml(cfg))
    return open_log(run_dir, cfg.monitor, to_dict(cfg), earlier or [])


def warn_about_schedule(cfg: Config, world: World) -> None:
    if world.main:
        for note in schedule_warnings(cfg.beta, cfg.train.epochs, cfg.loss.free_bits):
            say("warning: " + note)


def free_bits_allowance(cfg: Config) -> float:
    """λ × D: the most nats a grid of KL that free bits exempt from β, for a grid on the largest
    canvas (a smaller canvas's grid is granted λ for each dim it reaches)."""
    return cfg.loss.free_bits * latent_size(cfg.model, cfg.data.grid_size)


def say_free_bits(cfg: Config, world: World) -> None:
    """The allowance, said once at the start: λ nats of each of the D dims of the largest
    canvas."""
    allowance = free_bits_allowance(cfg)
    if world.main and allowance > 0:
        say(
            f"free bits: {cfg.loss.free_bits:g} nats x {latent_size(cfg.model, cfg.data.grid_size)}"
            f" latent dims = {allowance:.1f} nats ({allowance / LN2:.1f} bits) a grid of KL exempt "
            "from β (loss.free_bits) at the largest canvas, λ for each dim a smaller canvas "
            "reaches"
        )
