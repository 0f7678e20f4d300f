"""`--overfit-batch`: memorise one fixed batch, to prove the model and pipeline can learn at all.

The batch is drawn reproducibly from the training grids (unaugmented), preferring grids with
several colours so it cannot be passed by painting black. The loss is the configured one with the
class weights of the *whole* training set; β is `overfit.beta` (0 by default: this checks capacity).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .class_weights import pixel_counts
from .config import Config, to_yaml
from .data import Grids
from .losses import kl_per_sample_dim
from .metrics import add_batch, new_stats, summarize
from .model import GridVAE
from .plots import save_curves, save_reconstructions
from .tracking import RunLog, class_table, say, write_json_atomic
from .trainer import (autocast, load_class_weights, loss_options, make_optimizer, prepare_run_dir,
                      resolve_device, seed_everything, train_step)
from .data import load_datasets


def pick_batch(grids: Grids, size: int, seed: int) -> torch.Tensor:
    """`size` grid indices, drawn with the seed from the grids that hold at least 3 colours."""
    colours = torch.stack([(grids.pixels == c).flatten(1).any(1) for c in range(10)], 1).sum(1)  # (N,)
    pool = torch.nonzero(colours >= 3).flatten()
    if len(pool) < size:
        pool = torch.arange(len(grids))
    g = torch.Generator().manual_seed(seed)
    return pool[torch.randperm(len(pool), generator=g)[:size]].sort().values


def overfit_batch(cfg: Config, run_dir: Path, overwrite: bool = False, recompute_weights: bool = False) -> dict:
    started = time.perf_counter()
    run_dir = prepare_run_dir(Path(run_dir), overwrite)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed)
    train_grids, _ = load_datasets(cfg.data)
    weights = load_class_weights(cfg, train_grids, recompute_weights)
    batch = train_grids.pixels[pick_batch(train_grids, cfg.overfit.batch_size, cfg.train.seed)].to(device)
    global_counts = pixel_counts(train_grids).tolist()
    say(f"overfit: {len(batch)} grids from {len(train_grids)} training grids (seed {cfg.train.seed}), "
        f"{cfg.overfit.iterations} iterations at most, target {cfg.overfit.target_accuracy:.0%}")
    say(class_table(global_counts, pixel_counts(Grids(batch, torch.empty(0))).tolist(),
                    weights.weights if weights else [1.0] * 10))

    model = GridVAE(cfg.model, cfg.data.grid_size).to(device)
    optimizer = make_optimizer(model, cfg, cfg.overfit.lr)
    options = loss_options(cfg, weights, device)
    log = RunLog(run_dir)
    reached_at, figures, it = None, {}, 0
    for it in range(1, cfg.overfit.iterations + 1):
        parts, _, _ = train_step(model, optimizer, batch, cfg.overfit.beta, options, cfg, device)
        if it % cfg.overfit.log_every == 0 or it == cfg.overfit.iterations or reached_at is None:
            figures = measure(model, batch, cfg, device, options)
            if reached_at is None and target_reached(figures, cfg):
                reached_at = it
            if it % cfg.overfit.log_every == 0 or reached_at == it:
                log.log({"split": "train", "step": it, "epoch": it, "beta": cfg.overfit.beta, **figures})
                say(f"it {it:4d} loss {figures['loss']:8.2f} px {figures['pixel_accuracy']:6.1%} "
                    f"non-black {figures['non_black_accuracy']:6.1%}  per colour: "
                    + " ".join("  - " if a is None else f"{a:4.0%}" for a in figures["per_class_accuracy"]))
            if reached_at is not None and cfg.overfit.stop_at_target:
                break
    log.close()
    with torch.no_grad():
        recon = model(batch, sample=False).logits.argmax(1)
    save_reconstructions(run_dir / "plots" / "overfit_reconstructions.png", batch.cpu().numpy(), recon.cpu().numpy(),
                         f"overfit: iteration {it}, pixel accuracy {figures['pixel_accuracy']:.1%}")
    save_curves(run_dir)
    passed = reached_at is not None
    summary = {**figures, "status": "completed", "iterations": it, "iterations_to_target": reached_at,
               "target_accuracy": cfg.overfit.target_accuracy, "passed": passed,
               "wall_time_s": round(time.perf_counter() - started, 2), "device": str(device)}
    write_json_atomic(run_dir / "summary.json", summary)
    say(f"overfit {'PASSED' if passed else 'FAILED'}: pixel accuracy {figures['pixel_accuracy']:.1%} after {it} "
        f"iterations (target {cfg.overfit.target_accuracy:.0%} " + (f"reached at {reached_at})" if passed else "not reached)")
        + f"; picture: {run_dir / 'plots' / 'overfit_reconstructions.png'}")
    return summary


def target_reached(figures: dict, cfg: Config) -> bool:
    """Pixel accuracy at target AND every colour in the batch recalled: black-painting fails the second."""
    recalls = [a for a in figures["per_class_accuracy"] if a is not None]
    return figures["pixel_accuracy"] >= cfg.overfit.target_accuracy and min(recalls) >= cfg.overfit.min_class_recall


@torch.no_grad()
def measure(model, batch, cfg: Config, device, options) -> dict:
    """Figures on the batch at z = μ."""
    from .losses import elbo
    model.eval()
    with autocast(cfg, device):
        out = model(batch, sample=False)
    model.train()
    parts = elbo(out.logits, batch, out.mu, out.logvar, cfg.overfit.beta, **options)
    stats = new_stats(cfg.model.latent_dim, device)
    add_batch(stats, out.logits, batch, out.mu, kl_per_sample_dim(out.mu, out.logvar), vars(parts))
    return summarize(stats, cfg.monitor.active_threshold)
