"""A run's state: what a checkpoint holds (bare weights under torch.compile too) and refusing to
resume with a changed config unless forced."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REAL_STEP, RESUMABLE, sigint_at_call

from arcvae import checkpoint as ckpt
from arcvae import trainer
from arcvae.checkpoint import list_checkpoints, load_checkpoint
from arcvae.cli import main
from arcvae.model import build_model
from arcvae.trainer import train


@pytest.mark.slow
def test_compiled_model_checkpoints_the_bare_weights(tiny_config, tmp_path):
    cfg = tiny_config("train.epochs=1", "train.compile=true")
    assert train(cfg, tmp_path / "run")["status"] == "completed"  # β 0 throughout: no alarm
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])["model"]
    assert not any(key.startswith("_orig_mod") for key in state)  # loadable without torch.compile
    build_model(cfg).load_state_dict(state)
    assert all(torch.isfinite(v).all() for v in state.values())


@pytest.mark.usefixtures("no_pictures")
@pytest.mark.slow
def test_resume_refuses_a_changed_config_unless_forced(tiny_config, tmp_path, monkeypatch, capsys):
    cfg = tiny_config(*RESUMABLE)
    sigint_at_call(monkeypatch, 5)
    trainer.train(cfg, tmp_path / "run")
    monkeypatch.setattr(trainer, "train_step", REAL_STEP)
    code = main(["--resume", str(tmp_path / "run"), "train.lr=0.01", "train.epochs=4"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot resume with a different config")
    assert "train.epochs, train.lr" in err and "--force" in err
    assert main(["--resume", str(tmp_path / "run"), "model.latent_dim=4", "--force"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: checkpoint does not fit this model (size mismatch for"
    )
    assert main(["--resume", str(tmp_path / "run"), "train.epochs=4", "--force"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 4


@pytest.mark.usefixtures("no_pictures")
@pytest.mark.slow
def test_checkpoint_holds_everything_the_issue_lists(tiny_config, tmp_path):
    cfg = tiny_config("beta.schedule=adaptive")
    trainer.train(cfg, tmp_path / "run")
    state = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[-1])
    assert {
        "model",
        "optimizer",
        "controller",
        "progress",
        "rng",
        "config_yaml",
        "config_hash",
    } <= set(state)
    assert "running" in state["progress"]
    assert set(state["controller"]) == {"integral", "kl_ema", "beta"}
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert state["progress"]["step"] == 16 and state["progress"]["epoch"] == 2
    assert "worst_kl_dim_mean" in state["progress"] and "bad_steps_in_row" in state["progress"]
