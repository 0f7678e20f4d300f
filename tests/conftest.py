"""Shared test helpers: small, fast configurations on the real ARC data."""
from __future__ import annotations

from pathlib import Path

import pytest

from arcvae.config import Config
from arcvae.config_io import load_config

ROOT = Path(__file__).resolve().parents[1]

# Grids up to 10x10, a narrow model, tiny epochs: a training run takes a few seconds on CPU.
TINY = [
    "data.grid_size=10", "data.samples_per_epoch=256", "data.val_limit=64",
    "model.latent_dim=8", "model.embed_dim=8", "model.channels=[16,32]",
    "train.epochs=2", "train.batch_size=32", "train.log_every=4", "train.progress=false",
]


@pytest.fixture
def tiny_config(tmp_path):
    """A factory: tiny_config('beta.schedule=cyclical', ...) -> Config, caching under tmp_path."""
    def make(*overrides: str) -> Config:
        return load_config(None, TINY + [f"data.cache_dir={tmp_path / 'cache'}", *overrides])
    return make
