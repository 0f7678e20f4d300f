"""The fast path's switches on CPU: bf16 autocast and torch.compile train and checkpoint correctly."""
from __future__ import annotations

import json

import pytest
import torch

from arcvae.checkpoint import list_checkpoints, load_checkpoint
from arcvae.model import build_model
from arcvae.trainer import train


def first_loss(run_dir) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return next(r["loss"] for r in records if r["split"] == "train")


def test_bf16_autocast_trains_close_to_fp32(tiny_config, tmp_path):
    settings = ("train.epochs=1", "train.log_every=1")
    fp32 = train(tiny_config(*settings, "train.precision=fp32"), tmp_path / "fp32")
    bf16 = train(tiny_config(*settings, "train.precision=bf16"), tmp_path / "bf16")
    assert fp32["status"] != "failed" and bf16["status"] != "failed" and bf16["skipped_steps"] == 0
    # Same seed, same first batch: bf16 rounding alone moves the first loss by well under 2%.
    assert first_loss(tmp_path / "bf16") == pytest.approx(first_loss(tmp_path / "fp32"), rel=0.02)


def test_compiled_model_checkpoints_the_bare_weights(tiny_config, tmp_path):
    cfg = tiny_config("train.epochs=1", "train.compile=true")
    assert train(cfg, tmp_path / "run")["status"] != "failed"
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])["model"]
    assert not any(key.startswith("_orig_mod") for key in state)  # loadable without torch.compile
    build_model(cfg).load_state_dict(state)
    assert all(torch.isfinite(v).all() for v in state.values())
