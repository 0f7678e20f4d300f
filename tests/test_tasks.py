"""`python -m arcvae tasks`: ARC tasks made in a slot model's latent, on a run whose code is known
(every object drawn as its box): the file format, every kept task valid and exactly F of its inputs
(checked here again from its recipe), read back by data.source=DIR; and the one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY, assert_one_line_error, assert_picture

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.data.grids import load_datasets
from arcvae.data.validity import ATOMS, is_valid, objects
from arcvae.latent import shape_maps
from arcvae.latent.slot_operations import apply_to_grid, parse_chain
from arcvae.models.slots import components


@pytest.fixture(autouse=True)
def unfitted_maps(monkeypatch):
    # the rectangle run draws boxes whatever the shape code: its maps need no fitting
    monkeypatch.setattr(shape_maps, "STEPS", 2)


def test_tasks_are_written_in_the_arc_layout_and_are_exactly_f_of_their_inputs(
    rectangle_run, tmp_path, capsys
):
    out = tmp_path / "tasks"
    argv = ["tasks", str(rectangle_run), "--ops", "translate,recolour,rotate_90"]
    more = ["--depth", "2", "--pairs", "3", "--objects", "2", "--n", "5", "--out", str(out)]
    assert main([*argv, *more]) == 0
    assert "kept 5 of" in capsys.readouterr().out
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == [f"task_{i:04d}.json" for i in range(5)]
    index = json.loads((out / "recipes" / "index.json").read_text())
    assert index["kept"] == 5 and index["candidates"] >= 5 and index["depth"] == 2
    assert index["objects"] == 2
    for file in files:
        task = json.loads(file.read_text())
        recipe = json.loads((out / "recipes" / file.name).read_text())
        assert set(task) == {"train", "test"} and len(task["train"]) == 3 and len(task["test"]) == 1
        chain = parse_chain(recipe["operations"])
        assert len(chain) == 2 and {op.kind for op in chain} <= {
            "translate",
            "recolour",
            "rotate_90",
        }
        inputs = []
        for pair in task["train"] + task["test"]:
            grid, output = np.array(pair["input"]), np.array(pair["output"])
            assert grid.shape == output.shape == (16, 16)
            assert is_valid(grid, 16, ATOMS) and is_valid(output, 16, ATOMS)
            assert len(objects(grid)) == 2  # --objects 2
            first = components(torch.from_numpy(grid)[None], 1, 4)["masks"][0, 0].numpy()
            wanted, _ = apply_to_grid(grid, first, chain, 4, 15)
            assert np.array_equal(wanted, output)
            inputs.append(grid.tobytes())
        assert len(set(inputs)) == 4  # the inputs differ
    assert_picture(out / "tasks.png")
    train, val = load_datasets(load_config(None, [f"data.source={out}", "data.grid_size=16"]).data)
    assert len(train) == 5 * 4 * 2 and val is None


def test_bad_tasks_arguments_are_one_line_and_write_nothing(
    rectangle_run, tmp_path, tiny_config, capsys
):
    out = tmp_path / "tasks"
    base = ["tasks", str(rectangle_run), "--n", "2", "--out", str(out)]
    assert_one_line_error(
        main([*base, "--ops", "translate,spin"]), capsys.readouterr().err, "--ops", "'spin'"
    )
    assert not out.exists()
    assert_one_line_error(
        main([*base, "--objects", "7"]), capsys.readouterr().err, "--objects 7", "6 slots"
    )
    assert not out.exists()
    out.mkdir()
    (out / "mine.json").write_text("{}")
    assert_one_line_error(main(base), capsys.readouterr().err, str(out), "not an empty folder")
    assert (out / "mine.json").read_text() == "{}" and len(list(out.iterdir())) == 1
    plain = tmp_path / "plain"
    assert main(["--out", str(plain), *TINY]) == 0
    capsys.readouterr()
    assert_one_line_error(
        main(["tasks", str(plain), "--out", str(tmp_path / "t")]),
        capsys.readouterr().err,
        "slot model",
    )
    assert not (tmp_path / "t").exists()


def test_tasks_can_act_on_the_largest_object_of_each_input(rectangle_run, tmp_path):
    out = tmp_path / "largest"
    argv = ["tasks", str(rectangle_run), "--ops", "recolour", "--object", "largest"]
    assert main([*argv, "--objects", "3", "--n", "3", "--out", str(out)]) == 0
    for file in sorted(out.glob("*.json")):
        task = json.loads(file.read_text())
        assert json.loads((out / "recipes" / file.name).read_text())["object"].startswith(
            "the largest object"
        )
        for pair in task["train"] + task["test"]:
            grid, output = np.array(pair["input"]), np.array(pair["output"])
            found = objects(grid)
            largest = max(found, key=lambda o: o.pixels)
            assert sum(o.pixels == largest.pixels for o in found) == 1
            assert set(zip(*np.nonzero(grid != output))) == set(largest.cells)
