"""model.arch=slots: the parse into objects, the named dims, compositing hand-built slots into the
known grid, the model contract (per-grid dims in use), and the recipe end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SLOTS, FullBox, code, slot_model

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.data.atoms import generate
from arcvae.data.grids import Grids
from arcvae.latent.inference import reached_by
from arcvae.models.build import build_model
from arcvae.models.slots import PARTS, components
from arcvae.training.losses import LossOptions, elbo, free_bits_kl


def test_two_hand_built_slots_decode_to_the_known_grid():
    net = slot_model("model.shape_dims=2")
    net.shape_decoder = FullBox()
    z = code(
        net,
        [
            dict(row=2, col=3, height=2, width=3, colour=4),
            dict(row=9, col=10, height=1, width=5, colour=7),
        ],
    )
    expected = np.zeros((16, 16), dtype=np.int64)
    expected[2:4, 3:6] = 4
    expected[9, 10:15] = 7
    logits, size_logits = net.decode(z, 16)
    assert size_logits is None and logits.shape == (1, 10, 16, 16)
    assert np.array_equal(logits.argmax(1)[0].numpy(), expected)
    # the logits are log-probabilities of the composite: a categorical per pixel
    assert torch.allclose(logits.exp().sum(1), torch.ones(1, 16, 16), atol=1e-4)


def test_the_parse_finds_objects_by_colour_and_connectivity_in_reading_order():
    grid = torch.zeros(1, 6, 6, dtype=torch.long)
    grid[0, 0, 4] = grid[0, 1, 5] = 2  # a diagonal pair: one object under 8-connectivity only
    grid[0, 2, 0:3] = 5  # a line
    grid[0, 3, 2] = 6  # touches the line along an edge, another colour: another object
    four, eight = components(grid, 6, 4), components(grid, 6, 8)
    assert four["count"].item() == 4 and eight["count"].item() == 3
    # slots in reading order of each object's first pixel
    assert four["colour"][0].tolist() == [2, 2, 5, 6, 0, 0]
    assert eight["colour"][0].tolist() == [2, 5, 6, 0, 0, 0]
    assert eight["present"][0].tolist() == [True, True, True, False, False, False]
    box = [eight[k][0, 0].item() for k in ("row", "col", "height", "width")]
    assert box == [0, 4, 2, 2]
    assert eight["masks"][0, 1].sum().item() == 3 and eight["masks"][0, 1, 2, 0:3].all()
    assert components(grid, 2, 8)["count"].item() == 3  # counted beyond the slots


def test_the_parse_matches_the_generator_on_atoms_grids():
    arrays = generate(300, seed=5)
    found = components(torch.from_numpy(arrays["grids"]).long(), 6, 4)
    assert np.array_equal(found["count"].numpy(), arrays["n_objects"])


def test_rectangles_round_trip_exactly_through_the_exact_parts():
    """Position, size and colour are coded exactly: with a shape decoder that draws full boxes, a
    grid of rectangles comes back whole at z = μ."""
    net = slot_model()
    net.shape_decoder = FullBox()
    grids = torch.zeros(2, 16, 16, dtype=torch.long)
    grids[0, 1:4, 1:3] = 3
    grids[0, 10, 4:12] = 9
    grids[1, 5:10, 6:11] = 1
    out = net(grids, sample=False)
    assert torch.equal(out.logits.argmax(1), grids)


def test_the_model_names_its_dims_and_uses_an_absent_slot_as_the_prior():
    net = slot_model("model.slots=3", "model.shape_dims=4")
    assert net.latent_dim == 3 * (6 + 4) and len(net.dim_names) == net.latent_dim
    assert net.dim_names[:3] == ["slot 0: presence", "slot 0: row", "slot 0: col"]
    assert net.dim_names[10 + 6] == "slot 1: shape 0"
    grids = torch.zeros(1, 16, 16, dtype=torch.long)
    grids[0, 4, 4:7] = 2
    out = net(grids, sample=False)
    in_use = out.reached[0].view(3, 10)
    assert out.reached.shape == (1, 30) and in_use[0].all()
    assert in_use[1:, 0].all() and not in_use[1:, 1:].any()  # presence always in use
    mu, logvar = out.mu[0].view(3, 10), out.logvar[0].view(3, 10)
    assert torch.equal(mu[1:, 1:], torch.zeros(2, 9))
    assert torch.equal(logvar[1:, 1:], torch.zeros(2, 9))
    assert mu[1:, 0].tolist() == [-1.0, -1.0] and mu[0, 0].item() == 1.0


def test_the_latent_tools_judge_a_slot_dim_over_the_grids_that_use_it():
    """`reached_by` (traverse's KL per dim, its dead dims) agrees with what `forward` reports."""
    cfg = load_config(None, [*SLOTS, "model.slots=3", "model.shape_dims=2"])
    net = build_model(cfg).eval()
    grids = torch.zeros(2, 16, 16, dtype=torch.long)
    grids[0, 1, 1:4] = 5  # one object
    grids[1, 1, 1:4] = 5
    grids[1, 8:10, 8] = 2  # two objects
    reached = reached_by(net, Grids(grids.to(torch.uint8), torch.full((2, 2), 16)), cfg)
    assert torch.equal(reached, net(grids, sample=False).reached)
    assert reached[:, 8].tolist() == [True, True]  # slot 1's presence: every grid's
    assert reached[:, 9].tolist() == [False, True]  # slot 1's row: the second grid's only


def test_free_bits_floor_a_dim_only_over_the_grids_that_use_it():
    kl = torch.tensor([[0.0, 2.0], [0.0, 0.0]])  # dim 0 unused by both grids, dim 1 by the first
    in_use = torch.tensor([[False, True], [False, False]])
    # dim 1: mean KL 1.0 over the batch, floored at λ·(share in use) = 0.5 · 0.5: stays 1.0
    assert free_bits_kl(kl, 0.5, "batch", in_use).mean().item() == pytest.approx(1.0)
    small = torch.tensor([[0.0, 0.1], [0.0, 0.0]])
    assert free_bits_kl(small, 0.5, "batch", in_use).mean().item() == pytest.approx(0.25)
    assert free_bits_kl(small, 0.5, "sample", in_use).tolist() == pytest.approx([0.5, 0.0])


def test_every_weight_of_the_slot_model_trains():
    net = slot_model("model.shape_dims=4", "model.shape_encoder=[32]", "model.shape_decoder=[32]")
    net.train()
    grids = torch.from_numpy(generate(16, seed=1)["grids"]).long()
    parts = elbo(net(grids), grids, None, 0.5, LossOptions(free_bits=0.1))
    parts.loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the share of the batch using each dim: presence always, the 6th slot never (1-4 objects)
    assert parts.reached.shape == (net.latent_dim,) and parts.reached[0] == 1
    assert parts.reached.max() == 1 and parts.reached[-1] == 0


def test_slots_refuse_symbol_padding_and_a_bad_connectivity_by_name():
    for overrides, words in [
        (["data.padding=symbol"], "model.arch=slots cannot be used with data.padding=symbol"),
        (["model.connectivity=6"], "model.connectivity: 6 must be 4"),
        (["model.shape_decoder=[]"], "model.shape_decoder: [] must be a non-empty list"),
    ]:
        with pytest.raises(Exception, match=words.replace("[", r"\[").replace("]", r"\]")):
            load_config(None, [*SLOTS, *overrides])


@pytest.mark.slow
def test_the_slot_recipe_trains_and_evaluates_with_the_rate_by_part(tmp_path, capsys):
    run = tmp_path / "run"
    small = [
        "data.atoms_train=600",
        "data.atoms_val=100",
        "data.samples_per_epoch=512",
        "train.epochs=2",
        "beta.warmup_epochs=1",
        "beta.ramp_epochs=1",
        "model.shape_encoder=[64]",
        "model.shape_decoder=[64]",
        "train.progress=false",
    ]
    argv = ["--config", "configs/atoms_slots.yaml", "--out", str(run), *small]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "slots: 0 of 600 training grids hold more objects than model.slots=6" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in ("completed", "collapsed")
    assert set(summary["final"]["rate_bits_by_part"]) == {*PARTS, "shape"}
    assert main(["evaluate", str(run), "--k", "2", "--limit", "20"]) == 0
    report = json.loads((run / "latent" / "evaluate.json").read_text())
    assert set(report["rate_by_part"]) == {*PARTS, "shape"}
    assert sum(report["rate_by_part"].values()) == pytest.approx(report["rate"], rel=1e-4)
    assert main(["traverse", str(run), "--dims", "3"]) == 0  # the picture's rows name the dims
    traversed = json.loads((run / "latent" / "traverse.json").read_text())
    assert all(name.startswith("slot ") for name in traversed["dim_names"])
