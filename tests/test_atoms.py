"""The atoms generator (issue 25): every grid follows the rules, the factors describe exactly what
is on the canvas, the draws are reproducible; the `atoms` command and `data.source: atoms`."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_line_error

from arcvae.commands.cli import main
from arcvae.config import DataConfig
from arcvae.data import atoms
from arcvae.data.grids import atoms_canvas, load_datasets
from arcvae.data.validity import ATOMS, Check, is_valid, objects
from arcvae.errors import DataError
from arcvae.training.class_weights import fingerprint

N = 3000


@pytest.fixture(scope="module")
def generated() -> dict[str, np.ndarray]:
    return atoms.generate(N, seed=7)


def described_objects(arrays: dict, i: int) -> list[tuple]:
    """(colour, pixels, row, col, height, width) of each object the factors of grid i hold."""
    slots = range(arrays["n_objects"][i])
    names = ("colour", "pixels", "row", "col", "height", "width")
    return sorted(tuple(int(arrays[name][i, k]) for name in names) for k in slots)


def found_objects(grid: np.ndarray) -> list[tuple]:
    """The same, of the components `validity.objects` finds on the canvas."""
    found = []
    for o in objects(grid):
        rows, cols = np.array(o.cells).T
        box = (rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        found.append((o.colour, o.pixels, *map(int, box)))
    return sorted(found)


def test_every_grid_follows_the_rules(generated):
    grids = generated["grids"]
    assert grids.shape == (N, 16, 16) and grids.dtype == np.uint8
    assert all(is_valid(g, 16) for g in grids)


def test_the_factors_are_the_objects_on_the_canvas(generated):
    """Each grid's components are exactly its factors' objects: colour, size and bounding box."""
    for i, grid in enumerate(generated["grids"]):
        assert found_objects(grid) == described_objects(generated, i), i
    pixels = np.where(generated["pixels"] >= 0, generated["pixels"], 0).sum(axis=1)
    assert np.array_equal((generated["grids"] > 0).sum(axis=(1, 2)), pixels)


def test_slots_are_filled_in_order_and_absent_ones_are_minus_one(generated):
    filled = generated["kind"] >= 0  # (N, 4)
    assert np.array_equal(filled.sum(axis=1), generated["n_objects"])
    assert np.array_equal(filled, np.arange(4) < generated["n_objects"][:, None])
    for name in atoms.SLOT_FACTORS:
        assert (generated[name][~filled] == -1).all() and (generated[name][filled] >= 0).all()


def test_each_kind_has_its_shape(generated):
    kind, pixels, height, width = (generated[k] for k in ("kind", "pixels", "height", "width"))
    rectangle, line, pattern = (
        kind == atoms.KINDS.index(k) for k in ("rectangle", "line", "pattern")
    )
    assert np.array_equal(pixels[rectangle], height[rectangle] * width[rectangle])
    assert (np.minimum(height, width)[line] == 1).all()
    assert np.array_equal(pixels[line], np.maximum(height, width)[line])
    assert (height[pattern] <= 3).all() and (width[pattern] <= 3).all()
    assert pixels[kind >= 0].min() == 2 and pixels.max() == 15


def test_the_draws_have_the_documented_shares(generated):
    kinds = np.bincount(generated["kind"][generated["kind"] >= 0], minlength=4)
    assert kinds / kinds.sum() == pytest.approx(atoms.KIND_SHARES, abs=0.03)
    colours = np.bincount(generated["colour"][generated["colour"] >= 0], minlength=10)
    assert colours[0] == 0 and colours[1:] / colours.sum() == pytest.approx([1 / 9] * 9, abs=0.02)
    counts = np.bincount(generated["n_objects"], minlength=5)
    assert counts[0] == 0 and counts[1:] / N == pytest.approx([0.25] * 4, abs=0.04)  # few dropped


def test_the_factors_table_names_its_columns(generated):
    names = generated["factor_names"].tolist()
    assert names == [f"{name}_0" for name in atoms.SLOT_FACTORS] + ["n_objects"]
    for column, name in enumerate(names):
        expected = generated["n_objects"] if name == "n_objects" else generated[name[:-2]][:, 0]
        assert np.array_equal(generated["factors"][:, column], expected)
    assert str(generated["generator"]) == atoms.GENERATOR and int(generated["canvas"]) == 16


def test_the_same_seed_gives_the_same_grids_and_another_seed_others():
    first, again, other = atoms.generate(200, 3), atoms.generate(200, 3), atoms.generate(200, 4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["grids"], other["grids"])


def test_a_larger_canvas():
    arrays = atoms.generate(300, 0, size=30)
    assert arrays["grids"].shape == (300, 30, 30) and int(arrays["canvas"]) == 30
    assert all(is_valid(g, 30) for g in arrays["grids"])
    with pytest.raises(ValueError):
        atoms.generate(10, 0, size=14)  # a 15-pixel line would not fit


def test_every_pattern_is_one_connected_shape_in_the_corner():
    assert len(atoms.PATTERNS) == len({p.tobytes() for p in atoms.PATTERNS})
    for pattern in atoms.PATTERNS:
        assert len(objects(pattern.astype(np.uint8))) == 1
        assert pattern[0].any() and pattern[:, 0].any()  # moved to the top-left corner


# ---------------------------------------------------------------- the command and the data source


def test_the_command_writes_what_generate_gives(tmp_path, capsys):
    out = tmp_path / "sub" / "atoms.npz"
    assert main(["atoms", "--n", "50", "--seed", "5", "--out", str(out)]) == 0
    assert "wrote 50 grids of 16x16" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as written:
        expected = atoms.generate(50, 5)
        assert sorted(written.files) == sorted(expected)
        assert all(np.array_equal(written[k], expected[k]) for k in expected)
    assert [p.name for p in out.parent.iterdir()] == ["atoms.npz"]  # no temporary file left


@pytest.mark.parametrize(
    "args, words",
    [
        (["--size", "14"], "--size 14: must be 15-30"),
        (["--out", "grids.npy"], "the file must end in .npz"),
        (["--n", "0"], "'0' is not a whole number >= 1"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["atoms", "--n", "5", "--out", "grids.npz", *args])
    except SystemExit as exc:  # argparse's own errors exit from the parser
        code = exc.code
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert list(tmp_path.iterdir()) == []


def test_the_atoms_source_trains_on_seed_0_and_validates_on_seed_1():
    cfg = DataConfig(source="atoms", grid_size=16, atoms_train=40, atoms_val=30, val_limit=20)
    train, val = load_datasets(cfg)
    assert np.array_equal(train.pixels.numpy(), atoms.generate(40, 0)["grids"])
    assert np.array_equal(val.pixels.numpy(), atoms.generate(30, 1)["grids"][:20])
    assert np.array_equal(train.extras["factors"], atoms.generate(40, 0)["factors"])
    assert len(val.extras["kind"]) == 20  # the extras follow val_limit
    assert (train.sizes == 16).all() and atoms_canvas(cfg) == Check(ATOMS, 16)
    with pytest.raises(DataError, match="data.source=atoms: data.grid_size=12 is below 15"):
        load_datasets(DataConfig(source="atoms", grid_size=12))


def test_the_atoms_marker_of_a_file(tmp_path):
    marked, plain = tmp_path / "marked.npz", tmp_path / "plain.npz"
    arrays = atoms.generate(20, 0, size=20)
    np.savez(marked, **arrays)
    np.savez(plain, grids=arrays["grids"])
    assert atoms_canvas(DataConfig(source=str(marked))) == Check(ATOMS, 20)
    assert atoms_canvas(DataConfig(source=str(plain))) is None
    assert atoms_canvas(DataConfig(source="arc1")) is None


def test_class_weight_cache_keys_tell_atoms_data_apart(tmp_path):
    """The key hashes the grids themselves: other counts or canvases give other keys."""

    def key(**data) -> str:
        train, _ = load_datasets(DataConfig(source="atoms", atoms_val=1, **data))
        return fingerprint(train, "atoms", True, "inverse_sqrt", 0.9999, 0.0, "symbol")

    assert len({key(atoms_train=30, grid_size=16), key(atoms_train=31, grid_size=16)}) == 2
    assert key(atoms_train=30, grid_size=16) != key(atoms_train=30, grid_size=17)
    assert key(atoms_train=30, grid_size=16) == key(atoms_train=30, grid_size=16)
