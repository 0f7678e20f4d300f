"""The CLI end to end: one short run's folder against the docs/design.md contract, the real entry
points, and the one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import ROOT, TINY, assert_picture

from arcvae.commands.cli import main
from arcvae.config_io import load_config

CONTRACT_KEYS = [
    "split",
    "step",
    "epoch",
    "beta",
    "loss",
    "recon",
    "kl",
    "kl_per_dim",
    "active_units",
    "pixel_accuracy",
    "non_black_accuracy",
    "per_class_accuracy",
    "grid_accuracy",
]
LATENT_DIM = 8  # TINY's model.latent_dim


def _tiny_args(out, cache, *extra: str) -> list[str]:
    return [
        "--config",
        str(ROOT / "configs" / "cpu_small.yaml"),
        "--out",
        str(out),
        *TINY,
        "train.epochs=1",
        f"data.cache_dir={cache}",
        *extra,
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny in-process training run shared by the run-folder tests."""
    tmp = tmp_path_factory.mktemp("cli")
    assert main(_tiny_args(tmp / "run", tmp / "cache")) == 0
    return tmp / "run"


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_config_yaml_is_fully_resolved_and_loadable(run_dir):
    cfg = load_config(run_dir / "config.yaml")
    assert cfg.train.epochs == 1 and cfg.data.grid_size == 10 and cfg.model.latent_dim == LATENT_DIM
    assert cfg.beta.max_beta == 0.2  # from cpu_small.yaml
    assert None not in yaml.safe_load((run_dir / "config.yaml").read_text())["beta"].values()


@pytest.mark.slow
def test_every_metrics_record_has_the_contract_keys(run_dir):
    records = _records(run_dir)
    assert {r["split"] for r in records} >= {"train", "val"}
    for r in records:
        missing = [k for k in CONTRACT_KEYS if k not in r]
        assert missing == [], f"{r['split']} record at step {r['step']} lacks {missing}"
        assert len(r["kl_per_dim"]) == LATENT_DIM
        assert len(r["per_class_accuracy"]) == 10
        assert 0 <= r["pixel_accuracy"] <= 1 and 0 <= r["grid_accuracy"] <= 1
        assert 0 <= r["active_units"] <= LATENT_DIM


@pytest.mark.slow
def test_summary_has_status_and_the_final_figures(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"  # TINY keeps β at 0: the alarm is not armed
    for key in CONTRACT_KEYS[3:]:
        if key != "beta":
            assert summary[key] is not None, key
    last_val = [r for r in _records(run_dir) if r["split"] == "val"][-1]
    assert summary["pixel_accuracy"] == last_val["pixel_accuracy"]


@pytest.mark.slow
def test_checkpoint_tensorboard_and_plots_are_written(run_dir):
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt"))
    assert checkpoints
    state = torch.load(checkpoints[-1], weights_only=True)
    assert "model" in state and "optimizer" in state
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert {p.name for p in (run_dir / "plots").glob("*.png")} >= {
        "reconstructions.png",
        "curves.png",
    }
    for name in ("reconstructions.png", "curves.png"):
        assert_picture(run_dir / "plots" / name)


@pytest.mark.parametrize(
    "entry", [["train_vae.py"], ["-m", "arcvae", "train"]], ids=["train_vae.py", "-m arcvae"]
)
@pytest.mark.slow
def test_the_real_entry_points_train(tmp_path, entry):
    args = _tiny_args(
        tmp_path / "run", tmp_path / "cache", "data.samples_per_epoch=64", "data.val_limit=16"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").exists()
    # how long the run will take, told after its second logged window (this run has one)
    assert re.search(
        r"expected: about \d+ (more seconds|more minutes) of training \(\d+ samples/s over steps "
        r"1-\d+\), plus 1 evaluations",
        done.stdout,
    ), done.stdout[-2000:]


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "--config" in capsys.readouterr().out


def _exits_2_with_one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_data_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": [{"input": [[1, 10]], "output": [[1]]}]}))
    line = _exits_2_with_one_error_line(
        capsys, _tiny_args(tmp_path / "run", tmp_path / "cache", f"data.source={bad}")
    )
    assert "bad.json" in line and "colour 10" in line


def test_missing_config_file_exits_2(tmp_path, capsys):
    line = _exits_2_with_one_error_line(
        capsys, ["--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]
    )
    assert "nope.yaml" in line and "not found" in line


def test_unknown_key_exits_2(tmp_path, capsys):
    line = _exits_2_with_one_error_line(capsys, ["--out", str(tmp_path), "train.epohcs=1"])
    assert "train.epohcs" in line and "train.epochs" in line


def test_negative_learning_rate_exits_2(tmp_path, capsys):
    line = _exits_2_with_one_error_line(capsys, ["--out", str(tmp_path), "train.lr=-0.001"])
    assert "train.lr" in line


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["data.bucket_multiple=0"], ["data.bucket_multiple", ">= 1"]),
        (["data.grid_size=31"], ["data.grid_size", "<= 30"]),
        (
            ["data.padding=symbol", "model.arch=conv"],
            ["model.arch=conv", "data.padding=symbol", "conv_any"],
        ),
        (["data.grid_size=10", "BIG"], ["big", "no grid fits in data.grid_size=10"]),
    ],
)
def test_a_canvas_or_bucket_setting_that_cannot_hold_the_data_exits_2(
    tmp_path, capsys, overrides, words
):
    big = tmp_path / "big"
    big.mkdir()
    grid = [[1] * 20] * 20
    (big / "a.json").write_text(
        json.dumps({"train": [{"input": grid, "output": grid}], "test": []})
    )
    overrides = [f"data.source={big}" if o == "BIG" else o for o in overrides]
    line = _exits_2_with_one_error_line(
        capsys, _tiny_args(tmp_path / "run", tmp_path / "cache", *overrides)
    )
    assert all(word in line for word in words), line
    assert not (tmp_path / "run").exists()
