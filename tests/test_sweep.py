"""`python -m arcvae sweep`: runs one after another, skips finished ones, resumes interrupted ones,
compares."""

from __future__ import annotations

import json

import pytest
from conftest import TINY, assert_picture

from arcvae.cli import main
from arcvae.sweep import run_state


@pytest.mark.slow
def test_sweep_runs_skips_and_compares(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("train:\n  epochs: 1\n")
    out = tmp_path / "sweep"
    args = [
        "sweep",
        str(config),
        *TINY,
        "train.epochs=1",
        f"data.cache_dir={tmp_path / 'cache'}",
        "--out",
        str(out),
        "--seeds",
        "0",
        "1",
    ]
    assert main(args) == 0
    runs = [out / "tiny-seed0", out / "tiny-seed1"]
    for run in runs:
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        assert run_state(run) == "done"
    assert "seed: 1" in (runs[1] / "config.yaml").read_text()
    table = (out / "compare.txt").read_text()
    assert "tiny-seed0" in table and "tiny-seed1" in table
    assert_picture(out / "compare.png")

    first = (runs[0] / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(args) == 0  # a second call redoes nothing
    assert "already finished, skipped" in capsys.readouterr().out
    assert (runs[0] / "metrics.jsonl").read_text() == first


@pytest.mark.slow
def test_a_run_without_its_summary_is_resumed_not_restarted(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("train:\n  epochs: 1\n")
    out = tmp_path / "sweep"
    common = [*TINY, "train.epochs=1", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(["--config", str(config), "--out", str(out / "tiny"), *common]) == 0
    (out / "tiny" / "summary.json").unlink()  # as if killed after its last checkpoint
    records = (out / "tiny" / "metrics.jsonl").read_text()
    assert run_state(out / "tiny") == "resume"
    capsys.readouterr()
    assert main(["sweep", str(config), "--out", str(out), *common]) == 0
    assert "(resume)" in capsys.readouterr().out
    assert json.loads((out / "tiny" / "summary.json").read_text())["status"] == "completed"
    assert (out / "tiny" / "metrics.jsonl").read_text() == records  # nothing trained twice
