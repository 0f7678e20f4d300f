"""Checkpoints: atomic writes (a kill -9 mid-write leaves the previous one), load_latest falling
back past a corrupt file, and pruning to train.keep_checkpoints."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from arcvae.errors import ArcVaeError
from arcvae.training import checkpoint as ckpt

KILL_DURING_WRITE = """
import os, signal, sys, torch
from arcvae.training import checkpoint as ckpt
run = sys.argv[1]
ckpt.save_checkpoint(run, 1, {"w": torch.ones(1000)})
real_save = torch.save
def half_then_die(obj, f):  # write part of the file, then die as kill -9 would
    f.write(b"PK" + bytes(5000)); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
torch.save = half_then_die
ckpt.save_checkpoint(run, 2, {"w": torch.zeros(1000)})
"""


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, str(tmp_path)], cwd=ROOT, capture_output=True
    )
    assert done.returncode == -signal.SIGKILL
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000001.pt"]
    # the torn write, never under a real name
    assert len(list((tmp_path / "checkpoints").glob(".step_000000002.pt.*tmp"))) == 1
    assert torch.equal(
        torch.load(ckpt.list_checkpoints(tmp_path)[0], weights_only=True)["w"], torch.ones(1000)
    )
    ckpt.save_checkpoint(tmp_path, 3, {"w": torch.ones(1)})
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))  # the next write clears it away


def test_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    good = {k: None for k in ckpt.REQUIRED_KEYS} | {"model": {"w": torch.ones(3)}}
    ckpt.save_checkpoint(tmp_path, 1, good)
    ckpt.save_checkpoint(tmp_path, 2, good)
    ckpt.list_checkpoints(tmp_path)[-1].write_bytes(b"not a checkpoint")
    assert torch.equal(ckpt.load_latest(tmp_path)["model"]["w"], torch.ones(3))
    assert "step_000000002.pt: corrupt or unreadable checkpoint" in capsys.readouterr().out


def _payload(step: int) -> dict:
    """A checkpoint with every key load_checkpoint asks for."""
    return {k: None for k in ckpt.REQUIRED_KEYS} | {
        "model": {"w": torch.full((2, 3), float(step))},
        "progress": {"step": step, "epoch": step / 8},
    }


def test_a_save_is_atomic_and_loads_back_exactly(tmp_path):
    payload = _payload(7)
    path = ckpt.save_checkpoint(tmp_path, 7, payload)
    assert path == tmp_path / "checkpoints" / "step_000000007.pt"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        "step_000000007.pt"
    ]  # no temp file left
    state = ckpt.load_checkpoint(path)
    assert (
        torch.equal(state["model"]["w"], payload["model"]["w"])
        and state["progress"] == payload["progress"]
    )


def test_load_latest_takes_the_newest_step_not_the_newest_name(tmp_path):
    for step in (9, 10, 100):  # 9 < 10 < 100 by number; the zero-padded names sort the same way
        ckpt.save_checkpoint(tmp_path, step, _payload(step), keep=5)
    assert ckpt.load_latest(tmp_path)["progress"]["step"] == 100
    with pytest.raises(ArcVaeError, match="no checkpoint to resume from"):
        ckpt.load_latest(tmp_path / "elsewhere")


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keep_checkpoints_prunes_to_the_newest(tmp_path, keep):
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, _payload(step), keep=keep)
    kept = ckpt.list_checkpoints(tmp_path)
    assert [ckpt.load_checkpoint(p)["progress"]["step"] for p in kept] == list(range(6 - keep, 6))
