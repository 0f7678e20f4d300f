"""Is the latent structured (issue 27): MIG and DCI pinned on codes whose answer is known, object
operations and traversals on codecs whose answer is known, and the `structure` and `map` commands
on short real runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, assert_picture

from arcvae.commands.cli import main
from arcvae.data.atoms import generate
from arcvae.latent.disentanglement import dci, discretise, mig
from arcvae.latent.operations import (
    OPERATIONS,
    measure,
    mirror,
    move_down,
    move_right,
    recolour,
    score_operation,
    traversal_scores,
)


def atoms_factors(n: int) -> np.ndarray:
    """(n, 5) kind, colour, pixels, row, col of the atoms generator's first objects: real factors,
    correlated as the generator makes them (a line's pixels and its position, say)."""
    made = generate(n, seed=3)
    return np.stack([made[name][:, 0] for name in ("kind", "colour", "pixels", "row", "col")], 1)


# ---------------------------------------------------------------- MIG and DCI on known codes


def test_discretise_cuts_each_dimension_into_equal_bins():
    codes = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 6.0]])
    bins = discretise(codes, bins=2)
    assert bins[:, 0].tolist() == [0, 1, 1] and bins[:, 1].tolist() == [0, 0, 1]


def test_a_code_equal_to_the_factors_scores_about_one():
    factors = atoms_factors(900)
    rng = np.random.default_rng(0)
    codes = np.concatenate(
        [factors + rng.normal(0, 0.01, factors.shape), rng.normal(size=(900, 3))], 1
    )
    m = mig(codes, factors)
    assert m["score"] > 0.9 and m["best_dim"] == [0, 1, 2, 3, 4]
    d = dci(codes, factors)
    assert d["disentanglement"] > 0.9 and d["completeness"] > 0.9
    assert d["informativeness"] > 0.95
    assert np.array(d["importance"]).shape == (8, 5)


def test_noise_scores_about_zero():
    factors = atoms_factors(900)
    noise = np.random.default_rng(1).normal(size=(900, 8))
    assert mig(noise, factors)["score"] < 0.05
    d = dci(noise, factors)
    assert d["disentanglement"] < 0.25 and d["completeness"] < 0.25
    # chance: kind 4 classes with shares 40/20/20/20, colour 9, pixels, row, col about 15 each
    assert d["informativeness"] < 0.25


def test_one_dimension_carrying_two_factors_is_entangled():
    """Colour and row in one dimension (colour x 100 + row), the other factors alone: informative,
    but neither MIG nor DCI disentanglement calls it disentangled."""
    factors = atoms_factors(900)
    kind, colour, pixels, row, col = factors.T
    codes = np.stack([kind, colour * 100 + row, pixels, col], 1).astype(float)
    m = mig(codes, factors)
    gaps = dict(zip(("kind", "colour", "pixels", "row", "col"), m["per_factor"]))
    assert gaps["kind"] > 0.9 and gaps["col"] > 0.9
    assert m["best_dim"][1] == m["best_dim"][3] == 1  # colour and row both read off dim 1
    d = dci(codes, factors)
    assert d["disentanglement"] < 0.95 and d["informativeness"] > 0.9


def test_a_factor_of_one_value_is_left_out_of_mig():
    factors = np.stack([np.arange(100) % 4, np.zeros(100, dtype=int)], 1)
    m = mig(factors.astype(float), factors)
    assert m["per_factor"][1] is None and m["score"] == pytest.approx(m["per_factor"][0])


# ---------------------------------------------------------------- operations


def one_object(rows: int, cols: int, top: int, left: int, colour: int = 3, size: int = 8):
    grid = np.zeros((size, size), dtype=np.uint8)
    grid[top : top + rows, left : left + cols] = colour
    return grid


def test_operations_make_the_pairs_they_name():
    grid = one_object(2, 3, top=1, left=2)
    right = move_right(grid)[0][0]
    assert measure(right) == {**measure(grid), "col": 3}
    assert measure(move_down(grid)[0][0])["row"] == 2
    assert move_right(one_object(2, 3, top=1, left=5)) == []  # touches the right edge
    assert move_down(one_object(2, 3, top=6, left=0)) == []
    pairs = recolour(grid)
    assert len(pairs) == 8 and {group for _, group in pairs} == {
        f"3->{c}" for c in (1, 2, 4, 5, 6, 7, 8, 9)
    }
    assert all(measure(g)["colour"] == int(group[-1]) for g, group in pairs)
    taller = OPERATIONS["grow_rectangle"](grid)[0][0]
    assert measure(taller) == {**measure(grid), "pixels": 9, "height": 3}
    ell = grid.copy()
    ell[1, 2] = 0  # no longer a filled rectangle
    assert OPERATIONS["grow_rectangle"](ell) == []
    flipped = mirror(ell)[0][0]
    assert flipped[1, 4] == 0 and flipped[1, 2] == 3 and measure(flipped)["col"] == 2


class ObjectCodec:
    """A codec of one-object grids whose code is (row, col, colour, shape id): moving the object or
    recolouring it is a constant vector. Shapes are numbered as they are first seen."""

    def __init__(self, size: int = 8):
        self.size = size
        self.shapes: list[np.ndarray] = []

    def encode(self, grids: list[np.ndarray]) -> np.ndarray:
        codes = []
        for grid in grids:
            rows, cols = np.nonzero(grid)
            top, left = rows.min(), cols.min()
            mask = grid[top : rows.max() + 1, left : cols.max() + 1] > 0
            known = [i for i, s in enumerate(self.shapes) if np.array_equal(s, mask)]
            if not known:
                self.shapes.append(mask)
            codes.append([top, left, grid.max(), known[0] if known else len(self.shapes) - 1])
        return np.array(codes, dtype=float)

    def decode(self, z: np.ndarray) -> list[np.ndarray]:
        grids = []
        for top, left, colour, shape in np.rint(z).astype(int):
            grid = np.zeros((self.size, self.size), dtype=np.uint8)
            mask = self.shapes[shape] if 0 <= shape < len(self.shapes) else None
            fits = mask is not None and 1 <= colour <= 9 and top >= 0 and left >= 0
            if fits and top + mask.shape[0] <= self.size and left + mask.shape[1] <= self.size:
                grid[top : top + mask.shape[0], left : left + mask.shape[1]][mask] = colour
            grids.append(grid)
        return grids


def single_object_grids(n: int) -> list[np.ndarray]:
    made = generate(n, seed=5, size=16)
    return [g for g, k in zip(made["grids"], made["n_objects"]) if k == 1]


def test_the_baselines_are_exact_on_an_identity_operation():
    """A lossless codec and op(x) = x: every method gives op(x) back, the vector being zero."""
    codec = ObjectCodec(16)
    grids = single_object_grids(200)
    scores, examples = score_operation(
        codec.encode, codec.decode, grids, lambda g: [(g.copy(), "")]
    )
    assert len(examples) == 3 and all(np.array_equal(x, y) for x, y, _ in examples)
    assert scores["pairs"] == len(grids) - len(grids) // 2
    assert scores["vector"] == scores["unchanged"] == scores["copy"] == scores["target"] == 1.0


def test_a_code_where_moving_is_a_vector_applies_it_exactly():
    codec = ObjectCodec(16)
    grids = single_object_grids(200)
    for name in ("move_right", "move_down", "recolour"):
        scores = score_operation(codec.encode, codec.decode, grids, OPERATIONS[name])[0]
        assert scores["vector"] == 1.0 and scores["target"] == 1.0, name
        assert scores["unchanged"] == scores["copy"] == 0.0, name
    # A mirror is no vector of this code: the shape id changes in no constant way.
    assert score_operation(codec.encode, codec.decode, grids, mirror)[0]["vector"] < 0.7


def test_traversals_find_the_dimension_of_each_factor():
    codec = ObjectCodec(16)
    grids = single_object_grids(200)
    mu = codec.encode(grids)
    found = traversal_scores(codec.decode, mu, [0, 1, 2, 3])
    best = found["best"]
    assert best["row"]["dim"] == 0 and best["col"]["dim"] == 1 and best["colour"]["dim"] == 2
    assert best["col"]["changes_it_alone"] > 0.5
    assert np.array(found["changes_alone"]).shape == (4, 6)


# ---------------------------------------------------------------- the commands, on real runs


@pytest.fixture(scope="module")
def atoms_run(tmp_path_factory) -> Path:
    """The atoms recipe, 8 steps on a file of 600 grids the atoms command wrote."""
    tmp = tmp_path_factory.mktemp("atoms")
    data = tmp / "atoms.npz"
    assert main(["atoms", "--n", "600", "--out", str(data)]) == 0
    run = tmp / "run"
    args = [
        "--config",
        str(ROOT / "configs" / "atoms.yaml"),
        f"data.source={data}",
        "data.samples_per_epoch=256",
        "train.epochs=1",
        "train.batch_size=32",
        "train.progress=false",
        f"data.cache_dir={tmp / 'cache'}",
        "--out",
        str(run),
    ]
    assert main(args) == 0
    return run


@pytest.mark.slow
def test_structure_scores_a_run_trained_on_atoms_grids(atoms_run, tmp_path, capsys):
    out = tmp_path / "structure"
    assert main(["structure", str(atoms_run), "--out", str(out), "--no-tsne"]) == 0
    result = json.loads((out / "structure.json").read_text())
    assert result["grids"]["all"] == 60 and 0 < result["grids"]["one_object"] < 60
    assert 0 <= result["mig"]["score"] <= 1
    assert set(result["dci"]) >= {"disentanglement", "completeness", "informativeness"}
    assert set(result["operations"]) == set(OPERATIONS)
    moved = result["operations"]["move_right"]
    assert moved["copy"] == 0.0 and 0 <= moved["vector"] <= 1
    assert set(result["traversals"]["best"]) == {
        "colour",
        "pixels",
        "row",
        "col",
        "height",
        "width",
    }
    printed = capsys.readouterr().out
    assert "MIG" in printed and "DCI disentanglement" in printed and "move_right" in printed
    names = {Path(p).name for p in result["maps"]}
    assert names == {
        f"latent_map_{f}.png" for f in ("kind", "colour", "pixels", "row", "col", "n_objects")
    }
    assert_picture(out / "latent_map_colour.png")
    assert_picture(out / "operations.png")
    # the run drew its own map when it ended
    assert_picture(atoms_run / "plots" / "latent_map_n_objects.png")


@pytest.mark.slow
def test_structure_of_a_run_without_factors_is_one_line_and_writes_nothing(tmp_path, capsys):
    """A real-ARC run: `structure` says it has no factors and names `map`, which draws its map by
    grid size and task."""
    run = tmp_path / "run"
    args = [
        "--config",
        str(ROOT / "configs" / "cpu_small.yaml"),
        "data.samples_per_epoch=64",
        "train.epochs=1",
        "train.batch_size=32",
        "data.val_limit=300",
        "train.progress=false",
        "monitor.n_recon_grids=0",
        f"data.cache_dir={tmp_path / 'cache'}",
        "--out",
        str(run),
    ]
    assert main(args) == 0
    capsys.readouterr()
    out = tmp_path / "structure"
    code = main(["structure", str(run), "--out", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, "no factors", "map RUN")
    assert not out.exists()
    assert main(["map", str(run), "--out", str(out), "--no-tsne"]) == 0
    assert_picture(out / "latent_map_longest_side.png")
    assert_picture(out / "latent_map_task.png")
