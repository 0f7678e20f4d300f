"""Metrics: figures against hand-computed values, and the collapse alarm's wording and floors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import hand_stats, logits_for

from arcvae.config import MonitorConfig
from arcvae.training.losses import LossBreakdown
from arcvae.training.metrics import (
    add_batch,
    collapse_reasons,
    figures_by_side,
    flagged_epochs,
    free_bits_figures,
    grid_figures,
    new_stats,
    reason_kinds,
    summarize,
    worst_colour,
)


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
        add_batch(
            stats,
            logits_for(black.expand(b, 2, 2)),
            black.expand(b, 2, 2),
            torch.full((b, 2), 2),
            torch.zeros(b, 1),
            torch.zeros(b, 1),
            LossBreakdown(
                *[torch.tensor(loss)] * 5, kl_per_dim=torch.zeros(1), reached=torch.ones(1)
            ),
        )
    f = summarize(stats)
    assert f["loss"] == pytest.approx((3 * 10 + 1 * 2) / 4)
    assert f["non_black_accuracy"] is None
    assert f["per_class_accuracy"][1:] == [None] * 9
    assert f["active_units"] == 0


def test_grid_figures_of_decoded_grids_by_hand():
    targets = [np.array([[1, 0], [0, 2]]), np.array([[3, 3, 0]]), np.array([[4]])]
    predicted = [
        np.array([[1, 0], [0, 2]]),  # exact
        np.array([[3]]),  # too small: 1 of 3 pixels covered and right
        np.array([[4, 0], [0, 0]]),
    ]  # a whole canvas: only the target's own pixel counts
    with_shape = grid_figures(predicted, targets, judge_shape=True)
    assert with_shape["pixel_accuracy"] == pytest.approx(6 / 8)
    assert with_shape["non_black_accuracy"] == pytest.approx(4 / 5)  # 1, 2, 3 (of two), 4
    # the 0 that [[3]] left out
    assert with_shape["per_class_accuracy"][:5] == pytest.approx([2 / 3, 1.0, 1.0, 0.5, 1.0])
    assert (with_shape["grid_accuracy"], with_shape["shape_accuracy"], with_shape["samples"]) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        3,
    )
    # black mode: the canvas is not a shape
    own_pixels = grid_figures(predicted, targets, judge_shape=False)
    assert (
        own_pixels["grid_accuracy"] == pytest.approx(2 / 3) and own_pixels["shape_accuracy"] is None
    )


def test_figures_by_side_split_the_grids_by_their_longest_side():
    small, wide, big = (
        np.ones((2, 3), dtype=np.int64),
        np.zeros((1, 12), dtype=np.int64),
        np.full((30, 30), 5),
    )
    wrong_big = big.copy()
    wrong_big[0, 0] = 0
    bands = figures_by_side([small, wide, wrong_big], [small, wide, big], judge_shape=True)
    assert list(bands) == ["1-5", "11-15", "26-30"]  # bands without a grid are left out
    assert (
        bands["1-5"]["samples"],
        bands["1-5"]["grid_accuracy"],
        bands["1-5"]["non_black_accuracy"],
    ) == (1, 1.0, 1.0)
    assert bands["11-15"]["non_black_accuracy"] is None and bands["11-15"]["grid_accuracy"] == 1.0
    assert bands["26-30"]["grid_accuracy"] == 0.0 and bands["26-30"][
        "pixel_accuracy"
    ] == pytest.approx(899 / 900)
    assert sum(band["samples"] for band in bands.values()) == 3


def test_worst_colour_skips_absent_colours():
    assert worst_colour([0.9, None, 0.2, 0.5]) == (2, 0.2)
    assert worst_colour([None] * 10) is None


def test_collapse_reasons_name_the_floor_the_dims_and_the_colours():
    figures = {
        "kl_dim_mean": 0.02,
        "kl_per_dim": [0.0, 0.06, 0.001],
        "non_black_accuracy": 0.1,
        "per_class_accuracy": [0.99, 0.0, 0.5, None, 0.1, 0.8, 0.9, 0.9, 0.9, 0.9],
    }
    kl, colours = collapse_reasons(figures, MonitorConfig(kl_floor=0.05, non_black_floor=0.3))
    assert kl == "mean KL/dim 0.020 < monitor.kl_floor=0.05 nats (2/3 dims below: 0,2)"
    assert (
        colours
        == "non-black accuracy 10.0% < monitor.non_black_floor=0.3 (colours below: 1 blue 0%, 4 "
        "yellow 10%)"
    )


def test_collapse_reasons_name_the_few_live_dims_when_most_are_dead():
    figures = {
        "kl_dim_mean": 0.01,
        "kl_per_dim": [0.0] * 30 + [0.2, 0.3],
        "non_black_accuracy": None,
        "per_class_accuracy": [None] * 10,
    }
    assert collapse_reasons(figures, MonitorConfig())[0].endswith(
        "(30/32 dims below: all but 30,31)"
    )
    figures["kl_per_dim"] = [0.0] * 32
    assert collapse_reasons(figures, MonitorConfig())[0].endswith("(32/32 dims below: all)")
    assert reason_kinds(collapse_reasons(figures, MonitorConfig())) == ["KL"]


def test_collapse_reasons_empty_when_healthy_and_floors_zero_disable():
    figures = {
        "kl_dim_mean": 0.02,
        "kl_per_dim": [0.02],
        "non_black_accuracy": 0.1,
        "per_class_accuracy": [1.0] * 10,
    }
    assert collapse_reasons(figures, MonitorConfig(kl_floor=0.0, non_black_floor=0.0)) == []
    assert (
        collapse_reasons(
            {**figures, "kl_dim_mean": 0.5, "non_black_accuracy": 0.9}, MonitorConfig()
        )
        == []
    )


def test_flagged_epochs_ignore_evaluations_before_the_alarm_starts():
    dead = {
        "kl_dim_mean": 0.0,
        "kl_per_dim": [0.0],
        "non_black_accuracy": None,
        "per_class_accuracy": [1.0] * 10,
    }
    records = [{**dead, "epoch": e} for e in (1, 2, 3)]
    assert flagged_epochs(records, MonitorConfig(), start=2) == [2, 3]


def test_rate_floor_is_a_collapse_reason_that_names_its_key():
    healthy = {
        "kl_dim_mean": 0.5,
        "kl_per_dim": [0.5, 0.5],
        "non_black_accuracy": 0.9,
        "per_class_accuracy": [1.0] * 10,
    }
    record = {**healthy, "rate_bits": 3.24}
    reasons = collapse_reasons(record, MonitorConfig(rate_floor_bits=10))
    assert reasons == ["rate 3.2 bits a grid < monitor.rate_floor_bits=10 (the true KL in bits)"]
    assert reason_kinds(reasons) == ["rate"]
    assert collapse_reasons(record, MonitorConfig()) == []  # 0, the default: off
    assert collapse_reasons(record, MonitorConfig(rate_floor_bits=3)) == []
    # a train record has no bits: the rate floor does not judge it
    assert collapse_reasons(healthy, MonitorConfig(rate_floor_bits=10)) == []
    records = [{**record, "epoch": 1}, {**record, "rate_bits": 12.0, "epoch": 2}]
    assert flagged_epochs(records, MonitorConfig(rate_floor_bits=10), start=1) == [1]


def test_free_bits_figures_are_the_lift_and_the_dims_under_the_floor():
    f = hand_stats()  # kl 2.2, kl_clamped 2.5, kl_per_dim [0.3, 0.01, 2.0]
    figures = free_bits_figures(f, 0.5)
    assert figures["kl_exempt"] == pytest.approx(f["kl_clamped"] - f["kl"])
    assert figures["dims_under_free_bits"] == 2
    assert free_bits_figures(f, 0.0)["dims_under_free_bits"] == 0


def test_a_dims_kl_and_variance_are_taken_over_the_grids_that_reach_it():
    """Three grids: two on a small canvas that does not reach dim 1, one that does. Dim 1's KL is
    the one grid's 0.9, not 0.9 / 3; dim 2, reached by none, has no KL and is judged by nothing."""
    stats = new_stats(3, "cpu")
    black = torch.zeros(1, 2, 2, dtype=torch.long)
    batches = (
        (2, [True, False, False], [[0.4, 0.0, 0.0], [0.2, 0.0, 0.0]], [[1.0, 0, 0], [-1.0, 0, 0]]),
        (1, [True, True, False], [[0.3, 0.9, 0.0]], [[0.0, 0.5, 0]]),
    )
    for b, reached, kl, mu in batches:
        kl, reached = torch.tensor(kl), torch.tensor(reached)
        parts = LossBreakdown(
            *[torch.tensor(1.0)] * 5, kl_per_dim=kl.mean(0), reached=reached.float()
        )
        grids = black.expand(b, 2, 2)
        sizes = torch.full((b, 2), 2)
        add_batch(stats, logits_for(grids), grids, sizes, torch.tensor(mu), kl, parts)
    f = summarize(stats, active_threshold=0.01)
    assert f["kl_per_dim"] == pytest.approx([0.3, 0.9, None])
    assert (f["kl_dim_min"], f["kl_dim_mean"], f["kl_dim_max"]) == pytest.approx((0.3, 0.6, 0.9))
    # dim 0 varies (2/3); dim 1 has one grid, no variance; dim 2 is never reached
    assert f["active_units"] == 1
    assert free_bits_figures({**f, "kl": 0.0, "kl_clamped": 0.0}, 0.5)["dims_under_free_bits"] == 1
    floors = MonitorConfig(kl_floor=0.7, non_black_floor=0.0)
    assert collapse_reasons(f, floors) == [
        "mean KL/dim 0.600 < monitor.kl_floor=0.7 nats (1/2 dims below: 0)"
    ]
