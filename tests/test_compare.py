"""`python -m arcvae compare` on small real runs, whole and damaged."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import TINY, assert_picture

from arcvae.commands.cli import main
from arcvae.commands.compare import compare_main
from arcvae.config_io import load_config
from arcvae.training.metrics import reason_kinds
from arcvae.training.records import read_metrics
from arcvae.training.trainer import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs, and copies of the first: killed (no summary.json, last line of metrics.jsonl
    cut in half) and without its config.yaml."""
    root = tmp_path_factory.mktemp("runs")
    cache = f"data.cache_dir={root / 'cache'}"
    train(
        load_config(
            None, TINY + [cache, "beta.schedule=constant", "beta.max_beta=0.1", "loss.free_bits=0"]
        ),
        root / "const",
    )
    train(
        load_config(
            None, TINY + [cache, "beta.warmup_epochs=1", "beta.ramp_epochs=1", "loss.free_bits=0.5"]
        ),
        root / "warmup_fb",
    )
    shutil.copytree(root / "const", root / "killed")
    (root / "killed" / "summary.json").unlink()
    text = (root / "killed" / "metrics.jsonl").read_text()
    (root / "killed" / "metrics.jsonl").write_text(
        text[: len(text) - len(text.splitlines()[-1]) // 2 - 1]
    )
    shutil.copytree(root / "const", root / "no_config")
    (root / "no_config" / "config.yaml").unlink()
    (root / "not_a_run").mkdir()
    return root


def rows_by_run(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}


@pytest.mark.slow
def test_table_lists_whole_and_damaged_runs(runs, capsys):
    names = [str(runs / n) for n in ("const", "warmup_fb", "killed", "no_config")]
    assert compare_main(names) == 0
    out = capsys.readouterr().out
    rows = rows_by_run(out)
    assert out.splitlines()[0].split()[:3] == ["run", "schedule", "epochs"]
    summary = json.loads((runs / "const" / "summary.json").read_text())
    assert rows[names[0]].split()[1:3] == ["constant", "2/2"]
    kinds = "+".join(reason_kinds([r for e in summary["collapse_events"] for r in e["reasons"]]))
    cell = f"ep{summary['first_collapse_epoch']} {kinds}" + (
        ", recovered" if summary["recovered_from_collapse"] else ""
    )
    assert " ".join(rows[names[0]].split()).endswith(f"{cell} {summary['status']}")
    assert "linear_warmup fb=0.5" in rows[names[1]]
    # The killed run: figures from the last complete evaluation (epoch 1; epoch 2's line was cut).
    epoch1 = [r for r in read_metrics(runs / "killed") if r["split"] == "val"][-1]
    assert epoch1["epoch"] == 1
    assert " 1/2 " in rows[names[2]] and f"{epoch1['kl_dim_mean']:.3f}" in rows[names[2]]
    assert rows[names[2]].endswith("no summary")
    # ... and the alarm judged again from those records, as training judged epoch 1.
    first = summary["collapse_events"][0]
    assert rows[names[2]].split()[-4] == f"ep{first['epoch']}" and rows[names[2]].split()[
        -3
    ] == "+".join(reason_kinds(first["reasons"]))
    # the schedule comes from summary.json when config.yaml is gone
    assert "constant" in rows[names[3]]
    assert f"{names[2]}: no summary.json (interrupted or killed?)" in out
    assert "metrics.jsonl: 1 unreadable line(s) skipped" in out
    assert f"{names[3]}: no config.yaml" in out


@pytest.mark.slow
def test_paths_that_are_not_runs_get_a_line_each(runs, capsys):
    missing, empty = str(runs / "nowhere"), str(runs / "not_a_run")
    assert compare_main([str(runs / "const"), missing, empty]) == 0
    out = capsys.readouterr().out
    assert f"{missing}: no such folder" in out
    assert f"{empty}: not a run folder (no config.yaml, metrics.jsonl or summary.json)" in out
    assert compare_main([missing, empty]) == 2
    assert "none of the 2 path(s) holds a readable run" in capsys.readouterr().err


@pytest.mark.slow
def test_out_writes_overlaid_curves(runs, tmp_path, capsys):
    assert (
        main(
            [
                "compare",
                str(runs / "const"),
                str(runs / "warmup_fb"),
                str(runs / "killed"),
                "--out",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    assert_picture(tmp_path / "cmp" / "compare.png")
    (tmp_path / "file").write_text("")
    assert main(["compare", str(runs / "const"), "--out", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


DIP = "non-black accuracy 20.0% < monitor.non_black_floor=0.3 (colours below: 1 blue 0%)"


def evaluation(epoch: int, non_black: float) -> dict:
    """A logged evaluation, healthy but for its non-black accuracy."""
    return {
        "split": "val",
        "step": 8 * epoch,
        "epoch": epoch,
        "beta": 0.1,
        "kl_dim_mean": 0.5,
        "kl_per_dim": [0.5, 0.5],
        "active_units": 2,
        "non_black_accuracy": non_black,
        "per_class_accuracy": [1.0, non_black] + [None] * 8,
        "grid_accuracy": 0.0,
    }


def test_a_run_that_recovered_says_so_beside_its_first_alarm(tmp_path, capsys):
    summarised = tmp_path / "summarised"
    summarised.mkdir()
    (summarised / "summary.json").write_text(
        json.dumps(
            {
                "status": "completed",
                "epochs": 2,
                "collapse_events": [{"epoch": 1, "step": 8, "reasons": [DIP]}],
                "collapsed_at_end": False,
                "recovered_from_collapse": True,
            }
        )
    )
    # no summary: the alarm judged again from the records, with the default floors
    logged = tmp_path / "logged"
    logged.mkdir()
    records = [evaluation(1, 0.2), evaluation(2, 0.8)]
    (logged / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert compare_main([str(summarised), str(logged)]) == 0
    rows = rows_by_run(capsys.readouterr().out)
    assert " ".join(rows[str(summarised)].split()).endswith("ep1 accuracy, recovered completed")
    assert " ".join(rows[str(logged)].split()).endswith("ep1 accuracy, recovered no summary")
    # still under the floor at its last evaluation: no recovery to report
    records.append(evaluation(3, 0.1))
    (logged / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert compare_main([str(logged)]) == 0
    assert " ".join(rows_by_run(capsys.readouterr().out)[str(logged)].split()).endswith(
        "ep1 accuracy no summary"
    )
