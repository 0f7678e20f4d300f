"""Shared test helpers: small, fast configurations on the real ARC data, hand-computed figures, and
the faults the training tests inject (a SIGINT at a chosen step, a NaN loss on chosen steps)."""

from __future__ import annotations

import signal
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arcvae.commands.cli import main
from arcvae.config import Config
from arcvae.config_io import load_config
from arcvae.models.build import build_model
from arcvae.models.slots import AFFINE, PARTS
from arcvae.training import checkpoint as ckpt
from arcvae.training import steps, trainer
from arcvae.training.losses import LossBreakdown
from arcvae.training.metrics import add_batch, new_stats, summarize

ROOT = Path(__file__).resolve().parents[1]

# Grids up to 10x10, a narrow model, tiny epochs: a training run takes a few seconds on CPU.
TINY = [
    "data.grid_size=10",
    "data.samples_per_epoch=256",
    "data.val_limit=64",
    "model.latent_dim=8",
    "model.cell_dims=0",
    "model.embed_dim=8",
    "model.channels=[16,32]",
    "train.epochs=2",
    "train.batch_size=32",
    "train.log_every=4",
    "train.progress=false",
    # β stays 0 for the 2 epochs (the collapse alarm unarmed): a tiny model is not the default
    # recipe, and a test that wants β, a schedule or the alarm sets them itself.
    "beta.warmup_epochs=5",
    "beta.ramp_epochs=20",
]


@pytest.fixture(autouse=True)
def one_thread_for_unit_tests(request):
    """Unit tests (those not marked slow) run torch on one thread: their tensors are small, and on a
    shared CPU torch's threads waiting on each other cost several times what they give. Pipeline
    tests keep the default, as a user's run does (their subprocesses set OMP_NUM_THREADS=1)."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def tiny_config(tmp_path):
    """A factory: tiny_config('beta.schedule=cyclical', ...) -> Config, caching under tmp_path."""

    def make(*overrides: str) -> Config:
        return load_config(None, TINY + [f"data.cache_dir={tmp_path / 'cache'}", *overrides])

    return make


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    """Bad input's contract: exit 2 and one line on stderr, `error: ...`, holding each of
    `words`."""
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)


def assert_picture(path: Path, min_width: int = 64, min_height: int = 64) -> np.ndarray:
    """A PNG that opens as an RGB(A) image of at least that size with more than two colours in it:
    something was drawn, it is not a blank page. Returns the pixels (H, W, 3 or 4)."""
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4), (path, pixels.shape)
    assert pixels.shape[0] >= min_height and pixels.shape[1] >= min_width, (path, pixels.shape)
    colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 2, f"{path} is blank: {len(colours)} colour(s)"
    return pixels


def final_weights(run_dir: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir)[-1])["model"]


REAL_STEP = trainer.train_step


def sigint_at_call(monkeypatch, call: int) -> None:
    """Raise a real SIGINT inside training step number `call` (1-based), as a user's Ctrl-C
    would."""
    real, calls = REAL_STEP, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", step)


def nan_loss_on_calls(monkeypatch, calls: set[int]) -> None:
    """Make the training loss NaN on the chosen step calls (1-based), the way an overflow would."""
    real, seen = steps.elbo, []

    def elbo(*args, **kwargs):
        parts = real(*args, **kwargs)
        if torch.is_grad_enabled():  # training steps only, not evaluation
            seen.append(1)
            if len(seen) in calls:
                parts.loss = parts.loss * float("nan")
        return parts

    monkeypatch.setattr(steps, "elbo", elbo)


def logits_for(pred: torch.Tensor) -> torch.Tensor:
    """Logits (B, 10, S, S) whose argmax is `pred` (B, S, S)."""
    return F.one_hot(pred, 10).permute(0, 3, 1, 2).float() * 5


def hand_stats() -> dict:
    target = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [3, 3]]])
    pred = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [3, 3]]])  # grid 0: one blue pixel read as red
    # Per dim over the 2 samples: Var(μ_0) = 1, Var(μ_1) = 0.07² = 0.0049 (< 0.01), Var(μ_2) = 0.25.
    mu = torch.tensor([[1.0, 0.30, 0.5], [-1.0, 0.16, -0.5]])
    kl = torch.tensor([[0.2, 0.0, 1.0], [0.4, 0.02, 3.0]])
    losses = LossBreakdown(
        loss=torch.tensor(10.0),
        recon=torch.tensor(8.0),
        shape=torch.tensor(0.0),
        kl=torch.tensor(2.2),
        kl_clamped=torch.tensor(2.5),
        kl_per_dim=kl.mean(0),
        reached=torch.ones(3),
    )
    stats = new_stats(3, "cpu")
    add_batch(
        stats,
        logits_for(pred),
        target.to(torch.uint8),
        torch.tensor([[2, 2], [2, 2]]),
        mu,
        kl,
        losses,
    )
    return summarize(stats, active_threshold=0.01)


# 3 epochs of 8 steps, a checkpoint every 3 steps: interruptions land mid-epoch and between
# checkpoints. A number of threads, not auto: auto's switch when the machine turns busy (a
# wall-clock event) could change the order of the sums between the runs compared bit for bit.
RESUMABLE = [
    "train.epochs=3",
    "train.checkpoint_every_steps=3",
    "train.keep_checkpoints=3",
    f"train.threads={torch.get_num_threads()}",
]


# ---------------------------------------------------------------- slot models

SLOTS = ["model.arch=slots", "data.padding=black", "data.grid_size=16", "data.source=atoms"]


def slot_model(*overrides: str):
    torch.manual_seed(0)
    return build_model(load_config(None, [*SLOTS, *overrides])).eval()


class FullBox(torch.nn.Module):
    """A shape decoder that fills the whole field: the soft box then cuts it to height × width, so
    every object it draws is a filled rectangle."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), 256), 20.0)


def code(net, slots: list[dict]) -> torch.Tensor:
    """z (1, D) of hand-built slots, {row, col, height, width, colour} each; the rest absent."""
    z = torch.zeros(1, net.latent_dim)
    for k in range(net.slots):
        at = k * net.per_slot
        z[0, at] = 1.0 if k < len(slots) else -1.0
        for i, part in enumerate(PARTS[1:], 1):
            if k < len(slots):
                offset, scale = AFFINE[part]
                z[0, at + i] = (slots[k][part] - offset) / scale
    return z


@pytest.fixture(scope="session")
def rectangle_run(tmp_path_factory) -> Path:
    """A tiny slot run on atoms grids whose shape decoder then draws every object as its whole box
    (the last layer's weights zeroed, its bias 20): a run whose code is known, every object a
    filled rectangle of its height x width in its colour at its row and col."""
    run = tmp_path_factory.mktemp("slots") / "run"
    small = [
        "data.atoms_train=600",
        "data.atoms_val=100",
        "data.samples_per_epoch=256",
        "train.epochs=1",
        "model.shape_dims=4",
        "model.shape_encoder=[32]",
        "model.shape_decoder=[32]",
        "train.progress=false",
        "train.threads=1",
    ]
    assert (
        main(["--config", str(ROOT / "configs/atoms_slots.yaml"), "--out", str(run), *small]) == 0
    )
    path = ckpt.list_checkpoints(run)[-1]
    state = torch.load(path, weights_only=True)
    last = max(int(key.split(".")[1]) for key in state["model"] if key.startswith("shape_decoder"))
    state["model"][f"shape_decoder.{last}.weight"].zero_()
    state["model"][f"shape_decoder.{last}.bias"].fill_(20.0)
    torch.save(state, path)
    return run
