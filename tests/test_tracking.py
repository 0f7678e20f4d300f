"""Tracking: the console line, the KL picture's fixed scale, metrics.jsonl and the TensorBoard
events."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import hand_stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arcvae.training.bits import BIT_FIGURES
from arcvae.training.loggers import kl_stripe, open_log
from arcvae.training.records import read_metrics, scan_metrics
from arcvae.training.tracking import console_line
from arcvae.training.trainer import train


def test_console_line_shows_the_health_figures_and_the_free_bits_lift():
    record = {
        "epoch": 12,
        "split": "val",
        "beta": 0.031,
        **hand_stats(),
        "kl": 18.3,
        "kl_clamped": 20.0,
    }
    line = console_line(record)
    assert line.startswith(
        "ep 12 val   β=0.031 rec=8.0 KL=18.3 (KL'=20.0) KL/dim min 0.01 mean 0.77 AU 2/3"
    )
    assert "non-black 80.0%" in line and "grid 50%" in line
    assert "KL'" not in console_line({**record, "kl_clamped": 18.3})
    assert "bits" not in line  # a record without bits (a train record) shows none
    # an evaluation's record says what free bits lift and how many dims sit under the floor
    evaluation = {**record, "kl_exempt": 1.7, "dims_under_free_bits": 2}
    assert "KL=18.3 (KL'=20.0: +1.7, 2 dims < fb) KL/dim" in console_line(evaluation)


def test_console_line_of_an_evaluation_ends_with_its_bits():
    record = {"epoch": 3, "split": "val", "beta": 0.2, **hand_stats()}
    bits = {"rate_bits": 35.12, "distortion_bits": 60.21, "neg_elbo_bits": 95.33}
    assert console_line({**record, **bits}).endswith("bits: rate 35.1 + dist 60.2 = 95.3")


def test_kl_image_uses_a_fixed_scale_so_a_dead_latent_is_dark():
    # Scaling by the record's own max would paint an all-dead latent as bright as a healthy one.
    assert kl_stripe(torch.full((4,), 1e-5)).max() < 0.05
    assert kl_stripe(torch.full((4,), 1.0)).mean() > 0.3
    assert kl_stripe(torch.ones(5)).shape == (8, 40, 3)


@pytest.mark.slow
def test_records_and_tensorboard_carry_every_figure(tiny_config, tmp_path):
    train(tiny_config("train.epochs=1"), tmp_path / "run")
    board = tmp_path / "run" / "tensorboard"
    assert [
        p for p in board.iterdir() if p.is_dir()
    ] == []  # add_scalars would leave a folder per colour
    events = EventAccumulator(str(board))
    events.Reload()
    tags = events.Tags()
    assert {"per_class_accuracy/val_colour0", "per_class_accuracy/train_colour0"} <= set(
        tags["scalars"]
    )
    assert {
        "val/kl_dim_mean",
        "val/active_units",
        "val/lr",
        "train/grad_norm",
        "train/samples_per_s",
    } <= set(tags["scalars"])
    assert {"kl_per_dim/val", "kl_per_dim/train"} <= set(tags["histograms"])
    assert "kl_per_dim_image/val" in tags["images"]
    contract = {
        "split",
        "step",
        "epoch",
        "beta",
        "lr",
        "loss",
        "recon",
        "kl",
        "kl_clamped",
        "kl_per_dim",
        "kl_dim_min",
        "kl_dim_mean",
        "kl_dim_max",
        "active_units",
        "pixel_accuracy",
        "non_black_accuracy",
        "per_class_accuracy",
        "grid_accuracy",
    }
    records = read_metrics(tmp_path / "run")
    assert {r["split"] for r in records} == {"train", "val"}
    assert all(contract <= r.keys() for r in records)
    assert all({"grad_norm", "samples_per_s"} <= r.keys() for r in records if r["split"] == "train")
    assert all(set(BIT_FIGURES) <= r.keys() for r in records if r["split"] == "val")
    assert {f"val/{name}" for name in BIT_FIGURES} <= set(tags["scalars"])


def test_a_record_round_trips_through_metrics_jsonl_and_reaches_tensorboard(tmp_path):
    record = {
        "split": "val",
        "step": 12,
        "epoch": 1.5,
        "beta": 0.25,
        "loss": 9.5,
        "kl_per_dim": [0.5, 0.001, 2.0],
        "per_class_accuracy": [1.0, None, 0.5] + [None] * 7,
        "grid_accuracy": float("nan"),
    }
    log = open_log(tmp_path)
    log.log(record)
    log.log({"split": "train", "step": 13, "epoch": 1.625, "loss": float("inf")})
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    # one strict JSON object a line
    assert [json.loads(line) for line in lines] == read_metrics(tmp_path)
    first, second = read_metrics(tmp_path)
    # NaN and inf written as null
    assert first == {**record, "grid_accuracy": None} and second["loss"] is None
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert [e.value for e in events.Scalars("val/loss")] == [9.5] and events.Scalars("val/loss")[
        0
    ].step == 12
    assert [e.value for e in events.Scalars("per_class_accuracy/val_colour2")] == [0.5]
    assert (
        "kl_per_dim/val" in events.Tags()["histograms"]
        and "kl_per_dim_image/val" in events.Tags()["images"]
    )


def test_a_line_cut_short_is_skipped_and_counted(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"split": "train", "step": 1}\n{"split": "train", "st')
    assert scan_metrics(tmp_path) == ([{"split": "train", "step": 1}], 1)
    assert read_metrics(tmp_path / "no run here") == []
