"""`python -m arcvae sweep`: runs one after another, skips finished ones, resumes interrupted ones,
compares; a sweep file's axes make every combination, and parts of a sweep run side by side."""

from __future__ import annotations

import json

import pytest
from conftest import TINY, assert_picture

from arcvae.commands.cli import main
from arcvae.commands.sweep import plan, run_state
from arcvae.config_io import load_config


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


SWEEP_FILE = """\
sweep:
  latent: {cells: {}, global: {model.cell_dims: 0, model.latent_dim: 16}}
  beta: {b0.5: {beta.max_beta: 0.5}, b2: {beta.max_beta: 2, loss.free_bits: 0}}
"""


def test_a_sweep_file_is_every_combination_of_its_axes(tmp_path):
    path = tmp_path / "rd.yaml"
    path.write_text(SWEEP_FILE)
    runs = plan([str(path)], None, tmp_path / "out")
    assert [run.run_dir.name for run in runs] == [
        "cells-b0.5",
        "cells-b2",
        "global-b0.5",
        "global-b2",
    ]
    cfg = load_config(None, ["train.epochs=3"], settings=runs[3].settings)
    assert (cfg.model.cell_dims, cfg.model.latent_dim) == (0, 16)
    assert (cfg.beta.max_beta, cfg.loss.free_bits, cfg.train.epochs) == (2, 0, 3)
    first = load_config(None, settings=runs[0].settings)
    assert first.model.latent_dim == 32 and first.beta.max_beta == 0.5  # the defaults beneath
    seeded = plan([str(path)], [0, 1], tmp_path / "out")
    assert [run.run_dir.name for run in seeded[:2]] == ["cells-b0.5-seed0", "cells-b0.5-seed1"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("sweep: [1, 2]\n", "a sweep file has one key, 'sweep', a mapping of axes"),
        ("sweep: {beta: {}}\n", "sweep.beta must map value names to config keys"),
        ("sweep: {beta: {b1: 1}}\n", "sweep.beta.b1 must map config keys to values"),
        ("sweep: {beta: {b1: {beta.max_bta: 1}}}\n", "unknown config key 'beta.max_bta'"),
        ("sweep: {beta: {b1: {beta.max_beta: -1}}}\n", "beta.max_beta"),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_the_file_and_nothing_runs(
    tmp_path, capsys, text, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_part_must_be_k_of_n(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["sweep", "x.yaml", "--out", str(tmp_path), "--part", "3/2"])
    assert stop.value.code == 2 and "'3/2' is not K/N" in capsys.readouterr().err


@pytest.mark.slow
def test_two_parts_share_a_sweep_each_running_its_own_runs(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text("sweep:\n  seed: {s0: {train.seed: 0}, s1: {train.seed: 1}}\n")
    common = [*TINY, "train.epochs=1", f"data.cache_dir={tmp_path / 'cache'}"]
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--part", "2/2", *common]) == 0
    assert not (out / "s0").exists()
    assert json.loads((out / "s1" / "summary.json").read_text())["status"] == "completed"
    assert "seed: 1" in (out / "s1" / "config.yaml").read_text()
