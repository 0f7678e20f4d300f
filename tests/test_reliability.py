"""Reliability (issue 6): resume equivalence, interruption, kill -9, the NaN guard, stop_on_collapse.

In-process tests drive `trainer.train` and interrupt it with a real SIGINT raised at a chosen step;
subprocess tests run `train_vae.py` and signal it from outside. Runs are compared on every figure
of metrics.jsonl except `samples_per_s` (a wall-clock rate) and on the final weights, bit for bit.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from arcvae import checkpoint as ckpt
from arcvae import steps, trainer
from arcvae.cli import main
from arcvae.tracking import read_metrics
from conftest import ROOT, TINY

# 3 epochs of 8 steps, a checkpoint every 3 steps: interruptions land mid-epoch and between checkpoints.
RESUMABLE = ["train.epochs=3", "train.checkpoint_every_steps=3", "train.keep_checkpoints=3"]


def comparable(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in read_metrics(run_dir)]


def final_weights(run_dir: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir)[-1])["model"]


def assert_same_run(a: Path, b: Path) -> None:
    assert comparable(a) == comparable(b)
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """Drawing PNGs is most of a tiny run's time and nothing here looks at them."""
    monkeypatch.setattr(trainer, "draw", lambda run, grids: None)


REAL_STEP = trainer.train_step


def sigint_at_call(monkeypatch, call: int) -> None:
    """Raise a real SIGINT inside training step number `call` (1-based), as a user's Ctrl-C would."""
    real, calls = REAL_STEP, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(trainer, "train_step", step)


# ---------------------------------------------------------------- resume equivalence, in process

@pytest.mark.parametrize("schedule", [
    ["beta.schedule=adaptive", "beta.target_kl_per_dim=0.2"],          # the controller's state must carry over
    ["beta.warmup_epochs=0.5", "beta.ramp_epochs=1", "loss.free_bits=0.1"],  # β moving within epochs
])
def test_resume_mid_epoch_matches_uninterrupted_run(tiny_config, tmp_path, monkeypatch, schedule):
    cfg = tiny_config(*RESUMABLE, *schedule)
    whole = trainer.train(cfg, tmp_path / "whole")
    sigint_at_call(monkeypatch, 11)  # step 11: epoch 2, batch 3, two steps after a log and a checkpoint
    summary = trainer.train(cfg, tmp_path / "cut")
    assert summary["status"] == "interrupted" and summary["step"] == 11
    monkeypatch.setattr(trainer, "train_step", REAL_STEP)
    summary = trainer.train(cfg, tmp_path / "cut", resume=True)
    assert summary["step"] == 24
    # The tiny model trips the collapse alarm; the alarm's record must carry over too.
    drop = ("wall_time_s", "final_train")  # timings; the rest of final_train is compared in metrics.jsonl
    assert {k: v for k, v in summary.items() if k not in drop} == {k: v for k, v in whole.items() if k not in drop}
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


def test_resume_after_kill_past_last_checkpoint(tiny_config, tmp_path, monkeypatch):
    """A run killed after its last checkpoint logged records it will log again: resume drops them."""
    cfg = tiny_config(*RESUMABLE)
    trainer.train(cfg, tmp_path / "whole")
    sigint_at_call(monkeypatch, 14)
    trainer.train(cfg, tmp_path / "cut")
    monkeypatch.setattr(trainer, "train_step", REAL_STEP)
    # As if killed at step 14 before its checkpoint: remove it, keeping the one at step 12.
    newest = ckpt.list_checkpoints(tmp_path / "cut")[-1]
    assert newest.name == "step_000000014.pt"
    newest.unlink()
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "step": 1')  # a line cut short by the kill
    trainer.train(cfg, tmp_path / "cut", resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


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
    assert capsys.readouterr().err.startswith("error: checkpoint does not fit this model (size mismatch for")
    assert main(["--resume", str(tmp_path / "run"), "train.epochs=4", "--force"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 4


def test_checkpoint_holds_everything_the_issue_lists(tiny_config, tmp_path):
    cfg = tiny_config("beta.schedule=adaptive")
    trainer.train(cfg, tmp_path / "run")
    state = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[-1])
    assert {"model", "optimizer", "controller", "progress", "rng", "config_yaml", "config_hash"} <= set(state)
    assert "running" in state["progress"]
    assert set(state["controller"]) == {"integral", "kl_ema", "beta"}
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert state["progress"]["step"] == 16 and state["progress"]["epoch"] == 2
    assert "worst_kl_dim_mean" in state["progress"] and "bad_steps_in_row" in state["progress"]


# ---------------------------------------------------------------- atomic writes

KILL_DURING_WRITE = """
import os, signal, sys, torch
from arcvae import checkpoint as ckpt
run = sys.argv[1]
ckpt.save_checkpoint(run, 1, {"w": torch.ones(1000)})
real_save = torch.save
def half_then_die(obj, f):  # write part of the file, then die as kill -9 would
    f.write(b"PK" + bytes(5000)); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
torch.save = half_then_die
ckpt.save_checkpoint(run, 2, {"w": torch.zeros(1000)})
"""


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(tmp_path)], cwd=ROOT,
                          capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000001.pt"]
    assert (tmp_path / "checkpoints" / ".step_000000002.pt.tmp").exists()  # the torn write, never under a real name
    assert torch.equal(torch.load(ckpt.list_checkpoints(tmp_path)[0], weights_only=True)["w"], torch.ones(1000))
    ckpt.save_checkpoint(tmp_path, 3, {"w": torch.ones(1)})
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))  # the next write clears it away


def test_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    good = {k: None for k in ckpt.REQUIRED_KEYS} | {"model": {"w": torch.ones(3)}}
    ckpt.save_checkpoint(tmp_path, 1, good)
    ckpt.save_checkpoint(tmp_path, 2, good)
    ckpt.list_checkpoints(tmp_path)[-1].write_bytes(b"not a checkpoint")
    assert torch.equal(ckpt.load_latest(tmp_path)["model"]["w"], torch.ones(3))
    assert "step_000000002.pt: corrupt or unreadable checkpoint" in capsys.readouterr().out


# ---------------------------------------------------------------- numerical faults

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


def test_too_many_nan_steps_in_a_row_fail_the_run(tiny_config, tmp_path, monkeypatch, capsys):
    nan_loss_on_calls(monkeypatch, set(range(11, 100)))  # from step 11 on: the weights stay good, the loss does not
    code = main(TINY + [f"data.cache_dir={tmp_path / 'cache'}", "train.max_bad_steps=3",
                        "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["skipped_steps"] == 3
    assert summary["message"].startswith("3 steps in a row had a non-finite loss or gradient")
    assert "error: 3 steps in a row had a non-finite loss" in out
    last_good = ckpt.load_latest(tmp_path / "run")
    assert last_good["progress"]["step"] == 8  # the epoch-1 checkpoint, untouched
    assert all(torch.isfinite(w).all() for w in last_good["model"].values())


def test_stop_on_collapse_ends_the_run_collapsed(tiny_config, tmp_path):
    # An absurd KL floor makes the alarm fire at the first check after warm-up (epoch 1).
    cfg = tiny_config("beta.schedule=constant", "monitor.kl_floor=1000", "train.stop_on_collapse=true")
    summary = trainer.train(cfg, tmp_path / "run")
    assert summary["status"] == "collapsed" and summary["epochs"] == 1 and summary["collapse_flagged"]
    assert summary["message"] == "stopped: train.stop_on_collapse is set"
    assert ckpt.load_latest(tmp_path / "run")["progress"]["epoch"] == 1


def test_second_signal_exits_at_once():
    run = type("FakeRun", (), {"stop_requested": False})()
    handler = trainer.interruptible(run)
    handler._handle(signal.SIGINT, None)
    assert run.stop_requested
    with pytest.raises(SystemExit) as exc:
        handler._handle(signal.SIGINT, None)
    assert exc.value.code == 130


# ---------------------------------------------------------------- real processes, real signals

# Pictures only once, at the end (they cost more than the training steps of a run this small).
SUBPROCESS = TINY + ["train.epochs=4", "data.samples_per_epoch=512", "train.checkpoint_every_steps=1",
                     "monitor.n_recon_grids=0", "train.eval_every=4"]


def start(out: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "train_vae.py", *SUBPROCESS, f"data.cache_dir={cache}",
                             "--out", str(out), *extra], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, at_least: int) -> None:
    """Block until the run has written a checkpoint at step >= at_least (the signal then lands mid-run)."""
    while not any(int(ckpt.NAME.search(p.name).group(1)) >= at_least for p in ckpt.list_checkpoints(out)):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=120)
    return proc.returncode, output


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must match."""
    root = tmp_path_factory.mktemp("reference")
    code, output = finish(start(root / "run", root / "cache"))
    assert code == 0, output
    return root / "run"


def test_sigint_then_resume_matches_uninterrupted_run(reference_run, tmp_path):
    out = tmp_path / "run"
    proc = start(out, tmp_path / "cache")
    wait_for_checkpoint(proc, out, 5)
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc)
    assert code == 130, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] < 64
    assert f"resume with --resume {out}" in summary["message"]
    assert ckpt.load_latest(out)["progress"]["step"] == summary["step"]
    code, output = finish(start(out, tmp_path / "cache", "--resume", str(out)))
    assert code == 0, output
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert_same_run(reference_run, out)


def test_sigkill_then_resume_matches_uninterrupted_run(reference_run, tmp_path):
    out = tmp_path / "run"
    proc = start(out, tmp_path / "cache")
    wait_for_checkpoint(proc, out, 5)  # checkpoints every step: the kill often lands inside a write
    proc.send_signal(signal.SIGKILL)
    code, _ = finish(proc)
    assert code == -signal.SIGKILL
    assert all(ckpt.load_checkpoint(p) for p in ckpt.list_checkpoints(out))  # every complete one loads
    code, output = finish(start(out, tmp_path / "cache", "--resume", str(out)))
    assert code == 0, output
    assert_same_run(reference_run, out)


def test_second_sigint_quits_without_finishing(tmp_path):
    # A wide model makes each step long, so the second signal lands while the first is still pending.
    out = tmp_path / "run"
    proc = start(out, tmp_path / "cache", "data.grid_size=30", "model.channels=[128,256]", "train.batch_size=256",
                 "data.samples_per_epoch=4096")
    wait_for_checkpoint(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    for line in proc.stdout:
        if line.startswith("stopping after this step"):
            break
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc)
    assert code == 130
    assert "status: interrupted" not in output and not (out / "summary.json").exists()
