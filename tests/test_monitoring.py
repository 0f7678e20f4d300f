"""Monitoring: figures against hand-computed values, the alarm's wording, and the alarm on real runs."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arcvae.config import MonitorConfig
from arcvae.losses import LossBreakdown
from arcvae.metrics import (add_batch, collapse_reasons, flagged_epochs, new_stats, reason_kinds, summarize,
                            worst_colour)
from arcvae.tracking import console_line, kl_stripe, read_metrics
from arcvae.trainer import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def logits_for(pred: torch.Tensor) -> torch.Tensor:
    """Logits (B, 10, S, S) whose argmax is `pred` (B, S, S)."""
    return F.one_hot(pred, 10).permute(0, 3, 1, 2).float() * 5


def hand_stats() -> dict:
    target = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [3, 3]]])
    pred = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [3, 3]]])  # grid 0: one blue pixel read as red
    # Per dim over the 2 samples: Var(μ_0) = 1, Var(μ_1) = 0.07² = 0.0049 (< 0.01), Var(μ_2) = 0.25.
    mu = torch.tensor([[1.0, 0.30, 0.5], [-1.0, 0.16, -0.5]])
    kl = torch.tensor([[0.2, 0.0, 1.0], [0.4, 0.02, 3.0]])
    losses = LossBreakdown(loss=torch.tensor(10.0), recon=torch.tensor(8.0), shape=torch.tensor(0.0),
                           kl=torch.tensor(2.2), kl_clamped=torch.tensor(2.5), kl_per_dim=kl.mean(0))
    stats = new_stats(3, "cpu")
    add_batch(stats, logits_for(pred), target.to(torch.uint8), torch.tensor([[2, 2], [2, 2]]), mu, kl, losses)
    return summarize(stats, active_threshold=0.01)


def test_summarize_matches_hand_computed_figures():
    f = hand_stats()
    # colour 0: 3/3, colour 1: 1/2, colour 2: 1/1, colour 3: 2/2, colours 4-9 absent -> None
    assert f["per_class_accuracy"] == [1.0, 0.5, 1.0, 1.0, None, None, None, None, None, None]
    assert f["pixel_accuracy"] == pytest.approx(7 / 8)
    assert f["non_black_accuracy"] == pytest.approx(4 / 5)
    assert f["grid_accuracy"] == pytest.approx(1 / 2)
    assert f["active_units"] == 2
    assert f["kl_per_dim"] == pytest.approx([0.3, 0.01, 2.0])
    assert (f["kl_dim_min"], f["kl_dim_max"]) == pytest.approx((0.01, 2.0))
    assert f["kl_dim_mean"] == pytest.approx(2.31 / 3)
    assert (f["loss"], f["recon"], f["kl"], f["kl_clamped"]) == pytest.approx((10, 8, 2.2, 2.5))


def test_summarize_weights_batches_by_size_and_has_no_non_black_figure_without_colour():
    stats = new_stats(1, "cpu")
    black = torch.zeros(1, 2, 2, dtype=torch.long)
    for b, loss in ((3, 10.0), (1, 2.0)):
        add_batch(stats, logits_for(black.expand(b, 2, 2)), black.expand(b, 2, 2), torch.full((b, 2), 2),
                  torch.zeros(b, 1), torch.zeros(b, 1), LossBreakdown(*[torch.tensor(loss)] * 5, kl_per_dim=torch.zeros(1)))
    f = summarize(stats)
    assert f["loss"] == pytest.approx((3 * 10 + 1 * 2) / 4)
    assert f["non_black_accuracy"] is None
    assert f["per_class_accuracy"][1:] == [None] * 9
    assert f["active_units"] == 0


def test_worst_colour_skips_absent_colours():
    assert worst_colour([0.9, None, 0.2, 0.5]) == (2, 0.2)
    assert worst_colour([None] * 10) is None


def test_collapse_reasons_name_the_floor_the_dims_and_the_colours():
    figures = {"kl_dim_mean": 0.02, "kl_per_dim": [0.0, 0.06, 0.001], "non_black_accuracy": 0.1,
               "per_class_accuracy": [0.99, 0.0, 0.5, None, 0.1, 0.8, 0.9, 0.9, 0.9, 0.9]}
    kl, colours = collapse_reasons(figures, MonitorConfig(kl_floor=0.05, non_black_floor=0.3))
    assert kl == "mean KL/dim 0.020 < monitor.kl_floor=0.05 nats (2/3 dims below: 0,2)"
    assert colours == "non-black accuracy 10.0% < monitor.non_black_floor=0.3 (colours below: 1 blue 0%, 4 yellow 10%)"


def test_collapse_reasons_name_the_few_live_dims_when_most_are_dead():
    figures = {"kl_dim_mean": 0.01, "kl_per_dim": [0.0] * 30 + [0.2, 0.3], "non_black_accuracy": None,
               "per_class_accuracy": [None] * 10}
    assert collapse_reasons(figures, MonitorConfig())[0].endswith("(30/32 dims below: all but 30,31)")
    figures["kl_per_dim"] = [0.0] * 32
    assert collapse_reasons(figures, MonitorConfig())[0].endswith("(32/32 dims below: all)")
    assert reason_kinds(collapse_reasons(figures, MonitorConfig())) == ["KL"]


def test_collapse_reasons_empty_when_healthy_and_floors_zero_disable():
    figures = {"kl_dim_mean": 0.02, "kl_per_dim": [0.02], "non_black_accuracy": 0.1, "per_class_accuracy": [1.0] * 10}
    assert collapse_reasons(figures, MonitorConfig(kl_floor=0.0, non_black_floor=0.0)) == []
    assert collapse_reasons({**figures, "kl_dim_mean": 0.5, "non_black_accuracy": 0.9}, MonitorConfig()) == []


def test_flagged_epochs_ignore_evaluations_before_the_alarm_starts():
    dead = {"kl_dim_mean": 0.0, "kl_per_dim": [0.0], "non_black_accuracy": None, "per_class_accuracy": [1.0] * 10}
    records = [{**dead, "epoch": e} for e in (1, 2, 3)]
    assert flagged_epochs(records, MonitorConfig(), start=2) == [2, 3]


def test_console_line_shows_the_health_figures_and_the_free_bits_lift():
    record = {"epoch": 12, "split": "val", "beta": 0.031, **hand_stats(), "kl": 18.3, "kl_clamped": 20.0}
    line = console_line(record)
    assert line.startswith("ep 12 val   β=0.031 rec=8.0 KL=18.3 (KL'=20.0) KL/dim min 0.01 mean 0.77 AU 2/3")
    assert "non-black 80.0%" in line and "grid 50%" in line
    assert "KL'" not in console_line({**record, "kl_clamped": 18.3})


def test_kl_image_uses_a_fixed_scale_so_a_dead_latent_is_dark():
    # Scaling by the record's own max would paint an all-dead latent as bright as a healthy one.
    assert kl_stripe(torch.full((4,), 1e-5)).max() < 0.05
    assert kl_stripe(torch.full((4,), 1.0)).mean() > 0.3
    assert kl_stripe(torch.ones(5)).shape == (8, 40, 3)


# β = 50 on plain cross-entropy, no warm-up: the KL term dwarfs what a 10x10 grid's reconstruction
# gains from the latent, so the encoder gives up; free bits of 0.5 nats/dim remove that pressure.
# 512 samples per epoch (16 steps) so that the encoder has left its near-zero initial KL before
# the first evaluation the alarm judges.
COLLAPSING = ["beta.schedule=constant", "beta.max_beta=50", "loss.recon=ce", "loss.class_weights=none",
              "data.samples_per_epoch=512",
              # Both runs' decoders are too young to paint any colour (non-black accuracy ~0% with or
              # without free bits), so the accuracy floor would fire in both and hide the difference
              # under test: what free bits change is the KL part of the alarm. The floor is off here.
              "monitor.non_black_floor=0"]


def val_records(run_dir):
    return [r for r in read_metrics(run_dir) if r["split"] == "val"]


def test_alarm_fires_on_a_collapsing_run(tiny_config, tmp_path, capsys):
    cfg = tiny_config(*COLLAPSING, "loss.free_bits=0")
    summary = train(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert summary["status"] == "collapsed"
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["collapse_flagged"] is True and saved["status"] == "collapsed"
    assert saved["first_collapse_epoch"] == 1
    assert saved["worst_kl_dim_mean_after_warmup"] < cfg.monitor.kl_floor
    assert all(event["reasons"][0].startswith("mean KL/dim") for event in saved["collapse_events"])
    assert "warning: POSTERIOR COLLAPSE at epoch 1: mean KL/dim" in out and "dims below: 0,1,2" in out
    # The heat map's data: every dimension dark at every evaluation, and no unit active.
    for record in val_records(tmp_path / "run"):
        assert max(record["kl_per_dim"]) < cfg.monitor.kl_floor
        assert record["active_units"] == 0
    # Accuracy shows it too: a decoder that ignores z paints the most common colour, black.
    final = saved["final"]
    assert final["per_class_accuracy"][0] > 0.9 and final["non_black_accuracy"] < 0.1
    for name in ("curves.png", "kl_heatmap.png", "per_class_accuracy.png", "reconstructions.png"):
        assert (tmp_path / "run" / "plots" / name).read_bytes()[:8] == PNG_MAGIC


def test_free_bits_keep_the_kl_alarm_quiet(tiny_config, tmp_path, capsys):
    cfg = tiny_config(*COLLAPSING, "loss.free_bits=0.5")
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["collapse_flagged"] is False and summary["collapse_events"] == []
    assert summary["worst_kl_dim_mean_after_warmup"] >= cfg.monitor.kl_floor
    records = val_records(tmp_path / "run")
    assert all(r["kl_dim_mean"] >= cfg.monitor.kl_floor for r in records)
    assert all(r["kl_clamped"] > r["kl"] for r in records)  # the floor is what holds the dims up
    assert "POSTERIOR COLLAPSE" not in capsys.readouterr().out


def test_records_and_tensorboard_carry_every_figure(tiny_config, tmp_path):
    train(tiny_config("train.epochs=1"), tmp_path / "run")
    board = tmp_path / "run" / "tensorboard"
    assert [p for p in board.iterdir() if p.is_dir()] == []  # add_scalars would leave a folder per colour
    events = EventAccumulator(str(board))
    events.Reload()
    tags = events.Tags()
    assert {"per_class_accuracy/val_colour0", "per_class_accuracy/train_colour0"} <= set(tags["scalars"])
    assert {"val/kl_dim_mean", "val/active_units", "val/lr", "train/grad_norm",
            "train/samples_per_s"} <= set(tags["scalars"])
    assert {"kl_per_dim/val", "kl_per_dim/train"} <= set(tags["histograms"])
    assert "kl_per_dim_image/val" in tags["images"]
    contract = {"split", "step", "epoch", "beta", "lr", "loss", "recon", "kl", "kl_clamped", "kl_per_dim", "kl_dim_min",
                "kl_dim_mean", "kl_dim_max", "active_units", "pixel_accuracy", "non_black_accuracy",
                "per_class_accuracy", "grid_accuracy"}
    records = read_metrics(tmp_path / "run")
    assert {r["split"] for r in records} == {"train", "val"}
    assert all(contract <= r.keys() for r in records)
    assert all({"grad_norm", "samples_per_s"} <= r.keys() for r in records if r["split"] == "train")
