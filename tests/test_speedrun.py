"""bench/speedrun.py: which evaluations may set a time to quality, and what speedrun.json holds."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT, TINY

sys.path.insert(0, str(ROOT / "bench"))
import speedrun  # noqa: E402


def point(minutes, beta=0.5, active=8, kl_mean=0.5, non_black=0.0, exact=0.0) -> dict:
    return {
        "minutes": minutes,
        "beta": beta,
        "active_units": active,
        "kl_dim_mean": kl_mean,
        "non_black_accuracy": non_black,
        "grid_accuracy": exact,
    }


def test_only_evaluations_at_full_beta_with_every_unit_active_and_kl_above_the_floor_set_a_time():
    history = [
        point(1, beta=0.25, non_black=0.9, exact=0.6),  # β still rising
        point(2, active=7, non_black=0.9, exact=0.6),  # a dead dimension
        point(3, kl_mean=0.04, non_black=0.9, exact=0.6),  # mean KL/dim under the 0.05 floor
        point(4, non_black=0.72, exact=0.12),
        point(5, non_black=0.60, exact=0.30),  # non-black fell back: 70% keeps minute 4
        point(6, non_black=0.86, exact=0.30),
    ]
    reached = speedrun.times_to(history, max_beta=0.5, latent_dim=8, kl_floor=0.05)
    assert reached == {
        "non_black_50": 4,
        "non_black_70": 4,
        "non_black_85": 6,
        "non_black_95": None,
        "exact_10": 4,
        "exact_25": 5,
        "exact_50": None,
    }


@pytest.mark.slow
def test_a_tiny_speedrun_writes_its_figures_and_history(tmp_path):
    out = tmp_path / "sr"
    result = speedrun.main(
        [
            "--minutes",
            "0.03",
            "--eval-every-minutes",
            "0.01",
            "--out",
            str(out),
            *TINY,
            "train.epochs=10",
            "beta.warmup_epochs=1",
            "beta.ramp_epochs=2",  # the recipe's, after TINY's
            f"data.cache_dir={tmp_path / 'cache'}",
        ]
    )
    saved = json.loads((out / "speedrun.json").read_text())
    assert saved["time_to"] == result["time_to"] and set(saved["time_to"]) == set(speedrun.TARGETS)
    for key in (
        "minutes",
        "beta",
        "latent_dim",
        "active_units",
        "min_kl_per_dim",
        "val_non_black_accuracy",
        "val_grid_accuracy",
        "val_pixel_accuracy",
        "samples_seen",
        "eval_minutes",
        "config",
    ):
        assert key in saved
    assert len(saved["per_class_accuracy"]) == 10 and saved["latent_dim"] == 8
    history = saved["history"]
    assert len(history) >= 2 and all(p["val_grids"] == 64 for p in history)
    minutes, samples = [p["minutes"] for p in history], [p["samples"] for p in history]
    assert minutes == sorted(minutes) and samples == sorted(samples) and samples[0] > 0
    assert minutes[-1] >= 0.03 - 1e-9 and saved["samples_seen"] == samples[-1]
    assert history[-1]["beta"] == saved["beta"] == 0.5  # the budget's end is past warm-up and ramp
    assert all(t is None or t <= minutes[-1] for t in saved["time_to"].values())
