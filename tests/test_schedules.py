"""β schedules: values pinned at chosen points, cyclical against the reference code's own loop
(Fu et al. 2019), config errors and warnings, the adaptive controller on a toy KL plant,
--show-schedule, and short real runs whose metrics.jsonl follows the schedule."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch
from conftest import ROOT, assert_picture

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.errors import ConfigError
from arcvae.training.records import read_metrics
from arcvae.training.schedules import (
    AdaptiveBeta,
    learning_rate,
    ramp_shape,
    schedule_warnings,
    scheduled_beta,
)
from arcvae.training.trainer import train

SHIPPED = ["constant", "linear_warmup", "ultra_conservative", "cyclical", "adaptive"]


def beta_cfg(*overrides):
    return load_config(None, list(overrides)).beta


# --- fixed schedules at chosen points ------------------------------------------------------------


def test_linear_warmup_defaults_and_points():
    lw = beta_cfg("beta.schedule=linear_warmup")
    assert (lw.warmup_epochs, lw.ramp_epochs, lw.max_beta) == (1.0, 2.0, 0.5)
    # start, inside warm-up, end of warm-up, mid-ramp, a quarter in, end of ramp, after, end of run
    points = [0, 0.99, 1, 2, 1.5, 3, 5, 10]
    assert [scheduled_beta(lw, e, 10) for e in points] == pytest.approx(
        [0, 0, 0, 0.25, 0.125, 0.5, 0.5, 0.5]
    )
    custom = beta_cfg("beta.schedule=linear_warmup", "beta.warmup_epochs=5", "beta.ramp_epochs=20")
    assert [scheduled_beta(custom, e, 40) for e in (4.99, 15, 25)] == pytest.approx([0, 0.25, 0.5])


def test_ultra_conservative_defaults_and_points():
    uc = beta_cfg("beta.schedule=ultra_conservative")
    assert (uc.warmup_epochs, uc.ramp_epochs, uc.max_beta) == (20.0, 60.0, 0.1)
    points = [0, 19.5, 20, 35, 50, 80, 100]
    assert [scheduled_beta(uc, e, 100) for e in points] == pytest.approx(
        [0, 0, 0, 0.025, 0.05, 0.1, 0.1]
    )


def test_constant_and_a_ramp_of_zero_epochs():
    const = beta_cfg("beta.schedule=constant")
    assert [scheduled_beta(const, e, 10) for e in (0, 0.5, 10)] == [0.1, 0.1, 0.1]
    step = beta_cfg("beta.warmup_epochs=2", "beta.ramp_epochs=0")
    assert [scheduled_beta(step, e, 10) for e in (1.99, 2, 5)] == [0.0, 0.5, 0.5]


def test_cyclical_points():
    # 4 cycles, ratio 0.5, linear, max 0.5; 40 epochs: 10 per cycle
    cyc = beta_cfg("beta.schedule=cyclical")
    points = [0, 2.5, 5, 7, 10, 12.5, 30, 35, 40]
    assert [scheduled_beta(cyc, e, 40) for e in points] == pytest.approx(
        [0, 0.25, 0.5, 0.5, 0, 0.25, 0, 0.5, 0.5]
    )


# --- cyclical against the reference implementation ------------------------------------------------


def reference_cycle(n_iter, n_cycle, ratio, shape):
    """The reference notebook's frange_cycle_* loop (plot_schedules.ipynb), rewritten, with start=0,
    stop=1: one value per iteration."""
    values = [1.0] * n_iter
    period = n_iter / n_cycle
    step = 1.0 / (period * ratio)
    for c in range(n_cycle):
        v, i = 0.0, 0
        # the bound check only the linear variant has
        while v <= 1.0 and int(i + c * period) < n_iter:
            values[int(i + c * period)] = {
                "linear": v,
                "sigmoid": 1.0 / (1.0 + math.exp(-(v * 12.0 - 6.0))),
                "cosine": 0.5 - 0.5 * math.cos(v * math.pi),
            }[shape]
            v += step
            i += 1
    return values


@pytest.mark.parametrize("shape", ["linear", "cosine", "sigmoid"])
@pytest.mark.parametrize(
    "n_iter, n_cycle, ratio", [(400, 4, 0.5), (600, 3, 0.3), (250, 5, 1.0), (1000, 4, 0.75)]
)
def test_cyclical_matches_reference(shape, n_iter, n_cycle, ratio):
    """Iteration counts divisible by n_cycle, so the reference's int() indexing is exact."""
    cfg = beta_cfg(
        "beta.schedule=cyclical",
        "beta.max_beta=1.0",
        f"beta.shape={shape}",
        f"beta.n_cycles={n_cycle}",
        f"beta.ratio={ratio}",
    )
    expected = reference_cycle(n_iter, n_cycle, ratio, shape)
    period = n_iter // n_cycle
    for i in range(n_iter):
        ours = scheduled_beta(cfg, i, n_iter)  # one "epoch" per iteration: progress i / n_iter
        if Fraction(i % period) / (period * Fraction(str(ratio))) == 1:
            # The exact end of a rise: the reference's summed float v lands a hair either side of 1
            # here (so it writes shape(1) or leaves 1); we take u = 1 itself, as `v <= stop` means.
            assert ours == pytest.approx(ramp_shape(1.0, shape), abs=1e-12)
        else:
            assert ours == pytest.approx(expected[i], abs=1e-9), i
    # a cycle restarts
    assert scheduled_beta(cfg, period, n_iter) == pytest.approx(ramp_shape(0.0, shape))


@pytest.mark.parametrize(
    "steps_per_epoch, epochs, n_cycles", [(625, 3, 5), (625, 6, 10), (5, 3, 5), (128, 40, 4)]
)
def test_each_cycle_restarts_at_zero_at_its_first_step(steps_per_epoch, epochs, n_cycles):
    """β is computed from step / steps_per_epoch; float division must not leave a boundary step at
    max."""
    cfg = beta_cfg("beta.schedule=cyclical", f"beta.n_cycles={n_cycles}")
    total = steps_per_epoch * epochs
    for c in range(1, n_cycles):
        first = c * total // n_cycles
        if (c * total) % n_cycles == 0:
            assert scheduled_beta(cfg, first / steps_per_epoch, epochs) == pytest.approx(
                0.0, abs=1e-12
            )
        assert scheduled_beta(cfg, (first - 1) / steps_per_epoch, epochs) == cfg.max_beta


# --- config errors and warnings
# --------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "beta.max_beta",
        "beta.min_beta",
        "beta.warmup_epochs",
        "beta.ramp_epochs",
        "beta.target_kl_per_dim",
        "beta.kp",
        "beta.ki",
        "loss.free_bits",
    ],
)
def test_negative_values_are_one_line_errors_naming_the_key(key):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}=-0.5"])
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


@pytest.mark.parametrize("override", ["beta.n_cycles=0", "beta.ratio=0", "beta.ratio=1.5"])
def test_cyclical_parameters_out_of_range(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config(None, ["beta.schedule=cyclical", override])


def test_unknown_schedule_is_refused_with_a_suggestion(capsys):
    with pytest.raises(
        ConfigError, match="beta.schedule: unknown value 'cyclic' \\(did you mean 'cyclical'\\?\\)"
    ):
        load_config(None, ["beta.schedule=cyclic"])
    assert main(["--show-schedule", "beta.schedule=ultra_conservativ"]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'ultra_conservative'" in err and "\n" not in err


def test_warm_up_and_ramp_longer_than_training_is_a_warning_not_an_error():
    cfg = load_config(None, ["beta.schedule=ultra_conservative", "train.epochs=50"])
    [note] = schedule_warnings(cfg.beta, cfg.train.epochs)
    assert "80 epochs" in note and "train.epochs=50" in note and "ends at 0.05" in note


def test_other_warnings():
    ignored = load_config(None, ["beta.schedule=cyclical", "beta.warmup_epochs=3"])
    assert any("ignored by the cyclical" in n for n in schedule_warnings(ignored.beta, 20))
    adaptive = load_config(None, ["beta.schedule=adaptive", "beta.target_kl_per_dim=0.2"])
    assert any("cannot reach" in n for n in schedule_warnings(adaptive.beta, 20, free_bits=0.3))
    assert schedule_warnings(adaptive.beta, 20, free_bits=0.1) == []


# --- adaptive: a PI controller on a toy KL plant
# -----------------------------------------------------


def controller() -> AdaptiveBeta:
    """The shipped defaults: target 0.5 nats/dim, β in [0, 0.5], kp 0.1, ki 0.002."""
    return AdaptiveBeta.from_config(beta_cfg("beta.schedule=adaptive"))


def run_plant(
    ctrl: AdaptiveBeta,
    equilibrium,
    steps: int,
    kl: float,
    tau: float = 300.0,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[list[float], list[float], float]:
    """KL/dim relaxes toward equilibrium(β, t) with a lag of `tau` steps (an optimiser does not
    follow β at once) and is measured with multiplicative batch noise. Returns β and true KL per
    step."""
    rng = random.Random(seed)
    betas, kls = [], []
    for t in range(steps):
        beta = float(ctrl.beta)
        kl += (equilibrium(beta, t) - kl) / tau
        ctrl.update(torch.tensor(kl * math.exp(rng.gauss(0.0, noise))))
        betas.append(beta)
        kls.append(kl)
    return betas, kls, kl


def falling(k0: float, b0: float):
    """A plant whose KL/dim falls as β rises: k0 at β = 0, halved at β = b0."""
    return lambda beta, t: k0 / (1.0 + beta / b0)


@pytest.mark.parametrize(
    "k0, b0, tau",
    [
        (5.0, 0.05, 300.0),
        (1.0, 0.5, 100.0),  # typical
        (2.0, 0.005, 100.0),  # steep and fast: old ki x 5 rang
        (5.0, 0.02, 2000.0),  # slow: old defaults swung 25%
    ],
)
def test_adaptive_settles_on_target_without_sustained_oscillation(k0, b0, tau):
    ctrl = controller()
    steps = 10_000  # 16 epochs of 625 steps
    betas, kls, _ = run_plant(ctrl, falling(k0, b0), steps, kl=0.05, tau=tau)
    beta_star = b0 * (k0 / 0.5 - 1.0)  # where the plant's KL equals the target
    assert all(0.0 <= b <= 0.5 for b in betas)
    tail_kl, tail_beta = kls[steps // 2 :], betas[steps // 2 :]
    assert max(abs(k / 0.5 - 1) for k in tail_kl) < 0.2  # KL held within 20% of target
    assert abs(sum(tail_beta) / len(tail_beta) - beta_star) < 0.2 * beta_star + 0.01
    swing = [
        max(tail_kl[i : i + 1000]) - min(tail_kl[i : i + 1000])
        for i in range(0, len(tail_kl), 1000)
    ]
    assert swing[-1] < 0.15 and swing[-1] <= swing[0] + 0.02  # no growing or sustained swing


def test_adaptive_lowers_beta_when_kl_collapses_and_recovers():
    ctrl = controller()
    # The code collapses (KL/dim ~0.01 whatever β) for 3000 steps, then becomes healthy again.
    collapsed, _, kl = run_plant(ctrl, lambda beta, t: 0.01, 3000, kl=0.5)
    assert collapsed[-1] == 0.0  # collapse pressure switched off
    assert float(ctrl.integral) > -0.1  # not wound down while pinned at 0
    betas, kls, _ = run_plant(ctrl, falling(5.0, 0.05), 6000, kl=kl)
    assert next(t for t, b in enumerate(betas) if b > 0.1) < 1000  # back up within ~1.5 epochs
    assert abs(kls[-1] / 0.5 - 1) < 0.1


def test_adaptive_anti_windup_leaves_max_quickly():
    ctrl = controller()
    # For 5000 steps KL stays far above target even at max β; then the plant changes so that the
    # target needs β = 0.02. A wound-up integral (0.002 x 1 nat x 5000 steps = 10) would take
    # ~10,000 steps to unwind at a few tenths of a nat of error; the frozen one lets go soon after
    # KL crosses.
    pinned, _, kl = run_plant(ctrl, lambda beta, t: 2.0 - beta, 5000, kl=1.0)
    assert min(pinned[-1000:]) > 0.499  # pinned at max_beta (noise aside)
    assert float(ctrl.integral) <= 0.5  # frozen at the bound, not ~10
    betas, kls, _ = run_plant(ctrl, falling(0.6, 0.1), 5000, kl=kl)
    crossing = next(t for t, k in enumerate(kls) if k < 0.5)
    left_max = next(t for t, b in enumerate(betas) if b < 0.45)
    assert left_max - crossing < 400
    assert abs(sum(betas[-1000:]) / 1000 - 0.02) < 0.01 and abs(kls[-1] / 0.5 - 1) < 0.1


def test_adaptive_integral_is_bounded_while_saturated():
    ctrl = controller()
    run_plant(ctrl, lambda beta, t: 3.0, 4000, kl=3.0)  # KL 3 nats/dim, never reachable
    assert float(ctrl.beta) == pytest.approx(0.5, abs=0.01)  # at max_beta (noise aside)
    assert float(ctrl.integral) <= 0.5  # frozen at the bound, not 0.002 x 2.5 x 4000


def test_adaptive_state_round_trip_continues_identically():
    a = controller()
    run_plant(a, falling(5.0, 0.05), 500, kl=0.05)
    b = controller()
    b.load_state_dict(a.state_dict())
    for kl in (0.7, 0.6, 0.4):
        assert float(a.update(torch.tensor(kl))) == float(b.update(torch.tensor(kl)))


# --- shipped configs and --show-schedule
# -------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_consistent_and_show_their_schedule(name, tmp_path, capsys):
    path = ROOT / "configs" / f"{name}.yaml"
    cfg = load_config(path)
    assert cfg.beta.schedule == name
    assert schedule_warnings(cfg.beta, cfg.train.epochs, cfg.loss.free_bits) == []
    assert main(["--config", str(path), "--show-schedule", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"# beta schedule {name}:")
    plot = tmp_path / "plots" / "beta_schedule.png"
    if name == "adaptive":
        assert any("no fixed curve" in line for line in lines) and not plot.exists()
        return
    table = [line.split() for line in lines if line[0].isdigit()]
    assert [int(e) for e, _ in table] == list(range(cfg.train.epochs + 1))
    assert [float(b) for _, b in table] == pytest.approx(
        [scheduled_beta(cfg.beta, e, cfg.train.epochs) for e in range(cfg.train.epochs + 1)],
        abs=1e-6,
    )
    # every shipped schedule reaches its top
    assert float(table[-1][1]) == pytest.approx(cfg.beta.max_beta)
    assert_picture(plot)
    assert not (tmp_path / "metrics.jsonl").exists()  # nothing trained


def test_show_schedule_with_overrides_prints_the_warning(tmp_path, capsys):
    assert (
        main(
            [
                "--config",
                str(ROOT / "configs" / "ultra_conservative.yaml"),
                "--show-schedule",
                "--out",
                str(tmp_path),
                "train.epochs=50",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "# warning: beta: warm-up + ramp (80 epochs)" in out and "\n50 0.05\n" in out


# --- short real runs: β in metrics.jsonl follows the schedule
# ----------------------------------------


def check_logged_beta(run_dir, cfg):
    """A train record's β is the one its last step used (step - 1); an evaluation's is β at its
    step."""
    steps_per_epoch = cfg.data.samples_per_epoch // cfg.train.batch_size
    records = read_metrics(run_dir)
    assert records
    for r in records:
        at = r["step"] - 1 if r["split"] == "train" else r["step"]
        assert r["beta"] == pytest.approx(
            scheduled_beta(cfg.beta, at / steps_per_epoch, cfg.train.epochs), abs=1e-7
        )
    return records


@pytest.mark.slow
def test_ultra_conservative_run_follows_the_schedule(tiny_config, tmp_path):
    cfg = tiny_config(
        "beta.schedule=ultra_conservative",
        "beta.warmup_epochs=1",
        "beta.ramp_epochs=2",
        "train.epochs=4",
    )
    assert cfg.beta.max_beta == 0.1  # the schedule's own default, scaled-down epochs only
    train(cfg, tmp_path / "run")
    records = check_logged_beta(tmp_path / "run", cfg)
    betas = [r["beta"] for r in records if r["split"] == "train"]
    assert betas[0] == 0.0 and betas[-1] == pytest.approx(0.1)
    assert any(0.0 < b < 0.1 for b in betas)  # the ramp was logged on its way up


@pytest.mark.slow
def test_cyclical_run_follows_the_schedule(tiny_config, tmp_path):
    cfg = tiny_config(
        "beta.schedule=cyclical", "beta.n_cycles=2", "beta.shape=cosine", "train.log_every=1"
    )
    train(cfg, tmp_path / "run")
    records = check_logged_beta(tmp_path / "run", cfg)
    by_step = {r["step"]: r["beta"] for r in records if r["split"] == "train"}
    assert len(by_step) == 16  # 2 epochs x 8 steps, every step logged
    assert by_step[1] == 0.0 and by_step[9] == 0.0  # each cycle's first step starts at 0
    assert by_step[8] == by_step[16] == pytest.approx(0.5)  # and ends held at max


def test_cosine_learning_rate_falls_from_lr_to_the_floor_and_stays():
    train_cfg = load_config(
        None, ["train.lr_schedule=cosine", "train.lr=0.002", "train.lr_floor=0.1"]
    ).train
    rates = [learning_rate(train_cfg, k / 100) for k in range(101)]
    assert (
        rates[0] == pytest.approx(0.002)
        and rates[50] == pytest.approx(0.0011)
        and rates[100] == pytest.approx(0.0002)
    )
    assert all(a > b for a, b in zip(rates, rates[1:]))
    # past the end (a speedrun's last step) held
    assert learning_rate(train_cfg, 1.3) == pytest.approx(0.0002)
    constant = load_config(None, ["train.lr=0.002", "train.lr_schedule=constant"]).train
    assert {learning_rate(constant, k / 10) for k in range(11)} == {0.002}


@pytest.mark.slow
def test_a_cosine_run_logs_the_rate_of_each_step(tiny_config, tmp_path):
    cfg = tiny_config("train.lr_schedule=cosine", "train.log_every=1")
    train(cfg, tmp_path / "run")
    records = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    total = len(records)  # every step logged
    assert [r["lr"] for r in records] == pytest.approx(
        [learning_rate(cfg.train, (r["step"] - 1) / total) for r in records]
    )
    assert (
        records[0]["lr"] == pytest.approx(cfg.train.lr) and records[-1]["lr"] < 0.2 * cfg.train.lr
    )


def test_every_schedule_says_which_parameters_it_reads():
    from arcvae.config import CHOICES, BetaConfig
    from arcvae.training.schedules import SCHEDULE_PARAMS

    assert set(SCHEDULE_PARAMS) == set(CHOICES["beta.schedule"])
    assert all(hasattr(BetaConfig(), key) for keys in SCHEDULE_PARAMS.values() for key in keys)
