"""Training steps: a non-finite loss skips the update and stays out of the running means."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import final_weights, nan_loss_on_calls

from arcvae import trainer
from arcvae.tracking import read_metrics


@pytest.mark.usefixtures("no_pictures")
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
