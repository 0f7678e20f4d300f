"""Training steps: a non-finite loss skips the update (weights and optimizer state untouched) and
stays out of the running means."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import final_weights, nan_loss_on_calls

from arcvae.data.batches import epoch_plan, make_batch
from arcvae.training import trainer
from arcvae.training.records import read_metrics
from arcvae.training.run import set_up
from arcvae.training.steps import make_optimizer, train_step


@pytest.mark.slow
def test_nan_steps_are_skipped_and_counted(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config("train.max_bad_steps=3")
    nan_loss_on_calls(monkeypatch, {3, 4, 9, 10})  # two short bursts, each under the limit
    summary = trainer.train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["skipped_steps"] == 4
    weights = final_weights(tmp_path / "run")
    assert all(torch.isfinite(w).all() for w in weights.values())
    records = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert all(math.isfinite(r["loss"]) for r in records)  # skipped steps kept out of the means
    assert records[-1]["skipped_steps"] == 4


def test_a_non_finite_step_leaves_every_weight_and_the_optimizer_state_bit_identical(tiny_config):
    """β = inf makes the loss inf and every gradient non-finite: the step must change nothing, not
    the weights, not AdamW's exp_avg, exp_avg_sq or step count (its weight decay included)."""
    cfg = tiny_config("data.val_source=none")
    setup = set_up(cfg)
    optimizer = make_optimizer(setup.net, cfg.train.weight_decay, cfg.train.lr)
    plan = epoch_plan(setup.train, cfg, 0, cfg.data.samples_per_epoch // cfg.train.batch_size)
    first, second = (make_batch(setup.train, plan, cfg, 0, b) for b in range(2))

    def step(batch, beta):
        return train_step(
            setup.net, optimizer, batch, beta, setup.options, setup.precision, cfg.train.grad_clip
        )

    _, _, finite = step(first, 0.1)  # a real step first, so AdamW holds a non-zero state
    assert finite.item()
    weights = {name: p.detach().clone() for name, p in setup.net.named_parameters()}
    state = copy.deepcopy(optimizer.state_dict()["state"])
    assert state and all(s["step"].item() == 1 for s in state.values())

    parts, grad_norm, finite = step(second, float("inf"))
    assert not finite.item() and not math.isfinite(parts.loss.item())
    for name, p in setup.net.named_parameters():
        assert torch.equal(p.detach(), weights[name]), f"{name} changed on a skipped step"
    after = optimizer.state_dict()["state"]
    assert after.keys() == state.keys()
    for index, saved in state.items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(after[index][key], saved[key]), (index, key)

    _, _, finite = step(second, 0.1)  # and the next finite step trains as usual
    assert finite.item()
    assert all(s["step"].item() == 2 for s in optimizer.state_dict()["state"].values())
