"""A run's state: what a checkpoint holds (bare weights under torch.compile too), refusing to
resume with a changed config unless forced, and the status and collapse record its summary gives."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import REAL_STEP, RESUMABLE, sigint_at_call

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.models.build import build_model
from arcvae.training import checkpoint as ckpt
from arcvae.training import trainer
from arcvae.training.checkpoint import list_checkpoints, load_checkpoint
from arcvae.training.loggers import RunLog
from arcvae.training.run import Progress, write_summary
from arcvae.training.trainer import train


@pytest.mark.slow
def test_compiled_model_checkpoints_the_bare_weights(tiny_config, tmp_path):
    cfg = tiny_config("train.epochs=1", "train.compile=true")
    assert train(cfg, tmp_path / "run")["status"] == "completed"  # β 0 throughout: no alarm
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])["model"]
    assert not any(key.startswith("_orig_mod") for key in state)  # loadable without torch.compile
    build_model(cfg).load_state_dict(state)
    assert all(torch.isfinite(v).all() for v in state.values())


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


DIP = ["non-black accuracy 20.0% < monitor.non_black_floor=0.3 (colours below: 1 blue 0%)"]


def evaluated(progress: Progress, epoch: int, reasons: list[str]) -> None:
    """An evaluation after warm-up at the end of `epoch`, as trainer.watch_collapse notes it."""
    progress.epoch, progress.step = epoch, 8 * epoch
    progress.note_evaluation({"kl_dim_mean": 0.4, "non_black_accuracy": 0.5}, reasons)


def summary_of(progress: Progress, run_dir) -> dict:
    """summary.json of a finished run with this progress (no training: the parts it reads)."""
    run = SimpleNamespace(
        cfg=load_config(None),  # the defaults, resolved
        log=RunLog(),
        progress=progress,
        beta=lambda: 0.5,
        device="cpu",
        run_dir=run_dir,
    )
    write_summary(run, progress.end_status(), time.perf_counter())
    return json.loads((run_dir / "summary.json").read_text())


def test_a_run_that_recovers_ends_completed_with_its_events_kept(tmp_path):
    p = Progress()
    evaluated(p, 1, DIP)
    assert p.end_status() == "collapsed"
    evaluated(p, 2, [])
    assert p.end_status() == "completed"
    summary = summary_of(p, tmp_path)
    assert summary["status"] == "completed" and summary["collapse_flagged"] is True
    assert summary["collapse_events"] == [{"epoch": 1, "step": 8, "reasons": DIP}]
    assert summary["first_collapse_epoch"] == 1
    assert summary["recovered_from_collapse"] is True and summary["collapsed_at_end"] is False


def test_a_run_still_collapsed_at_its_last_evaluation_ends_collapsed(tmp_path):
    p = Progress()
    for epoch, reasons in ((1, DIP), (2, []), (3, DIP)):
        evaluated(p, epoch, reasons)
    summary = summary_of(p, tmp_path)
    assert summary["status"] == "collapsed" and summary["collapsed_at_end"] is True
    assert summary["recovered_from_collapse"] is False
    assert [e["epoch"] for e in summary["collapse_events"]] == [1, 3]
    healthy = Progress()
    evaluated(healthy, 1, [])
    summary = summary_of(healthy, tmp_path)
    assert summary["status"] == "completed" and summary["collapse_events"] == []
    assert summary["recovered_from_collapse"] is False


def test_summary_records_the_free_bits_allowance(tmp_path):
    # the default: 0.1 nats x (32 global + 8 x 15 x 15 cell dims)
    assert summary_of(Progress(), tmp_path)["free_bits_allowance"] == pytest.approx(0.1 * 1832)
