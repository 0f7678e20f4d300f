"""β schedules pinned at chosen points; cyclical against the reference code's own loop (Fu et al. 2019)."""
from __future__ import annotations

import math

import pytest

from arcvae.cli import main
from arcvae.config import ConfigError, load_config
from arcvae.schedules import scheduled_beta


def beta_cfg(*overrides):
    return load_config(None, list(overrides)).beta


def test_linear_warmup_and_ultra_conservative_points():
    lw = beta_cfg("beta.schedule=linear_warmup")  # defaults 5 / 20 / 0.5
    assert [scheduled_beta(lw, e, 40) for e in (0, 4.99, 5, 15, 25, 40)] == pytest.approx([0, 0, 0, 0.25, 0.5, 0.5])
    uc = beta_cfg("beta.schedule=ultra_conservative")  # 20 epochs at 0, 60 of ramp, max 0.1
    assert [scheduled_beta(uc, e, 100) for e in (0, 20, 50, 80, 100)] == pytest.approx([0, 0, 0.05, 0.1, 0.1])
    assert scheduled_beta(beta_cfg("beta.schedule=constant", "beta.max_beta=0.3"), 7, 10) == 0.3


def reference_cycle(n_iter, n_cycle, ratio, shape):
    """The reference notebook's loop (plot_schedules.ipynb), rewritten: values in [0, 1]."""
    values = [1.0] * n_iter
    period = n_iter / n_cycle
    step = 1.0 / (period * ratio)
    for c in range(n_cycle):
        v, i = 0.0, 0
        while v <= 1.0 and int(i + c * period) < n_iter:
            values[int(i + c * period)] = {"linear": v, "sigmoid": 1.0 / (1.0 + math.exp(-(v * 12.0 - 6.0))),
                                           "cosine": 0.5 - 0.5 * math.cos(v * math.pi)}[shape]
            v += step
            i += 1
    return values


@pytest.mark.parametrize("shape", ["linear", "cosine", "sigmoid"])
def test_cyclical_matches_reference(shape):
    n_iter = 400  # divisible by n_cycles, so the reference's int() indexing is exact
    cfg = beta_cfg("beta.schedule=cyclical", "beta.max_beta=1.0", f"beta.shape={shape}")
    ours = [scheduled_beta(cfg, i, n_iter) for i in range(n_iter)]
    assert ours == pytest.approx(reference_cycle(n_iter, cfg.n_cycles, cfg.ratio, shape), abs=1e-9)
    assert ours[100] == pytest.approx(reference_cycle(n_iter, 4, 0.5, shape)[100])  # a cycle boundary restarts


def test_negative_and_unknown_values_are_one_line_errors():
    with pytest.raises(ConfigError, match="beta.max_beta"):
        load_config(None, ["beta.max_beta=-0.1"])
    with pytest.raises(ConfigError, match="did you mean 'cyclical'"):
        load_config(None, ["beta.schedule=cyclic"])


def test_show_schedule_prints_and_plots(tmp_path, capsys):
    assert main(["--config", "configs/cpu_small.yaml", "--show-schedule", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "0 0" in lines and "4 0.2" in lines
    assert (tmp_path / "plots" / "beta_schedule.png").stat().st_size > 0
