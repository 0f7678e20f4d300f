"""Where records go: RunLog keeps them in memory and hands each to every logger; W&B logs the same
figures (offline, no network); `monitor.wandb` without the package is refused before anything is
written; `import arcvae` loads no training code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TINY

from arcvae.commands.cli import main
from arcvae.config import MonitorConfig
from arcvae.training.loggers import RunLog, WandbLogger, open_log, scalars
from arcvae.training.records import read_metrics

RECORD = {
    "split": "val",
    "step": 8,
    "epoch": 1,
    "pixel_accuracy": 0.75,
    "per_class_accuracy": [0.9, None, 0.5] + [None] * 7,
    "kl_per_dim": [0.5, 0.01],
    "collapsed": False,
}


class Collecting:
    def __init__(self):
        self.records = []
        self.closed = False

    def log(self, record: dict) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True


def test_run_log_keeps_the_records_and_hands_each_to_every_logger():
    loggers = [Collecting(), Collecting()]
    log = RunLog(loggers, records=[{"split": "train", "step": 4}])
    log.log(RECORD)
    log.close()
    assert log.records == [{"split": "train", "step": 4}, RECORD]
    assert all(logger.records == [RECORD] and logger.closed for logger in loggers)


def test_scalars_are_the_numbers_of_a_record_by_split_and_one_per_colour():
    assert scalars(RECORD) == {
        "val/epoch": 1,
        "val/pixel_accuracy": 0.75,
        "per_class_accuracy/val_colour0": 0.9,
        "per_class_accuracy/val_colour2": 0.5,
    }


def test_open_log_of_a_resumed_run_starts_from_its_records(tmp_path):
    earlier = [{"split": "train", "step": 4, "loss": 1.0}]
    log = open_log(tmp_path, MonitorConfig(), records=earlier)
    log.log(RECORD)
    log.close()
    assert log.records == [*earlier, RECORD]
    assert read_metrics(tmp_path) == [RECORD]  # the file gets the new records only


def test_the_wandb_logger_logs_the_same_figures_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(tmp_path, "arcvae-test", {"train": {"seed": 0}})
    logger.log(RECORD)
    # W&B commits a step's row once a later step is logged: records of one step share a row.
    logger.log({"split": "train", "step": 16, "loss": 2.0})
    summary = logger.run.summary
    assert summary["val/pixel_accuracy"] == 0.75 and summary["_step"] == 8
    assert summary["per_class_accuracy/val_colour2"] == 0.5
    assert logger.run.config["train"] == {"seed": 0}
    logger.close()
    run_id = (tmp_path / "wandb_id.txt").read_text().strip()
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))


@pytest.mark.slow
def test_a_run_with_wandb_trains_and_its_resume_continues_the_same_wandb_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    argv = [*TINY, f"data.cache_dir={tmp_path / 'cache'}", "monitor.wandb=true"]
    assert main(["--out", str(run), *argv]) == 0
    assert main(["--resume", str(run), "train.epochs=3", "--force"]) == 0
    run_id = (run / "wandb_id.txt").read_text().strip()
    assert len(list((run / "wandb").glob(f"offline-run-*-{run_id}"))) == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 3


def test_wandb_asked_for_but_not_installed_is_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    run = tmp_path / "run"
    code = main(["--out", str(run), *TINY, "monitor.wandb=true"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "monitor.wandb: the wandb package is not installed" in err
    assert not run.exists()


def test_import_arcvae_loads_no_training_code():
    probe = (
        "import sys, arcvae\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'torch.utils.tensorboard',"
        " 'arcvae.training.trainer') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(arcvae.load_run) and 'arcvae.latent' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_load_run_loads_no_plotting_or_training_loop():
    """`load_run` is for using a latent: no matplotlib, TensorBoard, loggers or the loop."""
    probe = (
        "import sys, arcvae\n"
        "arcvae.load_run\n"
        "heavy = [m for m in ('matplotlib', 'torch.utils.tensorboard', 'arcvae.pictures',"
        " 'arcvae.training.trainer', 'arcvae.training.loggers', 'arcvae.commands')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
