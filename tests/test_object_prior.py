"""The object prior (latent/object_prior.py) on a slot model whose drawing is known: its shape
decoder fills the whole field, so every object is a filled rectangle of its height x width. Fitting
recovers the hand-made codes' counts and colours; its draws decode to grids whose objects fit the
canvas, neither overlap nor touch, follow the fitted counts and sit in the slots in reading order;
the free places are exact; the cache is kept per step; a run that is not a slot model is one
line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import SLOTS, FullBox, slot_model

from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.data.grids import Grids
from arcvae.data.validity import objects
from arcvae.errors import ArcVaeError
from arcvae.latent import object_prior as op
from arcvae.latent.slot_code import code_of, drawn, read
from arcvae.latent.trained_run import TrainedRun
from arcvae.models.build import build_model
from arcvae.models.slots import PARTS, components


def box_model(*overrides: str):
    net = slot_model("model.shape_dims=2", *overrides)
    net.shape_decoder = FullBox()
    return net


def code(net, slots: list[dict]) -> torch.Tensor:
    """z (D,) of hand-built slots {row, col, height, width, colour}, a random shape code each; the
    other slots absent (presence -1, 0 elsewhere)."""
    z = torch.zeros(net.slots, net.per_slot)
    z[:, 0] = -1.0
    for k, slot in enumerate(slots):
        z[k, 0] = 1.0
        for i, part in enumerate(PARTS[1:], 1):
            z[k, i] = code_of(part, torch.tensor(slot[part]))
        z[k, len(PARTS) :] = torch.randn(net.shape_dims)
    return z.flatten()


def hand_made(net, n: int = 300) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """n codes of 1-3 rectangles apart from each other (counts 3:2:1), and their counts and
    colours."""
    codes, counts, colours = [], [], []
    for i in range(n):
        count = (1, 1, 1, 2, 2, 3)[i % 6]
        slots = [
            dict(row=1 + 5 * k, col=1 + i % 8, height=1 + i % 3, width=2 + i % 4, colour=c)
            for k, c in enumerate([(i + k) % 9 + 1 for k in range(count)])
        ]
        codes.append(code(net, slots))
        counts.append(count)
        colours += [s["colour"] for s in slots]
    return torch.stack(codes), np.array(counts), np.array(colours)


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    net = box_model()
    mu, counts, colours = hand_made(net)
    return net, op.fit_object_prior(net, mu, 16, components_=2), counts, colours


def test_fitting_recovers_the_counts_colours_sizes_and_that_objects_never_touch(fitted):
    _, prior, counts, colours = fitted
    assert np.allclose(prior.counts, np.bincount(counts, minlength=7) / len(counts))
    assert np.allclose(prior.colours, np.bincount(colours - 1, minlength=9) / len(colours))
    assert prior.pixels.tolist() == [2, 15]  # 1x2 ... 3x5 rectangles, as the model draws them
    assert not prior.may_touch and int(prior.connectivity) == 4
    # the position tables: places where the box fits only, each a distribution
    assert np.allclose(prior.rows[1:].sum(1), 1) and prior.rows[3, 14:].sum() == 0


def test_draws_decode_to_grids_of_objects_apart_in_reading_order(fitted):
    net, prior, _, _ = fitted
    z = prior.sample(net, 300, seed=0)
    assert z.shape == (300, net.latent_dim) and torch.equal(z, prior.sample(net, 300, seed=0))
    parts = read(net, z)
    present = parts["presence"]
    shown = present.sum(1)
    # absent slots come last and are presence -1 with every other dim 0
    assert torch.equal(present.long(), present.long().sort(dim=1, descending=True).values)
    absent = z.view(300, net.slots, net.per_slot)[~present]
    assert (absent[:, 0] == -1).all() and (absent[:, 1:] == 0).all()
    # the counts follow the fitted shares
    shares = np.bincount(shown.numpy(), minlength=len(prior.counts)) / 300
    assert np.abs(shares - prior.counts).max() < 0.08
    # on the canvas
    assert ((parts["row"] + parts["height"] <= 16) & (parts["col"] + parts["width"] <= 16))[
        present
    ].all()
    # neither overlapping nor touching: every slot is one object of the decoded grid, the parse
    # finds them in the slots' order with the slots' boxes and colours
    grids = net.decode(z, 16)[0].argmax(1)  # (300, 16, 16)
    found = components(grids, net.slots, 4)
    assert torch.equal(found["count"], shown) and torch.equal(found["present"], present)
    for name in ("row", "col", "height", "width", "colour"):
        assert torch.equal(found[name][present], parts[name][present]), name
    cells = drawn(net, z, 16)  # (300, K, 16, 16)
    near = op.grown(cells.flatten(0, 1), 4).view_as(cells)
    others = cells.sum(1, keepdim=True) - cells.long() > 0
    assert not (near & others).any()
    assert all(len(objects(g.numpy())) == int(k) for g, k in zip(grids, shown))


def test_free_places_forbid_overlap_the_canvas_edge_and_touching_as_fitted(fitted):
    _, prior, _, _ = fitted
    occupied = torch.zeros(1, 16, 16, dtype=torch.long)
    occupied[0, 5, 5] = 3
    dot = torch.zeros(1, 16, 16, dtype=torch.bool)
    dot[0, 0, 0] = True

    def forbidden(colour: int, **changes) -> set[tuple[int, int]]:
        changed = prior.__class__(**{**prior.__dict__, **changes})
        free = op.free_places(dot, occupied, torch.tensor([colour]), changed)[0]
        return {tuple(p) for p in (~free).nonzero().tolist()}

    cross = {(5, 5), (4, 5), (6, 5), (5, 4), (5, 6)}
    square = {(5 + dy, 5 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert forbidden(4) == cross  # atoms: no touching along an edge, whatever the colours
    assert forbidden(4, may_touch=np.array(True)) == {(5, 5)}  # other colours may touch
    assert forbidden(3, may_touch=np.array(True)) == cross  # its own colour never
    assert forbidden(3, may_touch=np.array(True), connectivity=np.array(8)) == square
    # a 2x3 box at the top-left: it must stay on the canvas
    box = torch.zeros(1, 16, 16, dtype=torch.bool)
    box[0, :2, :3] = True
    free = op.free_places(box, torch.zeros(1, 16, 16, dtype=torch.long), torch.tensor([1]), prior)
    assert free[0, :15, :14].all() and not free[0, 15:].any() and not free[0, :, 14:].any()


def test_codes_whose_objects_touch_let_other_colours_touch():
    net = box_model()
    side_by_side = [
        dict(row=2, col=2, height=2, width=2, colour=1),
        dict(row=2, col=4, height=2, width=2, colour=2),
    ]
    mu = torch.stack([code(net, side_by_side)] * 20)
    assert op.fit_object_prior(net, mu, 16, components_=1).may_touch


def a_run(tmp_path, net, arch_overrides=(), step=7) -> TrainedRun:
    cfg = load_config(None, [*SLOTS, *arch_overrides])
    return TrainedRun(tmp_path, cfg, net, torch.device("cpu"), step)


def test_the_prior_is_fitted_once_a_step_and_kept_in_the_run(tmp_path, capsys, fitted):
    net = fitted[0]
    grids = torch.zeros(40, 16, 16, dtype=torch.uint8)
    grids[:, 2:4, 3:6] = 4
    grids[::2, 9, 10:15] = 7
    train = Grids(grids, torch.full((40, 2), 16))
    run = a_run(tmp_path, net, ["model.shape_dims=2"])
    prior = op.load_object_prior(run, train)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "fitted to μ of 40 training grids (step 7)" in lines[0]
    assert (tmp_path / "object_prior.npz").exists() and prior.pixels.tolist() == [5, 6]
    assert np.allclose(prior.counts[1:3], [0.5, 0.5])
    again = op.load_object_prior(run, train)  # read back, not fitted again
    assert capsys.readouterr().out == "" and np.array_equal(again.means, prior.means)
    run.step = 8
    op.load_object_prior(run, train)
    assert "(step 8)" in capsys.readouterr().out


def test_a_run_that_is_not_a_slot_model_is_one_line(tmp_path):
    cfg = load_config(None, ["data.grid_size=10", "model.latent_dim=8", "model.channels=[8,16]"])
    run = TrainedRun(tmp_path / "plain", cfg, build_model(cfg), torch.device("cpu"), 1)
    with pytest.raises(ArcVaeError) as exc:
        op.load_object_prior(run)
    message = str(exc.value)
    assert "\n" not in message and str(tmp_path / "plain") in message
    assert "model.arch=slots" in message and not (tmp_path / "plain").exists()


def test_sample_with_the_object_prior_on_a_trained_slot_run(rectangle_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(rectangle_run, run)  # a prior of its own: the shared run may have one kept
    (run / "object_prior.npz").unlink(missing_ok=True)
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "50", "--prior", "objects"]) == 0
    out = capsys.readouterr().out
    assert "object prior: fitted to μ of 600 training grids" in out
    assert (run / "object_prior.npz").exists()
    report = json.loads((run / "latent" / "samples.json").read_text())
    assert report["prior"].startswith("the object prior") and len(report["grids"]) == 50
    assert 0 <= report["valid_share"] <= 1
    assert main(["sample", str(run), "--n", "50", "--prior", "objects"]) == 0
    assert "object prior: fitted" not in capsys.readouterr().out  # the kept prior


def test_the_gmm_prior_fits_a_slot_runs_codes(rectangle_run, tmp_path):
    """A slot run's μ holds dims constant over many grids (absent slots): the mixture is fitted in
    float64, where float32 EM stopped on an ill-defined covariance."""
    out = tmp_path / "gmm"
    assert (
        main(["sample", str(rectangle_run), "--n", "20", "--prior", "gmm", "--out", str(out)]) == 0
    )
    assert len(json.loads((out / "samples.json").read_text())["grids"]) == 20
