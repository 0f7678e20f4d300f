"""Property-based tests (issue 6): random malformed grids, tasks, config trees and overrides make
the loaders raise a clean ArcVaeError (one line for the user), never another exception."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arcvae.config import ArcVaeError, Config
from arcvae.config_io import _known_keys, load_config
from arcvae.data import load_arc_grids, validate_grid

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-20, 40) | st.floats(allow_nan=True) | st.text(max_size=5)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=25)
colours = st.integers(0, 9)
good_grids = st.integers(1, 32).flatmap(lambda w: st.lists(st.lists(colours, min_size=w, max_size=w), min_size=1, max_size=32))


@st.composite
def damaged_grids(draw):
    """A grid with one kind of damage: a bad cell, a ragged row, an oversized side, or a non-list."""
    grid = draw(good_grids)
    kind = draw(st.sampled_from(["cell", "ragged", "row", "whole"]))
    r = draw(st.integers(0, len(grid) - 1))
    if kind == "cell":
        grid[r][draw(st.integers(0, len(grid[r]) - 1))] = draw(json_values.filter(
            lambda v: type(v) is not int or not 0 <= v <= 9))
    elif kind == "ragged":
        grid[r] = grid[r] + [0] if draw(st.booleans()) or len(grid[r]) == 1 else grid[r][:-1]
    elif kind == "row":
        grid[r] = draw(json_values)
    else:
        grid = draw(json_values)
    return grid


def is_valid(grid) -> bool:
    return (isinstance(grid, list) and 0 < len(grid) <= 30 and all(isinstance(r, list) for r in grid)
            and len({len(r) for r in grid}) == 1 and 0 < len(grid[0]) <= 30
            and all(type(v) is int and 0 <= v <= 9 for r in grid for v in r))


@FUZZ
@given(damaged_grids())
def test_validate_grid_accepts_exactly_the_valid_grids(grid):
    try:
        array = validate_grid(grid, "fuzz")
    except ArcVaeError as exc:
        assert not is_valid(grid)
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
    else:
        assert is_valid(grid)
        assert array.dtype == np.uint8 and array.shape == (len(grid), len(grid[0])) and array.max() <= 9


@st.composite
def damaged_tasks(draw):
    """A task, a mapping of tasks, or any JSON value, with damaged grids placed anywhere in it."""
    grid = damaged_grids() | good_grids
    pair = st.fixed_dictionaries({"input": grid}, optional={"output": grid}) | json_values
    pairs = st.lists(pair, max_size=3) | json_values
    task = st.fixed_dictionaries({"train": pairs}, optional={"test": pairs}) | json_values
    return draw(task | st.dictionaries(st.text(min_size=1, max_size=6), task, min_size=1, max_size=3))


def load_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "task.json"
        path.write_bytes(content)
        try:
            grids = load_arc_grids(str(path))
        except ArcVaeError as exc:
            assert "\n" not in str(exc)
        else:
            assert grids and all(g.dtype == np.uint8 and g.ndim == 2 for g in grids)


@FUZZ
@given(damaged_tasks())
def test_malformed_task_files_raise_a_clean_error(task):
    load_file(json.dumps(task).encode())


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_as_a_task_file_raise_a_clean_error(content):
    load_file(content)


# ---------------------------------------------------------------- configs

KNOWN = _known_keys(Config())
SECTIONS = [k for k in KNOWN if "." not in k]
keys = st.sampled_from(KNOWN) | st.text(min_size=1, max_size=8)
yaml_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) \
    | st.lists(st.integers(-5, 300) | st.text(max_size=3), max_size=4) | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)


@st.composite
def config_trees(draw):
    """Sections known and unknown, holding keys known and unknown, with values of any type."""
    section = st.sampled_from(SECTIONS) | st.text(max_size=6)
    leaf_key = keys.map(lambda k: k.split(".")[-1])
    body = st.dictionaries(leaf_key, yaml_values, max_size=4) | yaml_values
    return draw(st.dictionaries(section, body, max_size=4))


def load_clean(path=None, overrides=None) -> None:
    try:
        cfg = load_config(path, overrides)
    except ArcVaeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(cfg, Config)


@FUZZ
@given(config_trees())
def test_random_config_files_load_or_raise_a_clean_error(tree):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(tree))
        load_clean(path)


overrides = st.tuples(keys, st.text(max_size=10)).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=12)


@FUZZ
@given(st.lists(overrides, max_size=4))
def test_random_overrides_load_or_raise_a_clean_error(overrides):
    load_clean(None, overrides)


@FUZZ
@given(st.text(max_size=120))
def test_random_text_as_a_config_file_loads_or_raises_a_clean_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        load_clean(path)
