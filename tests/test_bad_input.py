"""Bad input everywhere (issue 6): one line on stderr naming the thing and the problem, exit 2,
no traceback, and nothing half-written (no run folder, no cache, no checkpoint)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY, assert_one_line_error

from arcvae.commands.cli import main
from arcvae.config_io import load_config, to_yaml
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.training.class_weights import class_weights, fingerprint


def task(grid) -> dict:
    return {"train": [{"input": grid, "output": [[1]]}], "test": []}


# name -> (file contents, words the message must hold)
BAD_FILES = {
    "malformed.json": ('{"train": [', "not valid JSON"),
    "not_utf8.json": (b"\xff\xfe\x00", "not valid JSON"),
    "a_list.json": ("[1, 2, 3]", "neither an ARC task"),
    "train_not_list.json": (
        '{"train": 5}',
        "a task must be an object with a 'train' list of pairs",
    ),
    "pair_without_input.json": (
        {"train": [{"output": [[1]]}]},
        "train[0]: a pair must be an object with 'input'",
    ),
    "colour_10.json": (task([[1, 10]]), "train[0].input: colour 10 is not an integer 0-9"),
    "colour_minus_1.json": (task([[-1]]), "colour -1 is not an integer 0-9"),
    "colour_float.json": (task([[1.0]]), "colour 1.0 is not an integer 0-9"),
    "colour_bool.json": (task([[True]]), "colour true is not an integer 0-9"),
    "colour_string.json": (task([["1"]]), 'colour "1" is not an integer 0-9'),
    "ragged.json": (task([[1, 2], [3]]), "ragged grid (rows of lengths [1, 2])"),
    "empty_grid.json": (task([]), "a grid must be a non-empty list of rows"),
    "empty_row.json": (task([[]]), "a grid row is empty"),
    "31x31.json": (task([[0] * 31] * 31), "grid is 31x31, ARC grids are at most 30x30"),
    "deep.json": ("[" * 100_000, "nested too deeply"),
}


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "cache").exists()


def train_args(tmp_path: Path, *overrides: str) -> list[str]:
    return TINY + [
        f"data.cache_dir={tmp_path / 'cache'}",
        *overrides,
        "--out",
        str(tmp_path / "run"),
    ]


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_data_file(tmp_path, capsys, name):
    content, words = BAD_FILES[name]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, err = run_cli(train_args(tmp_path, f"data.source={path}"), capsys)
    assert_one_line_error(code, err, str(path), words)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    "source, words",
    [
        ("empty_dir", "no .json task files in this folder"),
        ("missing.json", "no such file or folder"),
        ("dir_named.json", "cannot read"),
    ],
)
def test_bad_data_source(tmp_path, capsys, source, words):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "holder").mkdir()
    # a folder of tasks holding a folder named *.json
    (tmp_path / "holder" / "dir_named.json").mkdir()
    path = tmp_path / ("holder" if source == "dir_named.json" else source)
    code, err = run_cli(train_args(tmp_path, f"data.source={path}"), capsys)
    assert_one_line_error(code, err, str(path), words)
    assert_nothing_written(tmp_path)


def test_task_with_no_grids(tmp_path, capsys):
    path = tmp_path / "no_pairs.json"
    path.write_text('{"train": [], "test": []}')
    code, err = run_cli(train_args(tmp_path, f"data.source={path}"), capsys)
    assert_one_line_error(code, err, str(path), "no grids found")
    assert_nothing_written(tmp_path)


def colour_12_at_57() -> np.ndarray:
    grids = np.zeros((60, 3, 3), dtype=np.int64)
    grids[57, 1, 2] = 12
    grids[59, 0, 0] = 15  # a later bad grid: the message names the first
    return grids


GRIDS = np.ones((2, 3, 3), dtype=np.uint8)
# name -> (the arrays written (.npz: by name, .npy: the one), words the message must hold)
BAD_NUMPY_FILES = {
    "float.npy": (np.zeros((2, 3, 3)), "grids: colours must be integers 0-9, not float64"),
    "bool.npy": (np.ones((2, 3, 3), dtype=bool), "colours must be integers 0-9, not bool"),
    "two_d.npy": (np.zeros((3, 3), dtype=np.uint8), "grids: shape (3, 3), not a non-empty"),
    "empty.npz": ({"grids": np.zeros((0, 3, 3), dtype=np.uint8)}, "grids: shape (0, 3, 3)"),
    "train.npz": ({"grids": colour_12_at_57()}, "grids[57]: colour 12 is not an integer 0-9"),
    "negative.npz": (
        {"grids": np.array([[[1]], [[-1]]], dtype=np.int8)},
        "grids[1]: colour -1 is not an integer 0-9",
    ),
    "wide.npy": (
        np.zeros((2, 3, 31), dtype=np.uint8),
        "grids are 3x31, ARC grids are at most 30x30",
    ),
    "sizes_too_large.npz": (
        {"grids": GRIDS, "sizes": np.array([[3, 3], [4, 3]])},
        "sizes[1]: 4x3 is not a grid size within the grids' 3x3",
    ),
    "sizes_zero.npz": (
        {"grids": GRIDS, "sizes": np.array([[3, 3], [0, 2]])},
        "sizes[1]: 0x2 is not a grid size",
    ),
    "sizes_shape.npz": (
        {"grids": GRIDS, "sizes": np.array([3, 3])},
        "sizes: must be integers of shape (2, 2), each grid's rows and cols, not int64 of shape",
    ),
    "no_grids.npz": (
        {"boards": GRIDS, "labels": np.zeros(2)},
        "2 arrays (boards, labels) but none named 'grids'",
    ),
    "pickled.npy": (
        np.array([{"grid": 1}], dtype=object),
        "not a numpy array readable without pickle (Object arrays cannot be loaded",
    ),
    "pickled_member.npz": (
        {"grids": GRIDS, "factors": np.array([None, 1], dtype=object)},
        "pickled_member.npz: factors: not a numpy array readable without pickle",
    ),
    "corrupt.npz": (b"PK\x03\x04 cut short", "not a numpy array readable without pickle"),
    "truncated.npy": (
        b"\x93NUMPY\x01\x00v\x00{'descr'",
        "not a numpy array readable without pickle",
    ),
    "not_numpy.npy": (b"just text", "not a numpy array readable without pickle"),
}


@pytest.mark.parametrize("name", BAD_NUMPY_FILES)
def test_bad_numpy_file(tmp_path, capsys, name):
    content, words = BAD_NUMPY_FILES[name]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content, allow_pickle=True)
    else:
        np.save(path, content, allow_pickle=True)
    code, err = run_cli(train_args(tmp_path, f"data.source={path}"), capsys)
    assert_one_line_error(code, err, f"{path}: ", words)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    "source, words",
    [
        ("missing.npz", "missing.npz: no such file"),
        ("folder.npz", "folder.npz: cannot read"),
        ("big.npz", "big.npz: no grid fits in data.grid_size=10"),
    ],
)
def test_bad_numpy_source(tmp_path, capsys, source, words):
    (tmp_path / "folder.npz").mkdir()
    np.savez(tmp_path / "big.npz", grids=np.ones((3, 12, 12), dtype=np.uint8))
    code, err = run_cli(train_args(tmp_path, f"data.source={tmp_path / source}"), capsys)
    assert_one_line_error(code, err, words)
    assert_nothing_written(tmp_path)


def test_a_bad_numpy_validation_file(tmp_path, capsys):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, GRIDS)
    np.save(bad, np.zeros((2, 3, 3)))
    code, err = run_cli(
        train_args(tmp_path, f"data.source={good}", f"data.val_source={bad}"), capsys
    )
    assert_one_line_error(code, err, f"{bad}: grids: colours must be integers 0-9, not float64")
    assert_nothing_written(tmp_path)


def test_a_layout_file_without_the_array_a_split_names(tmp_path, capsys):
    """A train/val/test layout file: data.split=evaluation names its `val`, which it lacks."""
    path = tmp_path / "splits.npz"
    np.savez(path, train=GRIDS, test=GRIDS)
    code, err = run_cli(
        train_args(tmp_path, f"data.source={path}", "data.split=evaluation"), capsys
    )
    assert_one_line_error(code, err, f"{path}: no array 'val' (split 'evaluation'); the file holds")
    assert_nothing_written(tmp_path)


def test_a_bad_array_of_a_layout_file(tmp_path, capsys):
    path = tmp_path / "splits.npz"
    np.savez(path, train=GRIDS, val=colour_12_at_57())
    code, err = run_cli(train_args(tmp_path, f"data.source={path}"), capsys)
    assert_one_line_error(code, err, f"{path}: val[57]: colour 12 is not an integer 0-9")
    assert_nothing_written(tmp_path)


def test_atoms_on_a_canvas_too_small(tmp_path, capsys):
    code, err = run_cli(train_args(tmp_path, "data.source=atoms"), capsys)  # TINY: grid_size 10
    assert_one_line_error(code, err, "data.source=atoms: data.grid_size=10 is below 15")
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.lrr=0.1", ["unknown config key 'train.lrr'", "did you mean 'train.lr'?"]),
        ("train.lr=abc", ["'train.lr'", "could not be converted to Float"]),
        ("train.epochs=1.5", ["'train.epochs'", "could not be converted to Integer"]),
        ("train.lr=-1", ["train.lr: -1.0 is out of range (must be > 0)"]),
        ("train.lr=.nan", ["train.lr: nan is not a finite number"]),
        ("beta.max_beta=-0.5", ["beta.max_beta: -0.5 is out of range (must be >= 0)"]),
        (
            "beta.schedule=cyclic",
            ["beta.schedule: unknown value 'cyclic'", "did you mean 'cyclical'?"],
        ),
        ("data.grid_size=31", ["data.grid_size: 31 is out of range"]),
        ("data.val_fraction=1", ["data.val_fraction: 1.0 is out of range (must be >= 0 and < 1)"]),
        ("data.val_fraction=-0.1", ["data.val_fraction: -0.1 is out of range (must be >= 0"]),
        ("data.atoms_train=0", ["data.atoms_train: 0 is out of range (must be >= 1)"]),
        ("data.atoms_val=0", ["data.atoms_val: 0 is out of range (must be >= 1)"]),
        ("model.channels=[a]", ["'model.channels[0]'"]),
        ("train=3", ["'train' must be a section of keys"]),
        ("trainlr", ["override 'trainlr' is not of the form key.sub=value"]),
        ("train.lr=[", ["override 'train.lr=['", "not valid YAML"]),
        ("=3", ["override '=3'", "not a dotted key"]),
    ],
)
def test_bad_override(tmp_path, capsys, override, words):
    code, err = run_cli(train_args(tmp_path, override), capsys)
    assert_one_line_error(code, err, *words)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    "text, words",
    [
        ("train: {lr: ", ["not valid YAML (line 1)"]),
        ("- 1\n", ["a config file must be a mapping of sections"]),
        ("train:\n  lr: 0.1\n  lrr: 0.2\n", ["unknown config key 'train.lrr'"]),
        ("beta:\n  schedule: sawtooth\n", ["beta.schedule: unknown value 'sawtooth'"]),
        (b"\xff\xfe", ["not a text file"]),
    ],
)
def test_bad_config_file(tmp_path, capsys, text, words):
    path = tmp_path / "bad.yaml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    code, err = run_cli(train_args(tmp_path, "--config", str(path)), capsys)
    assert_one_line_error(code, err, *words)
    assert_nothing_written(tmp_path)


def test_missing_config_file(tmp_path, capsys):
    code, err = run_cli(train_args(tmp_path, "--config", str(tmp_path / "nope.yaml")), capsys)
    assert_one_line_error(code, err, "nope.yaml: config file not found")


def test_unknown_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(train_args(tmp_path, "--frobnicate"))
    err = capsys.readouterr().err
    assert (
        exc.value.code == 2 and err == "error: unrecognized arguments: --frobnicate (see --help)\n"
    )
    assert_nothing_written(tmp_path)


# ---------------------------------------------------------------- resume and run folders


def fake_run(tmp_path: Path) -> Path:
    """A run folder with a valid config.yaml and whatever checkpoints the test puts there."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(load_config(None, TINY)))
    return run


def test_resume_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, err = run_cli(["--resume", str(tmp_path)], capsys)
    assert_one_line_error(code, err, str(tmp_path), "not a run folder (no config.yaml)")


def test_resume_without_a_checkpoint(tmp_path, capsys):
    run = fake_run(tmp_path)
    code, err = run_cli(["--resume", str(run)], capsys)
    assert_one_line_error(code, err, str(run), "no checkpoint to resume from")


@pytest.mark.parametrize(
    "payload, words",
    [
        (
            b"garbage",
            "no usable checkpoint (step_000000008.pt: corrupt or unreadable checkpoint "
            "(UnpicklingError))",
        ),
        (
            {"weights": torch.ones(2)},
            "step_000000008.pt: not an arcvae checkpoint (missing model, optimizer",
        ),
        # arbitrary pickle: refused
        ({"model": Path("/")}, "corrupt or unreadable checkpoint (UnpicklingError)"),
    ],
)
def test_resume_from_a_bad_checkpoint(tmp_path, capsys, payload, words):
    run = fake_run(tmp_path)
    path = run / "checkpoints" / "step_000000008.pt"
    path.write_bytes(payload) if isinstance(payload, bytes) else torch.save(payload, path)
    code, err = run_cli(["--resume", str(run)], capsys)
    assert_one_line_error(code, err, words)
    assert not (run / "metrics.jsonl").exists()


def test_output_folder_holding_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"split": "train", "step": 1}\n')
    code, err = run_cli(train_args(tmp_path), capsys)
    assert_one_line_error(
        code, err, f"{run}: already holds a run", "--overwrite", f"--resume {run}"
    )
    assert (run / "metrics.jsonl").read_text() == '{"split": "train", "step": 1}\n'  # untouched
    assert not (tmp_path / "cache").exists()  # refused before any data was loaded


def test_corrupt_class_weight_cache_is_rebuilt(tmp_path, capsys):
    """The cache is derived data: a corrupt one is reported in one line and recomputed, not
    fatal."""
    grids = pad_grids(load_arc_grids("arc1", "training"), 10)
    key = fingerprint(grids, "arc1", True, "inverse_sqrt", 0.9999, 0.0)
    path = tmp_path / f"class_weights_{key}.json"
    path.write_text("{not json")
    weights = class_weights(grids, "arc1", True, "inverse_sqrt", 0.9999, 0.0, tmp_path)
    assert weights.source == "computed"
    assert f"warning: class-weight cache {path} is unusable" in capsys.readouterr().out
    assert json.loads(path.read_text())["fingerprint"] == key


# ---------------------------------------------------------------- the real entry point: no
# traceback


@pytest.mark.parametrize(
    "args, words",
    [
        (["data.source=/no/such/file.json"], "/no/such/file.json: no such file or folder"),
        (["train.lr=-1"], "train.lr: -1.0 is out of range"),
    ],
)
@pytest.mark.slow
def test_entry_point_prints_one_line(tmp_path, args, words):
    done = subprocess.run(
        [sys.executable, "train_vae.py", *args, "--out", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 2
    assert (
        done.stderr.startswith("error: ") and words in done.stderr and done.stderr.count("\n") == 1
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "run").exists()


def test_entry_point_names_a_bad_numpy_grid(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, grids=colour_12_at_57())
    done = subprocess.run(
        [sys.executable, "train_vae.py", f"data.source={path}", "--out", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    assert done.stderr == f"error: {path}: grids[57]: colour 12 is not an integer 0-9\n"
    assert not (tmp_path / "run").exists()
