"""The atoms rules on hand-made grids whose answer is known, the statistics samples are compared on,
and `sample`'s report for a run trained on an atoms file (generate, train, sample: end to end)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT

from arcvae.commands.cli import main
from arcvae.data.validity import (
    BINS,
    compare,
    grid_statistics,
    is_valid,
    objects,
    report_lines,
    total_variation,
)


def canvas(*objects_at: tuple[int, list[tuple[int, int]]], size: int = 6) -> np.ndarray:
    """A black size x size grid with each (colour, cells) painted on it."""
    grid = np.zeros((size, size), dtype=np.uint8)
    for colour, cells in objects_at:
        grid[tuple(np.array(cells).T)] = colour
    return grid


DOMINO = [(0, 0), (0, 1)]


def test_one_two_pixel_object_is_valid():
    grid = canvas((3, DOMINO))
    assert [(o.colour, o.pixels) for o in objects(grid)] == [(3, 2)]
    assert is_valid(grid, 6)


def test_a_one_pixel_object_is_invalid():
    assert not is_valid(canvas((3, DOMINO), (4, [(3, 3)])), 6)


def test_no_object_and_five_objects_are_invalid():
    assert not is_valid(canvas(), 10)
    five = canvas(*((c + 1, [(2 * c, 0), (2 * c, 1)]) for c in range(5)), size=10)
    assert len(objects(five)) == 5 and not is_valid(five, 10)
    assert is_valid(five[:8].copy(), 8) is False  # four objects, but not a square canvas
    assert is_valid(canvas(*((c + 1, [(2 * c, 0), (2 * c, 1)]) for c in range(4)), size=10), 10)


def test_an_object_of_16_pixels_is_invalid():
    line = canvas((2, [(0, c) for c in range(16)]), size=16)
    assert objects(line)[0].pixels == 16 and not is_valid(line, 16)
    assert is_valid(canvas((2, [(0, c) for c in range(15)]), size=16), 16)


def test_the_grid_must_be_the_canvas():
    assert not is_valid(canvas((3, DOMINO)), 5)
    assert not is_valid(canvas((3, DOMINO))[:, :5], 6)


def test_touching_same_colour_objects_are_one_component():
    grid = canvas((5, DOMINO), (5, [(1, 1), (2, 1)]))
    assert [(o.colour, o.pixels) for o in objects(grid)] == [(5, 4)]


def test_touching_objects_of_two_colours_are_two():
    grid = canvas((5, DOMINO), (6, [(1, 1), (2, 1)]))
    assert [(o.colour, o.pixels) for o in objects(grid)] == [(5, 2), (6, 2)]


def test_diagonal_contact_leaves_two_components():
    grid = canvas((5, DOMINO), (5, [(1, 2), (2, 2)]))
    assert [(o.colour, o.pixels) for o in objects(grid)] == [(5, 2), (5, 2)]
    assert is_valid(grid, 6)


def test_a_winding_object_is_one_component():
    spiral = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (3, 0), (4, 0), (4, 1)]
    grid = canvas((9, spiral))
    assert len(objects(grid)) == 1 and sorted(objects(grid)[0].cells) == sorted(spiral)


def test_statistics_of_hand_made_grids():
    grids = [canvas((3, DOMINO)), canvas((3, DOMINO), (4, [(3, 3), (3, 4), (3, 5)])), canvas()]
    stats = grid_statistics(grids)
    assert stats["n_objects"] == {"0": 1 / 3, "1": 1 / 3, "2": 1 / 3, "3": 0, "4": 0, "5+": 0}
    assert stats["pixels"]["2"] == 2 / 3 and stats["pixels"]["3"] == 1 / 3
    assert stats["colour"]["3"] == 2 / 3 and stats["colour"]["4"] == 1 / 3
    assert all(list(stats[name]) == labels for name, labels in BINS.items())


def test_total_variation():
    p = {"a": 0.5, "b": 0.5, "c": 0.0}
    assert total_variation(p, p) == 0
    assert total_variation(p, {"a": 0.0, "b": 0.0, "c": 1.0}) == 1
    assert total_variation(p, {"a": 1.0, "b": 0.0, "c": 0.0}) == pytest.approx(0.5)
    assert total_variation(p, {"a": 0.0, "b": 0.0, "c": 0.0}) is None  # no objects at all


def test_compare_reports_the_samples_beside_the_data():
    data = [canvas((3, DOMINO))] * 4
    samples = [canvas((3, DOMINO)), canvas((3, [(0, 0)]))]  # one valid, one of a single pixel
    report = compare(samples, data, 6, "4 validation grids")
    assert report["valid_share"] == 0.5 and report["data_valid_share"] == 1
    assert report["total_variation"] == {"n_objects": 0, "pixels": 0.5, "colour": 0}
    lines = report_lines(report)
    assert lines[0] == (
        "valid (validity.is_valid on 6x6): 50.0% of the samples, 100.0% of the 4 validation grids"
    )
    assert len(lines) == 1 + 3 * len(BINS) and lines[5].endswith("0.500")
    empty = compare([canvas()], data, 6, "4 validation grids")
    assert empty["total_variation"]["pixels"] is None and report_lines(empty)[5].endswith("-")


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_generate_train_and_sample_report_validity(tmp_path, capsys):
    """The README's commands: the atoms recipe on a file the atoms command wrote, then sample."""
    data = tmp_path / "atoms.npz"
    assert main(["atoms", "--n", "600", "--out", str(data)]) == 0
    run = tmp_path / "run"
    args = ["--config", str(ROOT / "configs" / "atoms.yaml"), f"data.source={data}"]
    tiny = ["data.samples_per_epoch=64", "train.epochs=1", "train.batch_size=32"]
    quiet = [
        "train.progress=false",
        f"data.cache_dir={tmp_path / 'cache'}",
        "monitor.n_recon_grids=0",
    ]
    assert main([*args, *tiny, *quiet, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "540 training grids" in out and "60 validation grids" in out  # the held-out 10%
    assert main(["sample", str(run), "--n", "50", "--out", str(tmp_path / "samples")]) == 0
    report = json.loads((tmp_path / "samples" / "samples.json").read_text())
    assert 0 <= report["valid_share"] <= 1 and report["canvas"] == 16
    assert report["data"] == "60 validation grids" and report["data_valid_share"] == 1
    assert set(report["total_variation"]) == set(BINS) and len(report["grids"]) == 50
    assert sum(report["data_statistics"]["n_objects"].values()) == pytest.approx(1)
    printed = capsys.readouterr().out
    assert "of the samples, 100.0% of the 60 validation grids" in printed
    assert "n_objects" in printed and "TV" in printed
