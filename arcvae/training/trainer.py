"""The training loop. Read `train` top to bottom: set up, then epochs of steps, an evaluation per
`eval_every` epochs (figures, collapse alarm, pictures, checkpoint), then the summary.

Data lives on the device; a step is one batch built by indexing and augmenting there. Figures are
summed on the device and read back only when logged.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..config import Config
from ..data.batches import Batch, epoch_plan, grid_batches, make_batch
from . import checkpoint as ckpt
from .distributed import any_across, barrier, mean_across, shutdown, sum_across
from .evaluation import decode_at_mean, evaluate
from .metrics import (
    accuracy_figures,
    add_accuracy,
    alarm_start,
    collapse_reasons,
    loss_figures,
    new_stats,
)
from .records import make_record
from .run import (
    Pictures,
    Run,
    check_resume_config,
    refuse_existing_run,
    save,
    say_free_bits,
    set_up,
    start,
    warn_about_schedule,
    write_summary,
)
from .schedules import AdaptiveBeta
from .steps import add_running, make_optimizer, new_running, train_step
from .threads import SpeedWatch, threads_kept
from .tracking import console_line, expected_time, say


class NonFiniteError(Exception):
    """Too many non-finite steps in a row: the run stops with status 'failed'."""


@threads_kept()  # train.threads and the auto switch change the process's torch threads
def train(
    cfg: Config,
    run_dir: Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    force: bool = False,
    recompute_weights: bool = False,
    pictures: Pictures | None = None,
) -> dict:
    """Train per `cfg` into `run_dir` (or continue the run there), drawing `pictures` after each
    evaluation; returns the summary."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    state = ckpt.load_latest(run_dir) if resume else None
    if state is not None:
        check_resume_config(cfg, state, force)
    else:
        refuse_existing_run(run_dir, overwrite)
    # loads and validates the data before anything is written
    run = build_run(cfg, run_dir, recompute_weights)
    run.pictures = pictures
    start(run, state, overwrite)
    status = "completed"
    message = None
    with interruptible(run):
        try:
            status, message = run_epochs(run)
        except NonFiniteError as exc:
            status = "failed"
            message = str(exc)
            say(f"error: {exc}")
        finally:
            run.log.close()
    summary = write_summary(run, status, started, message) if run.world.main else {"status": status}
    # leave together: a process group torn down under a peer still writing aborts it
    barrier(run.world)
    # Free DDP (its reducer may hold gloo work) before the group goes, not at interpreter exit,
    # where freeing it can abort the process (seen as a rare "terminate called without an active
    # exception").
    run.model = run.net
    shutdown(run.world)
    return summary


def build_run(cfg: Config, run_dir: Path, recompute_weights: bool = False) -> Run:
    setup = set_up(cfg, recompute_weights)
    warn_about_schedule(cfg, setup.world)
    say_free_bits(cfg, setup.world)
    setup.train = setup.train.to(setup.device)
    # each process its own reparameterisation noise
    torch.manual_seed(cfg.train.seed + setup.world.rank)
    # One graph per size bucket: inductor (torch 2.13, CPU) fails on channels_last strides with
    # symbolic sizes.
    model = torch.compile(setup.net, dynamic=False) if cfg.train.compile else setup.net
    if setup.world.active:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[setup.device.index] if setup.device.type == "cuda" else None
        )
    controller = (
        AdaptiveBeta.from_config(cfg.beta, setup.device)
        if cfg.beta.schedule == "adaptive"
        else None
    )
    steps = max(1, cfg.data.samples_per_epoch // (cfg.train.batch_size * setup.world.size))
    return Run(
        cfg,
        run_dir,
        setup,
        model,
        make_optimizer(setup.net, cfg.train.weight_decay, cfg.train.lr),
        controller,
        steps,
        SpeedWatch(cfg.train.threads, setup.device.type),
    )


def run_epochs(run: Run) -> tuple[str, str | None]:
    """Epochs until done, stopped or collapsed (with train.stop_on_collapse); returns (status,
    message)."""
    cfg = run.cfg
    p = run.progress
    bar = tqdm(
        total=cfg.train.epochs * run.steps_per_epoch,
        initial=p.step,
        unit="step",
        disable=not (cfg.train.progress and run.world.main) or None,
        dynamic_ncols=True,
    )
    while run.progress.epoch < cfg.train.epochs and not run.stop_requested:
        train_epoch(run, run.progress.epoch, bar)
        if run.progress.batch_in_epoch == 0:
            end_of_epoch(run)
        if run.progress.collapse_events and cfg.train.stop_on_collapse:
            bar.close()
            return "collapsed", "stopped: train.stop_on_collapse is set"
    bar.close()
    if run.stop_requested:
        save(run)
        return (
            "interrupted",
            f"interrupted at step {run.progress.step}; resume with --resume {run.run_dir}",
        )
    return run.progress.end_status(), None


def train_epoch(run: Run, epoch: int, bar: tqdm) -> None:
    """The steps of one epoch (from where a resumed run left off), logging every `log_every`
    steps."""
    cfg = run.cfg
    p = run.progress
    plan = epoch_plan(run.setup.train, cfg, epoch, run.steps_per_epoch * run.world.size)
    if p.running is None:  # else a run resumed mid-epoch: the sums since its last record
        p.running = new_running(run.net.latent_dim, run.device)
    last_time = time.perf_counter()
    last_step = p.step
    # the previous step's finite flag, read one step late so the device queue never drains
    pending = None
    for b in range(p.batch_in_epoch, run.steps_per_epoch):
        batch = make_batch(run.setup.train, plan, cfg, epoch, b, run.world.rank, run.world.size)
        beta = run.beta()
        parts, grad_norm, finite = train_step(
            run.model,
            run.optimizer,
            batch,
            beta,
            run.setup.options,
            run.setup.precision,
            cfg.train.grad_clip,
            run.lr(),
        )
        if run.controller is not None:
            run.controller.update(mean_across(parts.kl_dim_mean().detach(), run.world))
        add_running(p.running, parts, finite)
        if pending is not None:
            count_bad_step(run, pending)
        pending = finite
        p.took_step(b)
        bar.update(1)
        if p.step % cfg.train.log_every == 0 or b + 1 == run.steps_per_epoch:
            rate = (
                (p.step - last_step)
                * cfg.train.batch_size
                * run.world.size
                / (time.perf_counter() - last_time)
            )
            # a window cut short by the epoch's end may hold only large canvases
            if p.step - last_step >= min(cfg.train.log_every, run.steps_per_epoch):
                watch_speed(run, rate)
            log_train(run, batch, beta, grad_norm, rate, bar)
            # The first window also pays for start-up (allocations, first kernels), so the line
            # times the second; a run with no second window, its first.
            steps_left = cfg.train.epochs * run.steps_per_epoch - p.step
            if not run.timed and run.world.main and (last_step > 0 or steps_left == 0):
                run.timed = True
                say(
                    expected_time(
                        steps_left * cfg.train.batch_size * run.world.size,
                        rate,
                        (last_step + 1, p.step),
                        cfg.train.epochs // cfg.train.eval_every,
                    )
                )
            p.running = new_running(run.net.latent_dim, run.device)
            last_time = time.perf_counter()
            last_step = p.step
        # epoch ends: end_of_epoch
        if step_checkpoint_due(cfg, p.step) and b + 1 < run.steps_per_epoch:
            count_bad_step(run, pending)  # the checkpoint must hold this step's verdict too
            pending = None
            save(run)
        if stop_agreed(run):
            break
    if pending is not None:
        count_bad_step(run, pending)
    if p.batch_in_epoch == run.steps_per_epoch:
        p.finished_epoch()


def watch_speed(run: Run, rate: float) -> None:
    """A slowdown (`threads.SpeedWatch`): one warning, and a `slowdown` record (before the window's
    `train` record) that summary.json lists too."""
    slowdown = run.speed.window(run.progress.step, rate)
    if slowdown is None or not run.world.main:
        return
    record = run_record(run, "slowdown", slowdown.record(), run.beta())
    run.progress.slowdowns.append(record)
    run.log.log(record)
    say(slowdown.warning())


def stop_agreed(run: Run) -> bool:
    """Under torchrun all processes stop at one step (else collectives hang); agreeing is a sync:
    log steps only."""
    if run.world.active and run.progress.step % run.cfg.train.log_every:
        return False
    run.stop_requested = any_across(run.stop_requested, run.world, run.device)
    return run.stop_requested


def step_checkpoint_due(cfg: Config, step: int) -> bool:
    return cfg.train.checkpoint_every_steps > 0 and step % cfg.train.checkpoint_every_steps == 0


def count_bad_step(run: Run, finite: torch.Tensor) -> None:
    in_a_row = run.progress.count_step(bool(finite.item()))
    if in_a_row >= run.cfg.train.max_bad_steps:
        raise NonFiniteError(
            f"{in_a_row} steps in a row had a non-finite loss or gradient; the last good "
            "checkpoint is kept"
        )


def log_train(run: Run, batch: Batch, beta, grad_norm, rate: float, bar: tqdm) -> None:
    """A 'train' record: running means of the loss terms since the last log, accuracy on this batch
    at z = μ."""
    # steps are counted on every process, so this averages over them too
    sum_across(run.progress.running, run.world)
    out = decode_at_mean(run.net, batch.grids, run.setup.precision)
    stats = new_stats(run.net.latent_dim, run.device)
    add_accuracy(stats, out.logits, batch.grids, batch.sizes, out.mu, out.size_logits, out.reached)
    figures = {
        **loss_figures({k: v.cpu() for k, v in run.progress.running.items()}),
        **accuracy_figures(
            {k: v.cpu() for k, v in sum_across(stats, run.world).items()},
            run.cfg.monitor.active_threshold,
        ),
    }
    record = run_record(run, "train", figures, beta)
    record.update(
        grad_norm=float(grad_norm), samples_per_s=rate, skipped_steps=run.progress.skipped_steps
    )
    run.log.log(record)
    bar.set_postfix_str(
        f"β={record['beta']:.3g} rec={record['recon']:.1f} KL/dim={record['kl_dim_mean']:.2f} "
        f"non-black={record['non_black_accuracy'] or 0:.1%}"
    )


def run_record(run: Run, split: str, figures: dict, beta) -> dict:
    """A record at the run's current step; an evaluation's epoch is whole, a train record's the
    share of epochs done."""
    p = run.progress
    epoch = p.epoch if split == "val" else round(p.step / run.steps_per_epoch, 4)
    return make_record(split, p.step, epoch, beta, run.optimizer.param_groups[0]["lr"], figures)


def end_of_epoch(run: Run) -> None:
    """Evaluate, watch for collapse, draw, checkpoint."""
    cfg = run.cfg
    p = run.progress
    last = p.epoch == cfg.train.epochs
    if p.epoch % cfg.train.eval_every == 0 or last:
        grids = run.setup.val if run.setup.val is not None else run.setup.train
        batches = (batch for _, batch in grid_batches(grids, cfg, cfg.train.batch_size))
        figures = evaluate(
            run.net,
            batches,
            float(run.beta()),
            run.setup.options,
            run.setup.precision,
            cfg.monitor.active_threshold,
            run.world,
        )
        record = run_record(
            run, "val" if run.setup.val is not None else "train_eval", figures, run.beta()
        )
        run.log.log(record)
        if run.world.main:
            say(console_line(record))
        watch_collapse(run, record)
        if run.world.main and run.pictures is not None:
            run.pictures.evaluation(run, grids)
    if p.epoch % cfg.train.checkpoint_every == 0 or last or step_checkpoint_due(cfg, p.step):
        save(run)


def watch_collapse(run: Run, record: dict) -> None:
    """After warm-up: track the worst figures, raise the alarm the moment collapse shows and say
    when it clears."""
    p = run.progress
    if p.epoch < alarm_start(run.cfg.beta):
        return
    was_collapsed = p.collapsed_now
    reasons = collapse_reasons(record, run.cfg.monitor, getattr(run.net, "dim_names", None))
    p.note_evaluation(record, reasons)
    if not run.world.main:
        return
    if reasons:
        say(f"warning: POSTERIOR COLLAPSE at epoch {p.epoch}: " + "; ".join(reasons))
    elif was_collapsed:
        say(f"collapse alarm cleared at epoch {p.epoch}: every figure is above its floor again")


class interruptible:
    """SIGINT/SIGTERM stop the loop after this step (then checkpoint and summary); a second one
    exits at once."""

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
