"""torch's threads (issue 28): the `train.threads` key, the watch that notices a run's speed
collapsing (on made-up window rates), `load_run` honouring the key, and two training runs that
slow down for real: one whose steps are made slow, one beside CPU-bound processes in their own
sessions."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack

import pytest
import torch
from conftest import REAL_STEP, ROOT, TINY, assert_one_line_error

from arcvae.commands.cli import main
from arcvae.config_io import load_config, load_config_text, to_yaml
from arcvae.latent.trained_run import load_run
from arcvae.models.build import build_model
from arcvae.training import checkpoint as ckpt
from arcvae.training import trainer
from arcvae.training.records import read_metrics
from arcvae.training.threads import REFERENCE_WINDOWS, SpeedWatch, threads_kept

sys.path.insert(0, str(ROOT / "bench"))
from contention import competing  # noqa: E402

# ---------------------------------------------------------------- the key


def test_train_threads_is_auto_by_default_or_a_whole_number():
    assert load_config().train.threads == "auto"
    for value, expected in (("auto", "auto"), ("1", 1), ("3", 3)):
        cfg = load_config(None, [f"train.threads={value}"])
        assert cfg.train.threads == expected
        assert load_config_text(to_yaml(cfg)).train.threads == expected


@pytest.mark.parametrize(
    "value, words",
    [("0", "out of range"), ("two", "choose auto or a whole number"), ("1.5", "bad value")],
)
def test_a_bad_train_threads_is_one_line_naming_the_key(tmp_path, capsys, value, words):
    code = main([*TINY, f"train.threads={value}", "--out", str(tmp_path / "run")])
    assert_one_line_error(code, capsys.readouterr().err, "train.threads", words)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the watch

IDLE = 3000.0


def slowdowns(watch: SpeedWatch, rates: list[float]) -> list:
    """What the watch says about each window (step = its index), the windows that fired only."""
    said = [watch.window(step, rate) for step, rate in enumerate(rates)]
    return [s for s in said if s is not None]


def test_a_collapse_is_reported_once_against_the_median_of_the_early_windows():
    watch = SpeedWatch(2, "cpu")
    fired = slowdowns(watch, [500, IDLE, 3100, 2900, 3050, 52, 48, 50, 51])
    assert len(fired) == 1
    assert fired[0].step == 5 and fired[0].samples_per_s == 52
    assert fired[0].reference_samples_per_s == IDLE  # the median of 3000, 3100, 2900


def test_the_first_windows_never_fire():
    # the warm-up window and the reference windows may be slow (building kernels, a busy moment)
    rates = [10, IDLE, 40, IDLE]
    assert len(rates) == 1 + REFERENCE_WINDOWS
    assert slowdowns(SpeedWatch("auto", "cpu"), [*rates, IDLE, IDLE]) == []


def test_the_watch_re_arms_only_once_the_speed_has_recovered():
    watch = SpeedWatch(2, "cpu")
    # slow, slow, half-way back (still the same slowdown), recovered, slow again
    fired = slowdowns(watch, [IDLE] * 4 + [50, 50, 1000, 2000, 50])
    assert [s.step for s in fired] == [4, 8]


def test_auto_on_the_cpu_switches_to_one_thread_and_says_so():
    torch.set_num_threads(2)  # the unit tests' fixture puts the count back
    (slowdown,) = slowdowns(SpeedWatch("auto", "cpu"), [IDLE] * 4 + [52])
    assert torch.get_num_threads() == 1
    assert (slowdown.threads, slowdown.threads_after) == (2, 1)
    assert slowdown.warning() == (
        "warning: training slowed to 52 samples/s from 3,000 at step 4: another process is "
        "probably using the CPU cores; train.threads=auto now trains on 1 thread (set "
        "train.threads=N to choose)"
    )
    assert slowdown.record() == {
        "step": 4,
        "samples_per_s": 52,
        "reference_samples_per_s": IDLE,
        "threads": 2,
        "threads_after": 1,
    }


@pytest.mark.parametrize(
    "setting, device, words",
    [
        (2, "cpu", "train.threads=2 keeps 2 threads (train.threads=1 or auto"),
        ("auto", "cuda", "the GPU or the CPU cores; train.threads=auto keeps 2 threads here"),
    ],
)
def test_a_number_or_cuda_only_warns(setting, device, words):
    torch.set_num_threads(2)
    (slowdown,) = slowdowns(SpeedWatch(setting, device), [IDLE] * 4 + [52])
    assert torch.get_num_threads() == 2 and slowdown.threads_after == 2
    assert words in slowdown.warning()


def test_training_leaves_the_process_on_the_threads_it_had():
    torch.set_num_threads(2)

    @threads_kept()
    def run():
        torch.set_num_threads(1)

    run()
    assert torch.get_num_threads() == 2


# ---------------------------------------------------------------- load_run


@pytest.mark.parametrize("setting, expected", [(3, 3), ("auto", 2)])
def test_load_run_applies_a_number_and_leaves_auto_to_torch(
    tiny_config, tmp_path, setting, expected
):
    cfg = tiny_config(f"train.threads={setting}")
    payload = {
        "model": build_model(cfg).state_dict(),
        "optimizer": {},
        "controller": None,
        "progress": {"step": 0},
        "rng": {},
        "config_yaml": to_yaml(cfg),
    }
    ckpt.save_checkpoint(tmp_path / "run", 0, payload)
    torch.set_num_threads(2)
    load_run(tmp_path / "run", device="cpu")
    assert torch.get_num_threads() == expected


# ---------------------------------------------------------------- real runs that slow down

# 4-step windows, 8 steps an epoch: the warm-up window and the reference windows are steps 1-16;
# the slowdown starts with step 17 and lasts the 8 steps of epoch 3.
SLOW_FROM = 1 + (1 + REFERENCE_WINDOWS) * 4
EPOCHS = "train.epochs=3"


def reported_slowdowns(summary: dict, run_dir, out: str) -> list[str]:
    """The warning lines, after checking that the first names auto's switch, that a `slowdown`
    record precedes its window's train record, and that summary.json lists the records; training
    went on on 1 thread."""
    warnings = [line for line in out.splitlines() if "warning: training slowed" in line]
    assert warnings and "train.threads=auto" in warnings[0], out
    records = read_metrics(run_dir)
    at = [i for i, r in enumerate(records) if r["split"] == "slowdown"]
    first, after = records[at[0]], records[at[0] + 1]
    assert after["split"] == "train" and after["step"] == first["step"] >= SLOW_FROM + 3
    assert first["samples_per_s"] < 0.25 * first["reference_samples_per_s"]
    assert first["threads_after"] == 1
    listed = [records[i] for i in at]
    assert summary["slowdowns"] == listed
    assert json.loads((run_dir / "summary.json").read_text())["slowdowns"] == listed
    return warnings


@pytest.mark.slow
def test_auto_reports_steps_that_turn_slow(tiny_config, tmp_path, monkeypatch, capsys):
    # Each step from SLOW_FROM on lasts six times the slowest step of the reference windows, so its
    # window runs below a quarter of the reference whatever else the machine is doing.
    seconds = []

    def step(*args, **kwargs):
        start = time.perf_counter()
        out = REAL_STEP(*args, **kwargs)
        took = time.perf_counter() - start
        if len(seconds) < SLOW_FROM - 1:
            seconds.append(took)
        else:
            time.sleep(max(0.0, 6 * max(seconds[4:]) - took))
        return out

    monkeypatch.setattr(trainer, "train_step", step)
    threads = torch.get_num_threads()
    summary = trainer.train(tiny_config(EPOCHS), tmp_path / "run")
    assert torch.get_num_threads() == threads
    assert len(reported_slowdowns(summary, tmp_path / "run", capsys.readouterr().out)) == 1


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one thread has no other thread to wait for")
def test_auto_reports_processes_in_other_sessions_on_every_core(
    tiny_config, tmp_path, monkeypatch, capsys
):
    # Four competitors a core, not one: where the cores were already shared while the reference was
    # measured (another training run beside the tests), one a core left the fall too small to
    # report in half the tries; four leave this session too small a share for that.
    calls = []
    with ExitStack() as competitors:

        def step(*args, **kwargs):
            calls.append(1)
            if len(calls) == SLOW_FROM:
                competitors.enter_context(competing(4 * os.cpu_count()))
            return REAL_STEP(*args, **kwargs)

        monkeypatch.setattr(trainer, "train_step", step)
        summary = trainer.train(tiny_config(EPOCHS), tmp_path / "run")
    reported_slowdowns(summary, tmp_path / "run", capsys.readouterr().out)
