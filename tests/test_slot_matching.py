"""Slot-matched disentanglement (latent/slot_matching.py): the matching of slots to generator
objects pinned on generated and hand-built grids whose answer is known, and the per-factor scores on
codes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arcvae.config_io import load_config
from arcvae.data.atoms import SLOT_FACTORS, generate
from arcvae.data.grids import Grids, grid_arrays, pad_array
from arcvae.errors import ArcVaeError
from arcvae.latent.slot_matching import (
    MatchedObjects,
    match_slots,
    report_lines,
    slot_disentanglement,
)
from arcvae.models.build import build_model

SLOTS = ["model.arch=slots", "data.padding=black", "data.grid_size=16", "data.source=atoms"]


def slot_model(*overrides: str):
    torch.manual_seed(0)
    return build_model(load_config(None, [*SLOTS, *overrides])).eval()


def mu_of(net, grids: Grids) -> np.ndarray:
    with torch.no_grad():
        return net.encode(grids.pixels.long())[0].numpy()


def atoms_grids(n: int, seed: int) -> Grids:
    return pad_array(grid_arrays(generate(n, seed=seed), "atoms"), 16, f"atoms (seed {seed})")


def hand_built(objects: list[dict], size: int = 16) -> Grids:
    """One grid of filled boxes {row, col, height, width, colour}, listed in the order placed, with
    the per-object arrays a generator writes for them (4 columns, -1 beyond)."""
    grid = np.zeros((1, size, size), dtype=np.uint8)
    extras = {name: np.full((1, 4), -1, dtype=np.int16) for name in SLOT_FACTORS}
    for j, o in enumerate(objects):
        grid[0, o["row"] : o["row"] + o["height"], o["col"] : o["col"] + o["width"]] = o["colour"]
        values = {**o, "kind": 1, "pixels": o["height"] * o["width"]}
        for name in SLOT_FACTORS:
            extras[name][0, j] = values[name]
    return Grids(torch.from_numpy(grid), torch.tensor([[size, size]]), extras=extras)


# ---------------------------------------------------------------- matching


def test_every_generated_object_is_matched_once_to_its_own_factors():
    net, grids = slot_model(), atoms_grids(50, seed=1)
    matched = match_slots(net, grids, mu_of(net, grids), "atoms")
    present = grids.extras["row"] >= 0
    assert matched.counts["objects"] == present.sum() == matched.counts["slots_matched"]
    assert matched.counts["objects_unmatched"] == matched.counts["slots_unmatched"] == 0
    pairs = list(zip(matched.grid.tolist(), matched.placed.tolist()))
    assert len(set(pairs)) == len(pairs) == present.sum()  # each object once
    expected = np.stack([grids.extras[name][matched.grid, matched.placed] for name in SLOT_FACTORS])
    assert np.array_equal(matched.factors, expected.T)
    # each row's code is its slot's dims of μ, whose exact parts are the object's box and colour
    assert matched.codes.shape == (len(pairs), net.per_slot)
    assert matched.dim_names[:6] == ["presence", "row", "col", "height", "width", "colour"]
    assert matched.dim_names[-1] == f"shape {net.shape_dims - 1}"
    mu = mu_of(net, grids).reshape(len(grids), net.slots, net.per_slot)
    assert np.array_equal(matched.codes, mu[matched.grid, matched.slot])


def test_slots_in_reading_order_match_objects_placed_in_another_order():
    net = slot_model()
    placed = [
        dict(row=10, col=2, height=2, width=3, colour=4),  # placed first, read last
        dict(row=1, col=9, height=1, width=4, colour=7),
        dict(row=5, col=0, height=3, width=1, colour=4),  # the first's colour, another box
    ]
    grids = hand_built(placed)
    matched = match_slots(net, grids, mu_of(net, grids), "hand-built")
    assert matched.slot.tolist() == [0, 1, 2] and matched.placed.tolist() == [1, 2, 0]
    assert matched.factors[:, SLOT_FACTORS.index("row")].tolist() == [1, 5, 10]
    assert matched.counts["objects_unmatched"] == 0


def test_objects_beyond_the_slots_and_merged_objects_stay_unmatched():
    net = slot_model("model.slots=2")
    grids = hand_built(
        [
            dict(row=0, col=0, height=1, width=2, colour=3),
            dict(row=4, col=0, height=1, width=2, colour=5),
            dict(row=8, col=0, height=1, width=2, colour=6),  # the third component: no slot
        ]
    )
    matched = match_slots(net, grids, mu_of(net, grids), "hand-built")
    assert matched.placed.tolist() == [0, 1]
    assert matched.counts["objects_unmatched"] == matched.counts["objects_beyond_slots"] == 1

    # two objects of one colour that touch are one component: the mask of neither
    touching = hand_built(
        [
            dict(row=0, col=0, height=1, width=2, colour=3),
            dict(row=1, col=0, height=1, width=2, colour=3),
        ]
    )
    matched = match_slots(net, touching, mu_of(net, touching), "hand-built")
    assert matched.counts["slots_matched"] == 0 and matched.counts["slots_unmatched"] == 1
    assert matched.counts["objects_unmatched"] == 2 and matched.counts["objects_beyond_slots"] == 0


def test_grids_without_object_factors_are_a_one_line_error():
    net = slot_model()
    grids = hand_built([dict(row=0, col=0, height=1, width=2, colour=3)])
    grids.extras.pop("kind")
    with pytest.raises(ArcVaeError) as error:
        match_slots(net, grids, mu_of(net, grids), "runs/x")
    message = str(error.value)
    assert "\n" not in message and message.startswith("runs/x:") and "kind" in message


def test_a_mu_of_other_grids_is_refused():
    net, grids = slot_model(), atoms_grids(20, seed=1)
    other = mu_of(net, atoms_grids(20, seed=2))
    with pytest.raises(ValueError, match="presence"):
        match_slots(net, grids, other, "atoms")


# ---------------------------------------------------------------- scores on known codes


def known_codes(n_grids: int) -> MatchedObjects:
    """Generated objects whose code holds each factor exactly in one dim (its part's; kind and
    pixels in shape 0 and 1) and noise in shape 2: real factors, correlated as the generator makes
    them."""
    made = generate(n_grids, seed=3)
    grid, placed = np.nonzero(made["row"] >= 0)
    factors = np.stack([made[name][grid, placed] for name in SLOT_FACTORS], 1).astype(np.int64)
    names = ["presence", "row", "col", "height", "width", "colour", "shape 0", "shape 1", "shape 2"]
    codes = np.random.default_rng(0).normal(size=(len(grid), len(names)))
    codes[:, 0] = 1.0  # every matched slot is present
    dims = {"kind": "shape 0", "pixels": "shape 1"}
    for k, factor in enumerate(SLOT_FACTORS):
        codes[:, names.index(dims.get(factor, factor))] = factors[:, k]
    counts = {"grids": n_grids, "slots_matched": len(grid), "slots_unmatched": 0}
    counts |= {"objects": len(grid), "objects_unmatched": 0, "objects_beyond_slots": 0}
    return MatchedObjects(codes, factors, grid, placed, placed, names, counts)


@pytest.fixture(scope="module")
def known_result() -> dict:
    """Scores of `known_codes`: MIG on thousands of objects (the plug-in MI of 20 bins and 16
    classes is biased up by about 0.5 nats on 300), DCI on 150 (trees cost seconds)."""
    return slot_disentanglement(known_codes(2000), max_objects=150)


def test_parts_that_equal_their_factors_score_about_one_and_noise_about_zero(known_result):
    per = known_result["per_factor"]
    for part in ("row", "col", "colour"):
        assert per[part]["mig"] > 0.9 and per[part]["mig_best_dim"] == part
        assert per[part]["dci_completeness"] > 0.8 and per[part]["dci_top_dim"] == part
        assert per[part]["dci_disentanglement"] > 0.6 and per[part]["accuracy"] > 0.9
    assert per["kind"]["mig_best_dim"] == "shape 0" and per["pixels"]["mig_best_dim"] == "shape 1"
    # the noise dim tells nothing: neither a best dim nor a share of any factor's importance
    assert all(f["mig_best_dim"] != "shape 2" for f in per.values())
    assert np.array(known_result["dci"]["importance"])[-1].max() < 0.05
    assert known_result["dci"]["objects"] == 150 and "150" in known_result["dci"]["cap"]
    assert known_result["mig"]["objects"] == known_result["matching"]["objects"] > 150
    assert np.array(known_result["dci"]["importance"]).shape == (9, len(SLOT_FACTORS))


def test_the_report_has_a_line_per_factor(known_result):
    lines = report_lines(known_result)
    assert len(lines) == 2 + len(SLOT_FACTORS)
    row = next(line.split() for line in lines if line.split()[0] == "row")
    assert row[1] == "MIG" and float(row[2]) > 0.9 and row[3] == "(row)", lines
