"""Operations on a slot model's code (latent/slot_operations.py): each pinned on a hand-built code
whose grid is known, against the same operation on the grid; the refusals; the text of a chain; and
the `apply` command's one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import FullBox, assert_one_line_error, code, slot_model

import arcvae
from arcvae.commands.cli import main
from arcvae.data.atoms import generate
from arcvae.latent import shape_maps
from arcvae.latent.shape_maps import ShapeMaps
from arcvae.latent.slot_code import in_reading_order, read
from arcvae.latent.slot_operations import (
    CannotApply,
    OperationError,
    apply_chain,
    apply_to_grid,
    chain_text,
    parse_chain,
    parse_operation,
)
from arcvae.training import checkpoint as ckpt

RECTANGLES = [
    dict(row=2, col=3, height=2, width=3, colour=4),
    dict(row=9, col=10, height=1, width=5, colour=7),
]


def rectangles():
    """A slot model that draws every object as its filled box, two hand-built slots, and maps that
    keep the shape code (a box's shape is its height and width)."""
    net = slot_model("model.shape_dims=2")
    net.shape_decoder = FullBox()
    maps = ShapeMaps(net.shape_dims, largest_pixels=30)
    for mlp in maps.maps.values():
        torch.nn.init.zeros_(mlp[-1].weight)
        torch.nn.init.zeros_(mlp[-1].bias)
    return net, maps, code(net, RECTANGLES)


def decoded(net, z) -> np.ndarray:
    return net.decode(z, 16)[0].argmax(1)[0].numpy()


@pytest.mark.parametrize(
    "text, cells",
    [
        ("translate(1,2)", {(r, c) for r in (3, 4) for c in (5, 6, 7)}),
        ("rotate_90", {(r, c) for r in (2, 3, 4) for c in (3, 4)}),
        ("scale(2)", {(r, c) for r in (2, 3, 4, 5) for c in range(3, 9)}),
        ("reflect(lr)", {(r, c) for r in (2, 3) for c in (3, 4, 5)}),
    ],
)
def test_each_operation_on_the_code_draws_the_operation_on_the_grid(text, cells):
    net, maps, z = rectangles()
    before = decoded(net, z)
    chain = parse_chain(text)
    moved, problems = apply_chain(net, maps, z, torch.tensor([0]), chain, 16)
    assert problems == [None]
    after = decoded(net, moved)
    wanted, _ = apply_to_grid(before, before == 4, chain, net.connectivity, maps.largest_pixels)
    assert np.array_equal(after, wanted)
    assert set(zip(*np.nonzero(after == 4))) == cells  # the known answer, by hand
    assert np.array_equal(after == 7, before == 7)  # the other object is untouched
    # only the chosen slot's dims change
    changed = (moved != z)[0].view(net.slots, net.per_slot).any(1)
    assert changed.tolist() == [True] + [False] * (net.slots - 1)


def test_recolour_and_a_chain_of_three_on_the_code():
    net, maps, z = rectangles()
    chain = parse_chain("recolour(2)+translate(-2,0)+rotate_90")
    moved, problems = apply_chain(net, maps, z, torch.tensor([1]), chain, 16)
    assert problems == [None]
    parts = read(net, moved)
    assert [parts[name][0, 1].item() for name in ("row", "col", "height", "width", "colour")] == [
        7,
        10,
        5,
        1,
        2,
    ]
    before = decoded(net, z)
    wanted, _ = apply_to_grid(before, before == 7, chain, net.connectivity, 30)
    assert np.array_equal(decoded(net, moved), wanted)


@pytest.mark.parametrize(
    "text, why",
    [
        ("translate(0,12)", "would leave the 16x16 canvas"),
        ("translate(6,7)", "would overlap or touch another"),  # onto the line at (9, 10..14)
        ("translate(5,7)", "would overlap or touch another"),  # its bottom row on the line's
        ("scale(2)+scale(2)", "96 pixels, more than the 30 learnt"),
    ],
)
def test_an_operation_that_cannot_apply_says_why_on_the_code_and_on_the_grid(text, why):
    net, maps, z = rectangles()
    chain = parse_chain(text)
    unchanged, problems = apply_chain(net, maps, z, torch.tensor([0]), chain, 16)
    assert why in problems[0]
    grid = decoded(net, z)
    with pytest.raises(CannotApply, match=why):
        apply_to_grid(grid, grid == 4, chain, net.connectivity, maps.largest_pixels)


def test_objects_may_meet_at_a_corner_under_4_connectivity():
    net, maps, z = rectangles()
    moved, problems = apply_chain(
        net, maps, z, torch.tensor([0]), parse_chain("translate(5,4)"), 16
    )
    assert problems == [None]  # its corner (8, 9) meets the line's (9, 10) diagonally


def test_operations_on_the_grid_turn_mirror_and_grow_an_irregular_shape():
    grid = np.zeros((8, 8), dtype=np.uint8)
    grid[2, 3] = grid[3, 3] = grid[3, 4] = 5  # an L: [[1, 0], [1, 1]] at (2, 3)
    mask = grid == 5

    def cells(text):
        out, new = apply_to_grid(grid, mask, parse_chain(text), 4, 15)
        assert np.array_equal(out > 0, new)
        return set(zip(*map(np.ndarray.tolist, np.nonzero(new))))

    assert cells("rotate_90") == {(2, 3), (2, 4), (3, 3)}  # [[1, 1], [1, 0]]
    assert cells("reflect(lr)") == {(2, 4), (3, 3), (3, 4)}  # [[0, 1], [1, 1]]
    assert cells("reflect(ud)") == {(2, 3), (2, 4), (3, 3)}  # [[1, 1], [1, 0]]
    assert cells("rotate_90+rotate_90+rotate_90+rotate_90") == {(2, 3), (3, 3), (3, 4)}
    assert len(cells("scale(2)")) == 12
    out, _ = apply_to_grid(grid, mask, parse_chain("recolour(9)"), 4, 15)
    assert set(np.unique(out)) == {0, 9}


def test_chains_read_and_write_as_text():
    text = "translate(1,-2)+rotate_90+reflect(ud)+recolour(3)+scale(2)"
    assert chain_text(parse_chain(text)) == text
    assert (
        chain_text(parse_chain(" translate( 1 , -2 ) + reflect ")) == "translate(1,-2)+reflect(lr)"
    )


@pytest.mark.parametrize(
    "text, words",
    [
        ("spin(3)", ["'spin(3)'", "unknown operation"]),
        ("translate(1)", ["'translate(1)'", "wrong arguments"]),
        ("recolour(12)", ["recolour(12)", "1-9"]),
        ("reflect(diagonal)", ["reflect(diagonal)", "lr or ud"]),
        ("scale(3)", ["scale(3)", "only scale(2)"]),
    ],
)
def test_a_wrong_or_unknown_operation_is_one_error_naming_it(text, words):
    with pytest.raises(OperationError) as error:
        parse_operation(text)
    assert all(word in str(error.value) for word in words)
    with pytest.raises(OperationError, match="joined by"):
        parse_chain("translate(1,0)+")


def test_slots_go_back_into_reading_order():
    net, _, z = rectangles()
    swapped = z.view(net.slots, net.per_slot)[[1, 0, 2, 3, 4, 5]].flatten()[None]
    assert torch.equal(in_reading_order(net, swapped, 16), z)


def test_apply_runs_a_chain_and_refuses_bad_chains_in_one_line(
    rectangle_run, tmp_path, capsys, monkeypatch
):
    # the rectangle run draws boxes whatever the shape code: the maps need no fitting
    monkeypatch.setattr(shape_maps, "STEPS", 2)
    grids = tmp_path / "grids.npz"
    grid = np.zeros((1, 16, 16), dtype=np.uint8)
    grid[0, 2:4, 3:6] = 4
    grid[0, 9, 10:15] = 7
    np.savez(grids, grids=grid)
    base = ["apply", str(rectangle_run), "--grid", str(grids), "--out", str(tmp_path / "out")]
    assert main([*base, "--chain", "translate(1,2)+rotate_90"]) == 0
    report = json.loads((tmp_path / "out" / "apply.json").read_text())
    assert report["verdict"] == "exact" and report["decoded"] == report["wanted"]
    capsys.readouterr()
    for chain, words in (
        ("translate(0,20)", ["object 0", "translate(0,20)", "leave the 16x16 canvas"]),
        ("rotate_180", ["rotate_180", "unknown operation"]),
        ("translate(1)", ["translate(1)", "wrong arguments"]),
    ):
        assert_one_line_error(main([*base, "--chain", chain]), capsys.readouterr().err, *words)
    assert_one_line_error(
        main([*base, "--chain", "rotate_90", "--object", "2"]),
        capsys.readouterr().err,
        "--object 2",
        "holds 2 objects",
    )


def test_structure_scores_each_operation_where_the_grid_is_rebuilt(
    rectangle_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(shape_maps, "STEPS", 2)
    out = tmp_path / "structure"
    argv = ["structure", str(rectangle_run), "--limit", "200", "--no-tsne", "--out", str(out)]
    assert main(argv) == 0
    assert "operations on the slot code" in capsys.readouterr().out
    slots = json.loads((out / "structure.json").read_text())["slots"]
    for name, scores in slots["operations"].items():
        # the run draws every object as its box: where a grid's objects are boxes it is rebuilt,
        # and every operation on the code then draws exactly the operation on the grid
        assert scores["grids"] > 0, name
        assert scores["exact_where_reconstructed"] == 1.0, name
    assert slots["matched"]["matching"]["objects_unmatched"] == 0
    assert slots["matched"]["per_factor"]["row"]["mig_best_dim"] == "row"


def test_structure_of_a_slot_run_on_a_file_without_factors_scores_the_operations_alone(
    rectangle_run, tmp_path, monkeypatch, capsys
):
    """The researchers' own train/val/test file carries no factors: no MIG or DCI, the operations
    still scored."""
    monkeypatch.setattr(shape_maps, "STEPS", 2)
    grids = generate(300, seed=5)["grids"]
    corpus = tmp_path / "corpus.npz"
    np.savez(corpus, train=grids[:200], val=grids[200:250], test=grids[250:])
    run = tmp_path / "run"
    shutil.copytree(rectangle_run, run)
    (run / "shape_maps.pt").unlink(missing_ok=True)
    path = ckpt.list_checkpoints(run)[-1]
    state = torch.load(path, weights_only=True)
    state["config_yaml"] = state["config_yaml"].replace("source: atoms", f"source: {corpus}")
    torch.save(state, path)
    out = tmp_path / "structure"
    assert main(["structure", str(run), "--no-tsne", "--out", str(out)]) == 0
    assert "carry no factors; the operations on its slot code alone" in capsys.readouterr().out
    result = json.loads((out / "structure.json").read_text())
    assert result["grids"] == {"all": 50, "of": "validation"}
    assert set(result["slots"]) == {"operations"}
    assert result["slots"]["operations"]["recolour"]["grids"] == 50


def test_operate_applies_a_chain_to_a_runs_codes_in_one_call(rectangle_run, monkeypatch):
    monkeypatch.setattr(shape_maps, "STEPS", 2)
    run = arcvae.load_run(rectangle_run)
    grid = np.zeros((16, 16), dtype=np.uint8)
    grid[2:4, 3:6] = 4
    grid[9, 10:15] = 7
    mu, _ = run.encode([grid, grid])
    moved, problems = arcvae.operate(run, mu, "translate(1,2)+rotate_90", slot=[0, 1])
    assert problems == [None, "translate(1,2): the object would leave the 16x16 canvas"]
    wanted, _ = apply_to_grid(grid, grid == 4, parse_chain("translate(1,2)+rotate_90"), 4, 15)
    assert np.array_equal(run.decode(moved[:1])[0], wanted)
    assert np.array_equal(moved[1], mu[1])  # refused: the code as it stood
    with pytest.raises(OperationError, match="unknown operation"):
        arcvae.operate(run, mu, "spin")
