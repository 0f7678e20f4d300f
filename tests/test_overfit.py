"""`--overfit-batch`: the run folder and exit status, the batch rule, and the black-painting failure
mode."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import TINY, assert_picture

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.training.overfit import overfit_lr, pick_batch
from arcvae.training.records import read_metrics

# Padded to 30x30 as in real training (~95% black), four grids, TINY's narrow model: a fast check.
FULL_PADDING = ["data.grid_size=30", "overfit.batch_size=4"]
# TINY's 10x10 grids, eight of them: the narrow model memorises them in ~130 iterations.
SMALL_BATCH = ["overfit.batch_size=8"]
# One iteration on two grids: a run that fails fast (the 32-grid picture alone takes seconds to
# draw).
ONE_STEP = ["overfit.iterations=1", "overfit.batch_size=2"]


def overfit(tmp_path, *overrides: str) -> tuple[int, dict, list[dict]]:
    """Run `train_vae.py --overfit-batch` in-process: (exit status, summary.json, metrics.jsonl
    records)."""
    out = tmp_path / "run"
    code = main(
        [
            "--overfit-batch",
            "--out",
            str(out),
            "--overwrite",
            *TINY,
            f"data.cache_dir={tmp_path / 'cache'}",
            *overrides,
        ]
    )
    return code, json.loads((out / "summary.json").read_text()), read_metrics(out)


@pytest.fixture(scope="module")
def arc_grids():
    return pad_grids(load_arc_grids("arc1", "training"), 30)


def test_the_batch_is_reproducible_and_holds_several_colours(arc_grids):
    picked = pick_batch(arc_grids, 32, seed=0)
    assert torch.equal(picked, pick_batch(arc_grids, 32, seed=0))
    assert not torch.equal(picked, pick_batch(arc_grids, 32, seed=1))
    assert len(picked.unique()) == 32
    colours_per_grid = [len(arc_grids.pixels[i].unique()) for i in picked]
    assert min(colours_per_grid) >= 3  # black plus at least two colours: painting black cannot pass


def test_a_batch_larger_than_the_colourful_pool_falls_back_to_all_grids(arc_grids):
    assert len(pick_batch(arc_grids, len(arc_grids), seed=0)) == len(arc_grids)


def test_lr_warms_up_then_decays_to_its_floor():
    cfg = load_config(
        None,
        [
            "overfit.lr=0.01",
            "overfit.warmup_iterations=10",
            "overfit.decay_iterations=100",
            "train.lr_floor=0.2",
        ],
    )
    lrs = [overfit_lr(it, cfg.overfit, cfg.train.lr_floor) for it in range(1, 200)]
    assert lrs[0] == pytest.approx(0.001) and max(lrs) == pytest.approx(0.01) == lrs[9]
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # never rises after the warm-up
    assert lrs[99] == pytest.approx(0.01 * 0.2) and lrs[-1] == pytest.approx(0.01 * 0.2)
    assert all(math.isfinite(lr) and lr > 0 for lr in lrs)


@pytest.mark.parametrize("warmup, decay", [(0, 0), (0, 50), (20, 20), (20, 0)])
def test_lr_without_warm_up_or_decay_is_flat_there(warmup, decay):
    cfg = load_config(
        None,
        [
            "overfit.lr=0.01",
            f"overfit.warmup_iterations={warmup}",
            f"overfit.decay_iterations={decay}",
        ],
    )
    lrs = [overfit_lr(it, cfg.overfit, cfg.train.lr_floor) for it in range(1, 100)]
    assert max(lrs) == pytest.approx(0.01, rel=1e-3) and lrs[-1] >= 0.01 * cfg.train.lr_floor
    if decay <= warmup:
        assert lrs[warmup:] == [0.01] * (99 - warmup)


@pytest.mark.slow
def test_defaults_pass_and_write_the_run_folder(tmp_path):
    """The configured loss and overfit schedule (weighted cross-entropy, inverse weights from the
    whole training set, warm-up and decay) memorise the batch; only the model and grid are shrunk,
    for speed."""
    code, summary, records = overfit(tmp_path, *SMALL_BATCH)
    assert code == 0
    for key in (
        "status",
        "iterations",
        "iterations_to_target",
        "passed",
        "target_accuracy",
        "pixel_accuracy",
        "non_black_accuracy",
        "per_class_accuracy",
        "grid_accuracy",
        "kl",
        "recon",
        "loss",
        "wall_time_s",
    ):
        assert key in summary, key
    assert summary["status"] == "completed" and summary["passed"] is True
    assert summary["iterations"] == summary["iterations_to_target"] <= 500  # stop_at_target
    assert summary["pixel_accuracy"] >= 0.95
    recalls = [a for a in summary["per_class_accuracy"] if a is not None]
    assert len(summary["per_class_accuracy"]) == 10 and min(recalls) >= 0.80
    run = tmp_path / "run"
    assert_picture(run / "plots" / "overfit_reconstructions.png")
    assert (run / "config.yaml").exists()
    assert records and all(
        r["split"] == "train" and len(r["per_class_accuracy"]) == 10 for r in records
    )
    assert records[-1]["step"] == summary["iterations_to_target"]


@pytest.mark.slow
def test_a_missed_target_exits_1_with_the_summary_saying_so(tmp_path):
    code, summary, _ = overfit(tmp_path, *ONE_STEP)
    assert code == 1
    assert summary["passed"] is False and summary["iterations_to_target"] is None
    assert summary["iterations"] == 1
    assert_picture(tmp_path / "run" / "plots" / "overfit_reconstructions.png")


@pytest.mark.slow
def test_plain_ce_without_weights_paints_black_and_pixel_accuracy_alone_would_pass_it(tmp_path):
    """The failure mode the check exists for.

    With plain cross-entropy and no class weights, ~95% of the padded batch is black, so within a
    few iterations the model predicts black everywhere: pixel accuracy (over the grids' own pixels)
    climbs to the black share of the batch, ~80%, while every non-black colour's recall is 0. A
    check on pixel accuracy alone would call that a pass; `overfit.min_class_recall` (every colour
    present recalled) is what makes it fail. (Every loss passes through this phase for a few
    iterations; the weighted default is what leaves it, see
    test_defaults_pass_and_write_the_run_folder and docs/overfit.md for full-size figures.)
    """
    ce = [
        *FULL_PADDING,
        "loss.recon=ce",
        "loss.class_weights=none",
        "overfit.iterations=15",
        "overfit.log_every=1",
        "overfit.target_accuracy=0.75",
    ]
    code, summary, records = overfit(tmp_path, *ce)
    painted = [
        r for r in records if r["per_class_accuracy"][0] == 1.0 and r["non_black_accuracy"] < 0.05
    ]
    assert painted, [(r["pixel_accuracy"], r["non_black_accuracy"]) for r in records]
    assert painted[0]["pixel_accuracy"] > 0.75
    assert all(a == 0 for a in painted[0]["per_class_accuracy"][1:] if a is not None)
    assert code == 1 and summary["passed"] is False
    code, summary, _ = overfit(tmp_path, *ce, "overfit.min_class_recall=0")
    assert code == 0 and summary["non_black_accuracy"] < 0.05  # "passed" by painting black


@pytest.mark.slow
def test_no_cache_writes_no_class_weight_file(tmp_path):
    code, _, _ = overfit(tmp_path, *ONE_STEP, "--no-cache")
    assert code == 1
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_the_overfit_run_caches_the_global_weights_and_reuses_them(tmp_path, capsys):
    weighted = [*ONE_STEP, "loss.recon=weighted_ce"]  # the default, plain ce, has no weights
    overfit(tmp_path, *weighted)
    assert "computed over" in capsys.readouterr().out
    overfit(tmp_path, *weighted)
    assert "loaded from cache over" in capsys.readouterr().out
    overfit(tmp_path, *weighted, "--recompute-class-weights")
    assert "computed over" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("class_weights_*.json"))) == 1
