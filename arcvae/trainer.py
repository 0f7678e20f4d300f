"""The training loop: data on the device, one step = one batch built by indexing and augmenting there.

Read `train` top to bottom: set up, then epochs of steps, an evaluation per `eval_every` epochs
(figures, collapse alarm, pictures, checkpoint), then the summary. Figures are summed on the
device and read back only when logged.
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint as ckpt
from .config import ArcVaeError, Config, config_hash, diff_keys, load_config_text, to_yaml
from .data import Grids, batch_generator, epoch_indices, load_datasets
from .distributed import (World, any_across, barrier, broadcast_from_main, device_for, init_world, mean_across,
                          shutdown, sum_across)
from .losses import LossOptions, kl_per_sample_dim, uses_class_weights
from .metrics import add_batch, alarm_start, collapse_reasons, new_stats, summarize
from .model import build_model
from .steps import (add_running, decode_at_mean, evaluate, load_class_weights, make_batch, make_optimizer,
                    resolve_device, seed_everything, train_step, zero_running)
from .plots import save_curves, save_reconstructions
from .schedules import AdaptiveBeta, schedule_warnings, scheduled_beta
from .tracking import NullLog, RunLog, console_line, read_metrics, say, write_json_atomic


@dataclass
class Progress:
    """What changes as training goes; saved in checkpoints."""
    step: int = 0
    epoch: int = 0                 # epochs completed
    batch_in_epoch: int = 0        # batches done in the current epoch
    bad_steps_in_row: int = 0
    skipped_steps: int = 0
    collapse_events: list = field(default_factory=list)
    worst_kl_dim_mean: float | None = None
    worst_non_black: float | None = None


def holds_run(out: Path) -> bool:
    return (out / "metrics.jsonl").exists() or (out / "summary.json").exists()


def refuse_existing_run(out: Path, overwrite: bool) -> None:
    """Refuse a folder that already holds a run unless `overwrite`; checks only, writes nothing."""
    out = Path(out)
    if holds_run(out) and not overwrite:
        raise ArcVaeError(f"{out}: already holds a run (use --overwrite to replace it, "
                          f"--resume {out} to continue it, or another --out)")


def prepare_run_dir(out: Path, overwrite: bool) -> Path:
    """A fresh run folder; one that already holds a run is refused unless `overwrite`."""
    out = Path(out)
    refuse_existing_run(out, overwrite)
    if holds_run(out):
        for name in ("metrics.jsonl", "summary.json"):
            (out / name).unlink(missing_ok=True)
        for path in ckpt.list_checkpoints(out):
            path.unlink()
        for path in (out / "tensorboard").glob("events.*") if (out / "tensorboard").is_dir() else []:
            path.unlink()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class Run:
    """Everything one training run holds, passed to the few functions that make up the loop."""
    cfg: Config
    run_dir: Path
    device: torch.device
    train: Grids
    val: Grids | None
    net: torch.nn.Module            # the bare model: checkpoints, evaluation, pictures
    model: torch.nn.Module          # what a training step calls: net, compiled and/or wrapped in DDP
    optimizer: torch.optim.Optimizer
    options: LossOptions
    controller: AdaptiveBeta | None
    log: RunLog
    progress: Progress
    steps_per_epoch: int
    world: World = World()
    stop_requested: bool = False
    running: dict | None = None     # loss sums since the last 'train' record (checkpointed: see train_epoch)

    def beta(self) -> float | torch.Tensor:
        if self.controller is not None:
            return self.controller.beta
        return scheduled_beta(self.cfg.beta, self.progress.step / self.steps_per_epoch, self.cfg.train.epochs)


def checkpoint_payload(run: Run) -> dict:
    return {
        "model": run.net.state_dict(), "optimizer": run.optimizer.state_dict(),
        "controller": run.controller.state_dict() if run.controller else None,
        "progress": vars(run.progress), "running": run.running, "rng": ckpt.rng_state(),
        "config_yaml": to_yaml(run.cfg), "config_hash": config_hash(run.cfg),
    }


def restore(run: Run, state: dict) -> None:
    try:
        run.net.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError) as exc:  # --force past a changed model shape
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]  # names a tensor that does not fit
        raise ArcVaeError(f"checkpoint does not fit this model ({detail}); was model.* changed?") from None
    if run.controller is not None and state["controller"] is not None:
        run.controller.load_state_dict(state["controller"])
    run.progress = Progress(**state["progress"])
    if state["running"] is not None:
        run.running = {k: v.to(run.device) for k, v in state["running"].items()}
    ckpt.set_rng_state(state["rng"])


def train_epoch(run: Run, epoch: int, bar: tqdm) -> None:
    """The steps of one epoch (from where a resumed run left off), logging every `log_every` steps."""
    cfg, p = run.cfg, run.progress
    order = epoch_indices(len(run.train), cfg.data.samples_per_epoch,
                          batch_generator(cfg.train.seed, epoch, 0, run.device), run.device)
    if run.running is None:  # else a run resumed mid-epoch: the sums since its last record
        run.running = zero_running(cfg.model.latent_dim, run.device)
    last_time, last_step = time.perf_counter(), p.step
    pending = None  # the previous step's finite flag, read one step late so the device queue never drains
    for b in range(p.batch_in_epoch, run.steps_per_epoch):
        batch = make_batch(run.train, order, cfg, epoch, b, run.world)
        beta = run.beta()
        parts, grad_norm, finite = train_step(run.model, run.optimizer, batch, beta, run.options, cfg, run.device)
        if run.controller is not None:
            run.controller.update(mean_across(parts.kl_per_dim.detach().mean(), run.world))
        add_running(run.running, parts, finite)
        if pending is not None:
            count_bad_step(run, pending)
        pending = finite
        p.step, p.batch_in_epoch = p.step + 1, b + 1
        bar.update(1)
        if p.step % cfg.train.log_every == 0 or b + 1 == run.steps_per_epoch:
            rate = (p.step - last_step) * cfg.train.batch_size * run.world.size / (time.perf_counter() - last_time)
            record = train_record(run, batch, run.running, beta, grad_norm, rate)
            bar.set_postfix_str(f"β={record['beta']:.3g} rec={record['recon']:.1f} KL/dim={record['kl_dim_mean']:.2f}"
                                f" non-black={record['non_black_accuracy'] or 0:.1%}")
            run.running, last_time, last_step = zero_running(cfg.model.latent_dim, run.device), time.perf_counter(), p.step
        if step_checkpoint_due(cfg, p.step) and b + 1 < run.steps_per_epoch:  # epoch ends: end_of_epoch
            count_bad_step(run, pending)  # the checkpoint must hold this step's verdict too
            pending = None
            if run.world.main:
                ckpt.save_checkpoint(run.run_dir, p.step, checkpoint_payload(run), cfg.train.keep_checkpoints)
        # Under torchrun all processes must agree to stop at the same step (else collectives hang);
        # agreeing costs a sync, so they do it at log steps only.
        if (not run.world.active or p.step % cfg.train.log_every == 0) and any_across(
                run.stop_requested, run.world, run.device):
            run.stop_requested = True
            break
    if pending is not None:
        count_bad_step(run, pending)
    if p.batch_in_epoch == run.steps_per_epoch:
        p.epoch, p.batch_in_epoch = epoch + 1, 0


def step_checkpoint_due(cfg: Config, step: int) -> bool:
    return cfg.train.checkpoint_every_steps > 0 and step % cfg.train.checkpoint_every_steps == 0


def count_bad_step(run: Run, finite: torch.Tensor) -> None:
    p = run.progress
    if finite.item():
        p.bad_steps_in_row = 0
        return
    p.bad_steps_in_row += 1
    p.skipped_steps += 1
    if p.bad_steps_in_row >= run.cfg.train.max_bad_steps:
        raise NonFiniteError(f"{p.bad_steps_in_row} steps in a row had a non-finite loss or gradient; "
                             f"the last good checkpoint is kept")


class NonFiniteError(Exception):
    """Too many non-finite steps in a row: the run stops with status 'failed'."""


def train_record(run: Run, batch: torch.Tensor, running, beta, grad_norm, rate: float) -> dict:
    """A 'train' record: running means of the loss terms since the last log, accuracy on this batch at z = μ."""
    sum_across(running, run.world)  # steps are counted on every process, so this averages over them too
    n = max(running["steps"].item(), 1.0)
    out = decode_at_mean(run.net, batch, run.cfg, run.device)
    stats = new_stats(run.cfg.model.latent_dim, run.device)
    zero = torch.zeros((), device=run.device)  # the loss figures come from the running sums below
    add_batch(stats, out.logits, batch, out.mu, kl_per_sample_dim(out.mu, out.logvar),
              dict(loss=zero, recon=zero, kl=zero, kl_clamped=zero))
    figures = summarize(sum_across(stats, run.world), run.cfg.monitor.active_threshold)
    loss, recon, kl, kl_clamped = (running["terms"] / n).tolist()
    kl_per_dim = running["kl_per_dim"] / n
    figures.update(loss=loss, recon=recon, kl=kl, kl_clamped=kl_clamped,
                   kl_per_dim=[round(v, 5) for v in kl_per_dim.tolist()],
                   kl_dim_min=kl_per_dim.min().item(), kl_dim_mean=kl_per_dim.mean().item(),
                   kl_dim_max=kl_per_dim.max().item())
    record = make_record(run, "train", figures, beta)
    record.update(grad_norm=float(grad_norm), samples_per_s=rate, skipped_steps=run.progress.skipped_steps)
    run.log.log(record)
    return record


def make_record(run: Run, split: str, figures: dict, beta) -> dict:
    p = run.progress
    epoch = p.epoch if split == "val" else round(p.step / run.steps_per_epoch, 4)
    return {"split": split, "step": p.step, "epoch": epoch, "beta": float(beta),
            "lr": run.optimizer.param_groups[0]["lr"], **figures}


def end_of_epoch(run: Run) -> None:
    """Evaluate, watch for collapse, draw, checkpoint."""
    cfg, p = run.cfg, run.progress
    last = p.epoch == cfg.train.epochs
    if p.epoch % cfg.train.eval_every == 0 or last:
        grids = run.val if run.val is not None else run.train
        figures = evaluate(run.net, grids.pixels, float(run.beta()), run.options, cfg, run.device, run.world)
        record = make_record(run, "val" if run.val is not None else "train_eval", figures, run.beta())
        run.log.log(record)
        if run.world.main:
            say(console_line(record))
        watch_collapse(run, record)
        if run.world.main:
            draw(run, grids)
    if run.world.main and (p.epoch % cfg.train.checkpoint_every == 0 or last or step_checkpoint_due(cfg, p.step)):
        ckpt.save_checkpoint(run.run_dir, p.step, checkpoint_payload(run), cfg.train.keep_checkpoints)


def watch_collapse(run: Run, record: dict) -> None:
    """After warm-up: track the worst figures and raise the alarm the moment collapse shows."""
    p = run.progress
    if p.epoch < alarm_start(run.cfg.beta):
        return
    p.worst_kl_dim_mean = min(record["kl_dim_mean"], p.worst_kl_dim_mean if p.worst_kl_dim_mean is not None else math.inf)
    if record["non_black_accuracy"] is not None:
        p.worst_non_black = min(record["non_black_accuracy"], p.worst_non_black if p.worst_non_black is not None else math.inf)
    reasons = collapse_reasons(record, run.cfg.monitor)
    if reasons:
        p.collapse_events.append({"epoch": p.epoch, "step": p.step, "reasons": reasons})
        if run.world.main:
            say(f"warning: POSTERIOR COLLAPSE at epoch {p.epoch}: " + "; ".join(reasons))


def draw(run: Run, grids: Grids) -> None:
    n = min(run.cfg.monitor.n_recon_grids, len(grids))
    if n:
        batch = grids.pixels[:n].to(run.device)
        recon = decode_at_mean(run.net, batch, run.cfg, run.device).logits.argmax(1)  # (n, S, S)
        save_reconstructions(run.run_dir / "plots" / "reconstructions.png", batch.cpu().numpy(),
                             recon.cpu().numpy(), f"epoch {run.progress.epoch}: originals above reconstructions (z = μ)",
                             grids.sizes[:n].cpu().numpy())
    save_curves(run.run_dir)


def summary_of(run: Run, status: str, started: float, message: str | None = None) -> dict:
    """summary.json: the final figures, the worst seen after warm-up, the collapse record, status."""
    records = read_metrics(run.run_dir)
    final = [r for r in records if r["split"] in ("val", "train_eval")]
    last_train = [r for r in records if r["split"] == "train"]
    p = run.progress
    summary = {
        "status": status, "message": message,
        "schedule": run.cfg.beta.schedule, "epochs": p.epoch, "step": p.step,
        "beta": float(run.beta()),
        "final": final[-1] if final else None,
        "final_train": last_train[-1] if last_train else None,
        "worst_kl_dim_mean_after_warmup": p.worst_kl_dim_mean,
        "worst_non_black_accuracy_after_warmup": p.worst_non_black,
        "collapse_flagged": bool(p.collapse_events),
        "first_collapse_epoch": p.collapse_events[0]["epoch"] if p.collapse_events else None,
        "collapse_events": p.collapse_events,
        "skipped_steps": p.skipped_steps,
        "device": str(run.device), "wall_time_s": round(time.perf_counter() - started, 2),
    }
    # The contract's headline figures at the top level, taken from the final evaluation.
    source = summary["final"] or summary["final_train"] or {}
    for key in ("loss", "recon", "kl", "kl_clamped", "kl_per_dim", "kl_dim_min", "kl_dim_mean", "kl_dim_max",
                "active_units", "pixel_accuracy", "non_black_accuracy", "per_class_accuracy", "grid_accuracy"):
        summary[key] = source.get(key)
    write_json_atomic(run.run_dir / "summary.json", summary)
    return summary


def build_run(cfg: Config, run_dir: Path, recompute_weights: bool = False) -> Run:
    world = init_world(cfg.train.device)
    device = device_for(world, resolve_device(cfg.train.device))
    seed_everything(cfg.train.seed)
    train_grids, val_grids = load_datasets(cfg.data)
    if world.main:
        say(f"data: {len(train_grids)} training grids from {cfg.data.source}:{cfg.data.split}"
            f" ({train_grids.skipped} larger than {cfg.data.grid_size}x{cfg.data.grid_size} skipped), "
            + (f"{len(val_grids)} validation grids ({val_grids.skipped} skipped)" if val_grids else "no validation set")
            + (f"; {world.size} processes" if world.active else ""))
        for note in schedule_warnings(cfg.beta, cfg.train.epochs, cfg.loss.free_bits):
            say("warning: " + note)
    weights = load_class_weights(cfg, train_grids, recompute_weights) if world.main else None
    weights = weights.tensor(device) if weights else None
    if world.active and uses_class_weights(cfg.loss):  # computed (and cached) once, on rank 0; the others receive them
        weights = broadcast_from_main(weights if world.main else torch.empty(10, device=device), world)
    options = LossOptions.from_config(cfg.loss, weights)
    net = build_model(cfg).to(device)
    torch.manual_seed(cfg.train.seed + world.rank)  # each process its own reparameterisation noise
    model = torch.compile(net) if cfg.train.compile else net
    if world.active:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    controller = AdaptiveBeta.from_config(cfg.beta, device) if cfg.beta.schedule == "adaptive" else None
    steps = max(1, cfg.data.samples_per_epoch // (cfg.train.batch_size * world.size))
    return Run(cfg, run_dir, device, train_grids.to(device), val_grids, net, model, make_optimizer(net, cfg, cfg.train.lr),
               options, controller, NullLog(), Progress(), steps, world)


def train(cfg: Config, run_dir: Path, *, overwrite: bool = False, resume: bool = False, force: bool = False,
          recompute_weights: bool = False) -> dict:
    """Train per `cfg` into `run_dir` (or continue the run there); returns the summary."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    state = ckpt.load_latest(run_dir) if resume else None
    if state is not None:
        check_resume_config(cfg, state, force)
    else:
        refuse_existing_run(run_dir, overwrite)
    run = build_run(cfg, run_dir, recompute_weights)  # loads and validates the data before anything is written
    if state is not None:
        restore(run, state)
        if run.world.rank > 0:  # the checkpoint holds rank 0's RNG; the others need their own noise again
            torch.manual_seed(cfg.train.seed + run.world.rank + 1_000_003 * run.progress.step)
        dropped = ckpt.rewind_metrics(run_dir, run.progress.step) if run.world.main else 0
        if run.world.main:
            say(f"resumed {run_dir} at step {run.progress.step} (epoch {run.progress.epoch}, "
                f"batch {run.progress.batch_in_epoch})" + (f"; dropped {dropped} records logged after it" if dropped else ""))
    elif run.world.main:
        prepare_run_dir(run_dir, overwrite)
    if run.world.main:
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
        run.log = RunLog(run_dir)
    status, message = "completed", None
    with interruptible(run):
        try:
            bar = tqdm(total=cfg.train.epochs * run.steps_per_epoch, initial=run.progress.step, unit="step",
                       disable=not (cfg.train.progress and run.world.main) or None, dynamic_ncols=True)
            while run.progress.epoch < cfg.train.epochs and not run.stop_requested:
                train_epoch(run, run.progress.epoch, bar)
                if run.progress.batch_in_epoch == 0:
                    end_of_epoch(run)
                if run.progress.collapse_events and cfg.train.stop_on_collapse:
                    status, message = "collapsed", "stopped: train.stop_on_collapse is set"
                    break
            bar.close()
            if run.stop_requested:
                status, message = "interrupted", f"interrupted at step {run.progress.step}; resume with --resume {run_dir}"
                if run.world.main:
                    ckpt.save_checkpoint(run_dir, run.progress.step, checkpoint_payload(run), cfg.train.keep_checkpoints)
            elif status == "completed" and run.progress.collapse_events:
                status = "collapsed"
        except NonFiniteError as exc:
            status, message = "failed", str(exc)
            say(f"error: {exc}")
        finally:
            run.log.close()
    summary = summary_of(run, status, started, message) if run.world.main else {"status": status}
    barrier(run.world)  # leave together: a process group torn down under a peer still writing aborts it
    # Free DDP (its reducer may hold gloo work) before the group goes, not at interpreter exit, where
    # freeing it can abort the process (seen as a rare "terminate called without an active exception").
    run.model = run.net
    shutdown(run.world)
    return summary


def check_resume_config(cfg: Config, state: dict, force: bool) -> None:
    saved = load_config_text(state["config_yaml"])
    changed = diff_keys(saved, cfg)
    if changed and not force:
        raise ArcVaeError(f"cannot resume with a different config (changed: {', '.join(changed)}); "
                          f"use --force to resume anyway")


class interruptible:
    """SIGINT/SIGTERM ask the loop to stop after the current step (then checkpoint and summary);
    a second signal exits at once."""

    def __init__(self, run: Run):
        self.run = run

    def _handle(self, signum, frame):
        if self.run.stop_requested:
            raise SystemExit(130)
        self.run.stop_requested = True
        say("stopping after this step (press Ctrl-C again to quit at once)")

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        return False
