"""`--overfit-batch`: memorise one fixed batch, to prove the model and pipeline can learn at all.

The batch is drawn reproducibly from the training grids (unaugmented), preferring grids with
several colours so it cannot be passed by painting black. The loss is the configured one with the
class weights of the *whole* training set; β is `overfit.beta` (0 by default: this checks capacity).
Passing takes the target pixel accuracy AND every colour in the batch recalled: on ~95% black
padded grids, predicting black everywhere already scores ~95% pixel accuracy.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..canvas import N_COLOURS, Padding
from ..config import Config, OverfitConfig
from ..data.batches import Batch, canvases_of, model_input, take
from ..data.grids import Grids
from ..files import write_json_atomic
from .class_weights import pixel_counts
from .evaluation import decode_at_mean, evaluate, predicted_grids
from .loggers import RunLog
from .losses import LossOptions
from .precision import Precision
from .records import make_record
from .run import Pictures, open_folder, prepare_run_dir, refuse_existing_run, set_up
from .schedules import cosine_share
from .steps import make_optimizer, train_step
from .tracking import class_table, say


def pick_batch(grids: Grids, size: int, seed: int) -> torch.Tensor:
    """`size` grid indices, drawn with the seed from the grids that hold at least 3 colours."""
    present = [(grids.pixels == c).flatten(1).any(1) for c in range(N_COLOURS)]
    colours = torch.stack(present, 1).sum(1)  # (N,) colours in each grid
    pool = torch.nonzero(colours >= 3).flatten()
    if len(pool) < size:
        pool = torch.arange(len(grids))
    g = torch.Generator().manual_seed(seed)
    return pool[torch.randperm(len(pool), generator=g)[:size]].sort().values


def overfit_lr(it: int, cfg: OverfitConfig, floor: float) -> float:
    """Learning rate of iteration `it` (from 1): linear warm-up, then a cosine decay to floor·lr
    (`train.lr_floor`, as training's decay ends).

    The warm-up spares Adam's first, poorly estimated steps the full rate; the decay removes the
    late jitter that at a constant rate keeps knocking single colours below the recall bar.
    """
    if it <= cfg.warmup_iterations:
        return cfg.lr * it / cfg.warmup_iterations
    span = cfg.decay_iterations - cfg.warmup_iterations
    if span <= 0:
        return cfg.lr
    return cfg.lr * cosine_share((it - cfg.warmup_iterations) / span, floor)


def target_reached(figures: dict, cfg: OverfitConfig) -> bool:
    """Pixel accuracy at target AND every colour in the batch recalled: black-painting fails the
    second."""
    recalls = [a for a in figures["per_class_accuracy"] if a is not None]
    return figures["pixel_accuracy"] >= cfg.target_accuracy and min(recalls) >= cfg.min_class_recall


def progress_line(it: int, figures: dict) -> str:
    return (
        f"it {it:4d} loss {figures['loss']:8.2f} px {figures['pixel_accuracy']:6.1%} non-black "
        f"{figures['non_black_accuracy']:6.1%}  per colour: "
        + " ".join("  - " if a is None else f"{a:4.0%}" for a in figures["per_class_accuracy"])
    )


def announce(cfg: Config, train: Grids, picked: Grids, weights: torch.Tensor | None) -> None:
    """The check's setup, and the whole set's colours beside the batch's with the weights they
    get."""
    say(
        f"overfit: {len(picked)} grids from {len(train)} training grids (seed {cfg.train.seed}), "
        f"{cfg.overfit.iterations} iterations at most, target {cfg.overfit.target_accuracy:.0%} "
        f"pixel accuracy with every colour present >= {cfg.overfit.min_class_recall:.0%} recall"
    )
    say(
        class_table(
            pixel_counts(train, cfg.data.padding).tolist(),
            pixel_counts(picked, cfg.data.padding).tolist(),
            weights.tolist() if weights is not None else [1.0] * N_COLOURS,
        )
    )


def the_batch(train: Grids, cfg: Config, device: torch.device) -> tuple[Grids, Batch]:
    """The grids picked (as stored) and the batch trained on: all on the canvas of the largest among
    them."""
    chosen = pick_batch(train, cfg.overfit.batch_size, cfg.train.seed)
    picked = Grids(train.pixels[chosen], train.sizes[chosen])
    canvas = int(canvases_of(picked.sizes, cfg.data).max())
    grids, sizes = take(picked, torch.arange(len(picked)), canvas)
    return picked, model_input(grids.to(device), sizes.to(device), Padding(cfg.data.padding))


def train_on_batch(
    model, batch: Batch, cfg: Config, precision: Precision, options: LossOptions, log: RunLog
) -> tuple[int, int | None, dict]:
    """Up to `overfit.iterations` steps; (iterations run, first iteration at target or None, last
    figures).

    The figures are measured after every step until the target is first reached, so
    `iterations_to_target` is exact; after that (stop_at_target false) only every `log_every`.
    """
    optimizer = make_optimizer(model, cfg.train.weight_decay, cfg.overfit.lr)
    reached_at = None
    figures = {}
    it = 0
    for it in range(1, cfg.overfit.iterations + 1):
        train_step(
            model,
            optimizer,
            batch,
            cfg.overfit.beta,
            options,
            precision,
            cfg.train.grad_clip,
            overfit_lr(it, cfg.overfit, cfg.train.lr_floor),
        )
        due = it % cfg.overfit.log_every == 0 or it == cfg.overfit.iterations
        if not (due or reached_at is None):
            continue
        figures = evaluate(
            model, [batch], cfg.overfit.beta, options, precision, cfg.monitor.active_threshold
        )
        if reached_at is None and target_reached(figures, cfg.overfit):
            reached_at = it
        if due or reached_at == it:
            lr = optimizer.param_groups[0]["lr"]
            log.log(make_record("train", it, it, cfg.overfit.beta, lr, figures))
            say(progress_line(it, figures))
        if reached_at is not None and cfg.overfit.stop_at_target:
            break
    return it, reached_at, figures


def overfit_batch(
    cfg: Config,
    run_dir: Path,
    overwrite: bool = False,
    recompute_weights: bool = False,
    pictures: Pictures | None = None,
) -> dict:
    """Run the check into `run_dir`, drawing `pictures` at the end; returns summary.json's contents
    (`passed` decides the exit status)."""
    started = time.perf_counter()
    refuse_existing_run(Path(run_dir), overwrite)  # bad data must not leave a half-made run folder
    setup = set_up(cfg, recompute_weights)
    model = setup.net
    device = setup.device
    run_dir = prepare_run_dir(Path(run_dir), overwrite)
    picked, batch = the_batch(setup.train, cfg, device)
    announce(cfg, setup.train, picked, setup.options.class_weights)
    log = open_folder(run_dir, cfg)
    try:
        it, reached_at, figures = train_on_batch(
            model, batch, cfg, setup.precision, setup.options, log
        )
    finally:
        log.close()
    picture = None
    if pictures is not None:
        out = decode_at_mean(model, batch.grids, setup.precision)
        predicted = predicted_grids(out, batch.sizes)
        title = (
            f"overfit: iteration {it}, pixel accuracy {figures['pixel_accuracy']:.1%}: originals "
            "above reconstructions"
        )
        picture = pictures.overfit(run_dir, log.records, cfg, picked, predicted, title)
    passed = reached_at is not None
    summary = {
        **figures,
        "status": "completed",
        "iterations": it,
        "iterations_to_target": reached_at,
        "target_accuracy": cfg.overfit.target_accuracy,
        "min_class_recall": cfg.overfit.min_class_recall,
        "passed": passed,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "device": str(device),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    say(
        f"overfit {'PASSED' if passed else 'FAILED'}: pixel accuracy "
        f"{figures['pixel_accuracy']:.1%}, lowest colour recall "
        f"{min(a for a in figures['per_class_accuracy'] if a is not None):.1%} after {it} "
        "iterations ("
        + (f"target reached at {reached_at}" if passed else "target not reached")
        + ")"
        + (f"; picture: {picture}" if picture else "")
    )
    return summary
