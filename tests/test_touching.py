"""The touching generator (the researchers' 8-connected grids whose objects may touch): every grid
follows the touching rules, the factors describe what was placed, the draws are reproducible and
the same as the researchers' standalone generator's; `--style touching`, `--splits` and reading the
train/val/test layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, assert_one_line_error

from arcvae.commands.cli import main
from arcvae.config import DataConfig
from arcvae.data import atoms
from arcvae.data import touching as t
from arcvae.data.grids import (
    LAYOUT,
    atoms_canvas,
    load_datasets,
    load_grids,
    named_grids,
    split_seed,
)
from arcvae.data.validity import ATOMS, NEIGHBOURS8, TOUCHING, Check, is_valid, objects
from arcvae.errors import DataError

N = 6000  # the standalone tests drew 20,000; the thresholds below hold with room at 6,000


def objects8(grid):
    return objects(grid, NEIGHBOURS8)


def valid(grid, canvas):
    return is_valid(grid, canvas, TOUCHING)


@pytest.fixture(scope="module")
def data():
    return t.generate(N, seed=0)


@pytest.fixture(scope="module")
def components(data):
    return [objects8(grid) for grid in data["grids"]]


def test_deterministic_per_seed():
    a, b = t.generate(2000, seed=5), t.generate(2000, seed=5)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["grids"], t.generate(2000, seed=6)["grids"])


def test_shapes_and_dtypes(data):
    assert data["grids"].shape == (N, 16, 16) and data["grids"].dtype == np.uint8
    assert data["n_objects"].shape == (N,) and data["n_objects"].dtype == np.int16
    assert data["n_placed"].shape == (N,) and data["n_placed"].dtype == np.int16
    for name in t.SLOT_ARRAYS:
        assert data[name].shape == (N, 6) and data[name].dtype == np.int16, name
    assert data["factors"].shape == (N, len(t.FACTOR_NAMES)) and data["factors"].dtype == np.int16
    assert tuple(data["factor_names"].tolist()) == t.FACTOR_NAMES
    assert str(data["generator"]) == "arcvae.atoms touching v1"
    assert int(data["canvas"]) == 16
    # factors: object 0's slot values, then the components
    for i, name in enumerate(t.SLOT_FACTORS):
        np.testing.assert_array_equal(data["factors"][:, i], data[name][:, 0])
    np.testing.assert_array_equal(data["factors"][:, -1], data["n_objects"])


def test_slots_describe_the_placed_objects(data):
    placed = data["kind"] >= 0
    np.testing.assert_array_equal(placed.sum(axis=1), data["n_placed"])
    # slots are filled from 0 with no gap
    np.testing.assert_array_equal(placed, np.arange(6)[None, :] < data["n_placed"][:, None])
    for name in t.SLOT_ARRAYS:
        if name != "variant":
            assert (data[name][placed] >= 0).all() and (data[name][~placed] == -1).all(), name
    assert ((data["colour"][placed] >= 1) & (data["colour"][placed] <= 9)).all()
    assert (data["row"][placed] + data["height"][placed] <= 16).all()
    assert (data["col"][placed] + data["width"][placed] <= 16).all()
    # the placed objects' pixels are the grid's non-black pixels (no overlap)
    np.testing.assert_array_equal(
        np.where(placed, data["pixels"], 0).sum(axis=1), (data["grids"] > 0).sum(axis=(1, 2))
    )
    assert (data["n_placed"] >= data["n_objects"]).all()


def test_every_grid_valid(data):
    assert all(valid(grid, 16) for grid in data["grids"])


def test_component_counts(data, components):
    counts = np.array([len(found) for found in components])
    np.testing.assert_array_equal(counts, data["n_objects"])  # n_objects counts components
    assert counts.min() >= 1 and counts.max() <= 6
    assert set(np.unique(counts).tolist()) == set(range(1, 7))
    sizes = np.array([o.pixels for found in components for o in found])
    assert sizes.min() >= 2 and sizes.max() <= t.MAX_COMPONENT_PIXELS
    # each component is single-colour and 8-connected by construction of objects8; colours 1-9
    assert all(1 <= o.colour <= 9 for found in components for o in found)


def test_black_share(data):
    assert abs((data["grids"] == 0).mean() - 0.93) <= 0.02


def test_every_kind_appears(data):
    placed = data["kind"] >= 0
    kinds = data["kind"][placed]
    assert set(kinds.tolist()) == set(range(len(t.KINDS)))
    shares = np.bincount(kinds, minlength=4) / kinds.size
    np.testing.assert_allclose(shares, t.KIND_SHARES, atol=0.02)
    lines = data["variant"][placed & (data["kind"] == t.KINDS.index("line"))]
    assert set(lines.tolist()) == set(range(len(t.LINE_DIRECTIONS)))
    patterns = data["variant"][placed & (data["kind"] == t.KINDS.index("pattern"))]
    assert set(patterns.tolist()) == set(range(len(t.PATTERN_KINDS)))
    others = data["variant"][placed & (data["kind"] <= t.KINDS.index("rectangle"))]
    assert (others == -1).all()


def test_shapes_are_one_8_connected_object():
    """Diagonal lines, checkerboards and every other pattern are one object under 8-connectivity
    (4-connectivity would cut a diagonal line into single pixels)."""
    length = np.arange(2, 9)
    for direction in (2, 3):
        masks = t.lines(length, np.full(len(length), direction))
        for L, mask in zip(length, masks):
            assert mask.sum() == L and mask.any(axis=0).sum() == L and mask.any(axis=1).sum() == L
            found = objects8(mask.astype(np.uint8))
            assert len(found) == 1 and found[0].pixels == L
            assert _components4(mask) == L  # 4-connectivity would cut it into single pixels
    for mask in t.PATTERNS:
        assert len(objects8(mask.astype(np.uint8))) == 1
    checker = t.PATTERNS[np.isin(t.PATTERN_VARIANT, [0, 1])]
    assert len(checker) == 4 and sorted(checker.sum(axis=(1, 2)).tolist()) == [2, 2, 4, 5]
    rng = np.random.default_rng(0)
    masks = atoms.blobs(rng, np.full(500, 15), t.STEPS8)
    assert (masks.sum(axis=(1, 2)) == 15).all()
    assert all(len(objects8(m.astype(np.uint8))) == 1 for m in masks)
    # the blobs use the diagonals: some are not 4-connected
    assert any(_components4(m) > 1 for m in masks)


def _components4(mask: np.ndarray) -> int:
    todo, seen, count = list(zip(*np.nonzero(mask))), set(), 0
    cells = set(todo)
    for start in todo:
        if start in seen:
            continue
        count += 1
        stack = [start]
        seen.add(start)
        while stack:
            y, x = stack.pop()
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                n = (y + dy, x + dx)
                if n in cells and n not in seen:
                    seen.add(n)
                    stack.append(n)
    return count


def test_diagonals_and_checkerboards_survive_in_grids(data, components):
    """Every placed diagonal line and checkerboard lies within one component of its grid."""
    line, pattern = t.KINDS.index("line"), t.KINDS.index("pattern")
    checked = {"diagonal": 0, "checker": 0}
    for i in range(N):
        label = np.full((16, 16), -1)
        for k, o in enumerate(components[i]):
            label[tuple(np.array(o.cells).T)] = k
        for s in range(int(data["n_placed"][i])):
            kind, variant = data["kind"][i, s], data["variant"][i, s]
            r, c, h, w = (int(data[name][i, s]) for name in ("row", "col", "height", "width"))
            colour = data["colour"][i, s]
            if kind == line and variant >= 2:
                step = np.arange(h)
                cols = c + (step if variant == 2 else h - 1 - step)
                assert (data["grids"][i, r + step, cols] == colour).all()
                assert len(set(label[r + step, cols].tolist())) == 1
                checked["diagonal"] += 1
            elif kind == pattern and variant <= 1:
                box = data["grids"][i, r : r + h, c : c + w] == colour
                assert box.sum() >= data["pixels"][i, s]
                assert len(set(label[r : r + h, c : c + w][box].tolist())) == 1
                checked["checker"] += 1
    assert checked["diagonal"] > 1000 and checked["checker"] > 500


def test_same_colour_touching_objects_merge():
    # by hand: a 2x2 square and a diagonal line meeting at a corner
    grid = np.zeros((16, 16), dtype=np.uint8)
    grid[0:2, 0:2] = 3
    grid[2, 2] = grid[3, 3] = 3
    assert len(objects8(grid)) == 1 and objects8(grid)[0].pixels == 6
    grid[2, 2] = grid[3, 3] = 4  # another colour touching stays apart
    assert [o.pixels for o in objects8(grid)] == [4, 2]
    # through `place`: two 2x2 squares touching at a corner, side by side, or apart
    square = atoms.shape_bits(atoms.boxes(np.array([2]), np.array([2])), 17)[0]

    def count(colours, second):
        tries_row = np.array([[0] * atoms.TRIES, [second[0]] * atoms.TRIES])
        tries_col = np.array([[0] * atoms.TRIES, [second[1]] * atoms.TRIES])
        row, col, comps = t.place(
            np.array([2]), [square, square], np.array(colours), tries_row, tries_col, 16
        )
        assert row.tolist() == [0, second[0]] and col.tolist() == [0, second[1]]
        return int(comps[0])

    assert count([5, 5], (2, 2)) == 1  # corner
    assert count([5, 5], (0, 2)) == 1  # side
    assert count([5, 5], (2, 0)) == 1  # below
    assert count([5, 6], (2, 2)) == 2  # other colour
    assert count([5, 5], (0, 3)) == 2  # a gap
    assert count([5, 5], (3, 3)) == 2
    # a third object bridging two same-colour components merges all three
    at = [(0, 0), (0, 4), (0, 2)]  # the first two apart, the third between them
    tries_row = np.array([[r] * atoms.TRIES for r, _ in at])
    tries_col = np.array([[c] * atoms.TRIES for _, c in at])
    _, _, comps = t.place(
        np.array([3]), [square] * 3, np.array([7, 7, 7]), tries_row, tries_col, 16
    )
    assert comps.tolist() == [1]
    # overlap is refused: the second square has no free position and is dropped
    row, _, comps = t.place(
        np.array([2]),
        [square, square],
        np.array([1, 1]),
        np.zeros((2, 20), int),
        np.zeros((2, 20), int),
        16,
    )
    assert row.tolist() == [0, -1] and comps.tolist() == [1]


def test_merges_happen_in_generated_grids(data, components):
    merged = np.flatnonzero(data["n_objects"] < data["n_placed"])
    assert merged.size > 100
    biggest = max(o.pixels for found in components for o in found)
    assert biggest > t.BLOB_PIXELS[1]  # merged components beyond one blob's 15 pixels


def test_is_valid_rejects():
    good = np.zeros((16, 16), dtype=np.uint8)
    good[2, 2:5] = 1
    assert valid(good, 16)
    assert not valid(np.zeros((16, 16), dtype=np.uint8), 16)  # no object
    assert not valid(good, 15)  # another canvas
    single = good.copy()
    single[10, 10] = 2  # a 1-pixel component
    assert not valid(single, 16)
    many = np.zeros((16, 16), dtype=np.uint8)
    for k in range(7):  # 7 components
        many[2 * k, 0:2] = 1
    assert not valid(many, 16)
    many[12] = 0
    assert valid(many, 16)  # 6 are fine
    bad_colour = good.copy()
    bad_colour[2, 2:5] = 10
    assert not valid(bad_colour, 16)
    assert not valid(good.astype(float), 16)
    big = np.zeros((16, 16), dtype=np.uint8)
    big[:10, :16] = 3  # 160 pixels, more than six 5x5 rectangles
    assert not valid(big, 16)


def test_sizes_and_arguments():
    a = t.generate(300, seed=1, size=30)
    assert a["grids"].shape == (300, 30, 30) and int(a["canvas"]) == 30
    assert all(valid(g, 30) for g in a["grids"])
    for n, size in ((0, 16), (5, 14), (5, 31)):
        with pytest.raises(ValueError):
            t.generate(n, 0, size)


def test_the_same_grids_as_the_standalone_generator():
    """The researchers' files were drawn by the standalone touching.py: the same seed must give the
    same grids here (this digest is the standalone's generate(300, seed=0))."""
    import hashlib

    digest = hashlib.sha256(t.generate(300, seed=0)["grids"].tobytes()).hexdigest()
    assert digest == "87a788292af08ce7c0fd0d14cee5557d6c7fa8ea82be4fa43ebdf027218403ea"


# ---------------------------------------------------------------- the touching rules, by hand


def painted(*objects_at: tuple[int, list[tuple[int, int]]], size: int = 8) -> np.ndarray:
    """A black size x size grid with each (colour, cells) painted on it."""
    grid = np.zeros((size, size), dtype=np.uint8)
    for colour, cells in objects_at:
        grid[tuple(np.array(cells).T)] = colour
    return grid


DIAGONAL = [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_a_diagonal_line_is_one_touching_object_and_four_atoms():
    grid = painted((4, DIAGONAL))
    assert [(o.colour, o.pixels) for o in objects8(grid)] == [(4, 4)]
    assert is_valid(grid, 8, TOUCHING)
    assert len(objects(grid)) == 4 and not is_valid(grid, 8, ATOMS)  # single pixels under atoms


def test_touching_objects_of_one_colour_are_one_and_of_two_colours_two():
    square = [(4, 4), (4, 5), (5, 4), (5, 5)]
    same = painted((3, DIAGONAL), (3, square))  # meeting at a corner: (3, 3) and (4, 4)
    assert [(o.colour, o.pixels) for o in objects8(same)] == [(3, 8)]
    assert len(objects(same)) == 5  # 4-connectivity: the four diagonal pixels and the square
    two = painted((3, DIAGONAL), (6, square))
    assert sorted((o.colour, o.pixels) for o in objects8(two)) == [(3, 4), (6, 4)]
    side = painted((2, [(0, 0), (0, 1)]), (7, [(1, 0), (1, 1)]))  # sharing a side
    assert sorted((o.colour, o.pixels) for o in objects8(side)) == [(2, 2), (7, 2)]
    assert is_valid(same, 8, TOUCHING) and is_valid(two, 8, TOUCHING)


def test_the_touching_counts_and_sizes():
    six = painted(*((c + 1, [(c, 0), (c, 1)]) for c in range(6)))  # stacked, six colours
    assert len(objects8(six)) == 6 and is_valid(six, 8, TOUCHING)
    assert not is_valid(six, 8, ATOMS)  # more than 4
    seven = painted(*((c + 1, [(c, 0), (c, 1)]) for c in range(7)))
    assert not is_valid(seven, 8, TOUCHING)
    assert not is_valid(painted((5, [(0, 0)])), 8, TOUCHING)  # one pixel
    large = np.zeros((16, 16), dtype=np.uint8)
    large[:10, :15] = 3  # 150 pixels: six touching 5x5 rectangles at most
    assert is_valid(large, 16, TOUCHING) and not is_valid(large, 16, ATOMS)
    large[10, 0] = 3
    assert not is_valid(large, 16, TOUCHING)


def test_sample_reports_under_the_rules_of_the_files_marker(tmp_path):
    """`sample` asks `atoms_canvas` which rules judge its samples: the marker decides."""
    from arcvae.data.validity import compare, report_lines

    marked = tmp_path / "touching.npz"
    np.savez(marked, **t.generate(20, 0, size=20))
    check = atoms_canvas(DataConfig(source=str(marked)))
    assert check == Check(TOUCHING, 20)
    layout = tmp_path / "layout.npz"
    np.savez(layout, train=t.generate(5, 0)["grids"], val=t.generate(5, 1)["grids"])
    assert atoms_canvas(DataConfig(source=str(layout))) is None  # no marker: no rules guessed
    grid = painted((4, DIAGONAL), size=20)
    report = compare([grid], [grid], check, "1 validation grid")
    assert report["valid_share"] == 1 and report["rules"] == "touching"
    assert len(report["samples"]["n_objects"]) == 8 and len(report["samples"]["pixels"]) == 26
    lines = report_lines(report)
    assert lines[0].startswith("valid (validity.is_valid, the touching rules, on 20x20): 100.0%")
    assert compare([grid], [grid], 20, "x")["valid_share"] == 0  # an int: the atoms rules


# ---------------------------------------------------------------- the command


def test_the_command_writes_touching_grids(tmp_path, capsys):
    out = tmp_path / "touching.npz"
    assert (
        main(["atoms", "--style", "touching", "--n", "50", "--seed", "5", "--out", str(out)]) == 0
    )
    assert "wrote 50 grids of 16x16 (touching)" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as written:
        expected = t.generate(50, 5)
        assert sorted(written.files) == sorted(expected)
        assert all(np.array_equal(written[k], expected[k]) for k in expected)


@pytest.mark.parametrize("style", ["atoms", "touching"])
def test_splits_write_the_researchers_layout(tmp_path, capsys, style):
    out = tmp_path / "splits.npz"
    args = ["atoms", "--style", style, "--splits", "30,20,10", "--seed", "3", "--out", str(out)]
    assert main(args) == 0
    assert "wrote 30/20/10 train/val/test grids of 16x16" in capsys.readouterr().out
    generate = {"atoms": atoms.generate, "touching": t.generate}[style]
    with np.load(out, allow_pickle=False) as written:
        assert sorted(written.files) == ["test", "train", "val"]
        for i, (name, n) in enumerate(zip(LAYOUT, (30, 20, 10))):
            grids = written[name]
            assert grids.dtype == np.uint8 and grids.shape == (n, 16, 16)
            assert np.array_equal(grids, generate(n, 3 * 3 + i)["grids"])
            assert split_seed(3, i) == 9 + i
    assert [p.name for p in tmp_path.iterdir()] == ["splits.npz"]  # no temporary file left


@pytest.mark.parametrize(
    "args, words",
    [
        (["--splits", "10,0,5"], "--splits: '10,0,5' is not N_TRAIN,N_VAL,N_TEST"),
        (["--splits", "10,5"], "--splits: '10,5' is not N_TRAIN,N_VAL,N_TEST"),
        (["--splits", "a,b,c"], "--splits: 'a,b,c' is not N_TRAIN,N_VAL,N_TEST"),
        (["--splits", "1,1,1", "--n", "5"], "--n, --splits: give exactly one of them"),
        ([], "--n, --splits: give exactly one of them"),
        (["--splits", "1,1,1", "--style", "blobs"], "--style: invalid choice: 'blobs'"),
        (["--splits", "1,1,1", "--size", "31"], "--size 31: must be 15-30"),
        (["--splits", "1,1,1", "--out", "g.npy"], "the file must end in .npz"),
        (["--n", "5", "--style", "touching", "--seed", "-1"], "--seed -1: must be 0..2^32-1"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["atoms", "--out", "grids.npz", *args])
    except SystemExit as exc:  # argparse's own errors exit from the parser
        code = exc.code
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- reading the layout


@pytest.fixture
def layout(tmp_path) -> tuple[str, dict[str, np.ndarray]]:
    arrays = {
        name: t.generate(n, i)["grids"] for i, (name, n) in enumerate(zip(LAYOUT, (40, 12, 8)))
    }
    path = tmp_path / "splits.npz"
    np.savez_compressed(path, **arrays)
    return str(path), arrays


def test_the_layout_trains_on_train_and_validates_on_val(layout):
    path, arrays = layout
    train, val = load_datasets(DataConfig(source=path, grid_size=16))
    assert np.array_equal(train.pixels.numpy(), arrays["train"])
    assert np.array_equal(val.pixels.numpy(), arrays["val"])  # not a held-out share of train
    assert train.origin == f"{path}: train"
    assert val.origin == f"{path}: val (the file's own, data.val_source null)"
    assert (train.sizes == torch.tensor([16, 16])).all()
    _, none = load_datasets(DataConfig(source=path, grid_size=16, val_source="none"))
    assert none is None
    # ARC's names: training is train, evaluation is val (data.split, data.val_split)
    on_val, _ = load_datasets(DataConfig(source=path, grid_size=16, split="evaluation"))
    assert np.array_equal(on_val.pixels.numpy(), arrays["val"])
    explicit = DataConfig(source=path, grid_size=16, val_source=path)  # val_split: evaluation
    assert np.array_equal(load_datasets(explicit)[1].pixels.numpy(), arrays["val"])


def test_a_split_name_picks_its_array(layout):
    path, arrays = layout
    cfg = DataConfig(source=path, grid_size=16)
    test = load_grids(path, "test", cfg, "val")
    assert np.array_equal(test.pixels.numpy(), arrays["test"]) and test.origin == f"{path}: test"
    found = named_grids(path, "test")  # what `evaluate RUN --data FILE --split test` reads
    assert len(found) == 8 and np.array_equal(found[3].grid, arrays["test"][3])
    assert found[3].label == f"{path} test[3].grid"
    assert len(named_grids(path, "evaluation")) == 12 and len(named_grids(path)) == 40


def test_a_layout_without_val_holds_out_a_share_and_a_missing_array_is_named(tmp_path):
    path = tmp_path / "train_only.npz"
    np.savez(path, train=t.generate(50, 0)["grids"], test=t.generate(5, 1)["grids"])
    train, val = load_datasets(DataConfig(source=str(path), grid_size=16))
    assert len(train) == 45 and len(val) == 5  # data.val_fraction of train, as for any file
    with pytest.raises(DataError) as raised:
        named_grids(str(path), "evaluation")
    assert str(raised.value) == (
        f"{path}: no array 'val' (split 'evaluation'); the file holds train, test"
    )
    with pytest.raises(DataError, match=r"no array 'val'; the file holds train, test"):
        named_grids(str(path), "val")
    with pytest.raises(DataError, match="no split 'test'"):
        named_grids("arc1", "test")


def test_a_bad_array_of_the_layout_is_named_with_its_first_bad_grid(tmp_path):
    val = np.zeros((6, 4, 4), dtype=np.int64)
    val[3, 1, 1] = 12
    path = tmp_path / "splits.npz"
    np.savez(path, train=np.ones((5, 4, 4), dtype=np.uint8), val=val)
    with pytest.raises(DataError) as raised:
        load_datasets(DataConfig(source=str(path), grid_size=16))
    assert str(raised.value) == f"{path}: val[3]: colour 12 is not an integer 0-9"


# ---------------------------------------------------------------- end to end


def train_tiny(tmp_path, data) -> str:
    """The atoms recipe for a few steps on `data`: the run folder."""
    run = tmp_path / "run"
    args = [
        "--config",
        str(ROOT / "configs" / "atoms.yaml"),
        f"data.source={data}",
        "data.samples_per_epoch=64",
        "train.epochs=1",
        "train.batch_size=32",
        "train.progress=false",
        f"data.cache_dir={tmp_path / 'cache'}",
        "monitor.n_recon_grids=0",
        "--out",
        str(run),
    ]
    assert main(args) == 0
    return str(run)


@pytest.mark.slow
def test_a_touching_file_is_sampled_under_the_touching_rules(tmp_path, capsys):
    data = tmp_path / "touching.npz"
    assert main(["atoms", "--style", "touching", "--n", "300", "--out", str(data)]) == 0
    run = train_tiny(tmp_path, data)
    assert main(["sample", run, "--n", "20", "--out", str(tmp_path / "samples")]) == 0
    report = json.loads((tmp_path / "samples" / "samples.json").read_text())
    assert report["rules"] == "touching" and report["data_valid_share"] == 1
    assert "validity.is_valid, the touching rules, on 16x16" in capsys.readouterr().out


@pytest.mark.slow
def test_a_layout_file_trains_on_train_and_validates_on_val(tmp_path, capsys):
    data = tmp_path / "splits.npz"
    assert main(["atoms", "--style", "touching", "--splits", "200,30,20", "--out", str(data)]) == 0
    run = train_tiny(tmp_path, data)
    out = capsys.readouterr().out
    assert f"200 training grids from {data}: train" in out
    assert f"30 validation grids from {data}: val (the file's own" in out
    assert main(["sample", run, "--n", "8", "--out", str(tmp_path / "samples")]) == 0
    report = json.loads((tmp_path / "samples" / "samples.json").read_text())
    assert "valid_share" not in report  # no marker: no rules guessed, the ARC statistics instead
