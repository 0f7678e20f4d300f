"""The shape is coded exactly (issue 26): a grid's rows and cols go to the decoder (`ShapeInput`)
and come back as they went in, for every shape 1..30 × 1..30 on every any-canvas architecture; a
free-running decode takes the shape head's; the shape head's accuracy is its own figure; a
checkpoint saved before the shape inputs loads and decodes as it did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from arcvae.canvas import mark_outside, sizes_of_tokens
from arcvae.config import ModelConfig
from arcvae.config_io import load_config
from arcvae.data.grids import pad_grids
from arcvae.latent.trained_run import TrainedRun
from arcvae.models.build import build_model, generate
from arcvae.models.conv_any import ConvAnyVAE
from arcvae.models.layers import inside_share
from arcvae.models.patch import PatchVAE
from arcvae.models.resnet import ResNetVAE
from arcvae.training import checkpoint as ckpt
from arcvae.training.bits import neg_log_likelihood
from arcvae.training.metrics import add_accuracy, new_stats, summarize

SMALL = ModelConfig(latent_dim=6, cell_dims=0, embed_dim=4, channels=[8, 16], hidden=0)
EVERY_SHAPE = [(h, w) for h in range(1, 31) for w in range(1, 31)]


def _random_grids(shapes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 10, size=shape, dtype=np.uint8) for shape in shapes]


def _run(arch: str, seed: int = 0) -> TrainedRun:
    """An untrained model of `arch` as `load_run` would hand it over, its shape inputs nonzero so
    that the decoder depends on the shape."""
    cfg = load_config(None, [f"model.arch={arch}", "model.latent_dim=6", "model.channels=[8,16]"])
    torch.manual_seed(seed)
    net = build_model(cfg).eval()
    with torch.no_grad():
        for shape_input in net.shape_in:
            shape_input.weight.normal_()
    return TrainedRun(Path("."), cfg, net, torch.device("cpu"), 0)


@pytest.mark.parametrize("arch", ["patch", "conv_any", "resnet"])
def test_every_shape_comes_back_from_a_reconstruction(arch):
    run = _run(arch)
    originals = _random_grids(EVERY_SHAPE)
    recons = run.reconstruct(originals)
    assert [r.shape for r in recons] == EVERY_SHAPE


def test_every_shape_costs_finite_bits_and_is_decoded_at_its_own_shape():
    run = _run("patch")
    grids = pad_grids(_random_grids(EVERY_SHAPE, seed=1), 30)
    tokens = mark_outside(grids.pixels, grids.sizes)
    assert torch.equal(sizes_of_tokens(tokens), grids.sizes)
    z = torch.randn(len(tokens), run.net.latent_dim)
    with torch.no_grad():
        nll = neg_log_likelihood(run.net, z, tokens, grids.sizes)
    assert nll.shape == (900,) and torch.isfinite(nll).all()
    # the decoded pixels at a grid's shape are those `generate` crops for that shape
    some = torch.tensor([0, 29, 450, 899])
    logits, _ = run.net.decode(z[some], 30, grids.sizes[some])
    grids_out = generate(run.net, z[some], 30, 30, grids.sizes[some])
    for out, picked, (h, w) in zip(grids_out, logits.argmax(1), grids.sizes[some].tolist()):
        assert out.shape == (h, w) and np.array_equal(out, picked[:h, :w].numpy())


@pytest.mark.parametrize("model_class", [ConvAnyVAE, ResNetVAE, PatchVAE])
def test_the_decoder_reads_the_shape_and_its_inputs_start_at_zero(model_class):
    torch.manual_seed(0)
    model = model_class(SMALL, 16, "symbol").eval()
    z = torch.randn(1, model.latent_dim)
    tall, wide = torch.tensor([[16, 3]]), torch.tensor([[3, 16]])
    with torch.no_grad():
        # at zero, the shape changes nothing: a model from before the shape inputs
        assert torch.equal(model.decode(z, 16, tall)[0], model.decode(z, 16, wide)[0])
        for shape_input in model.shape_in:
            shape_input.weight.fill_(1.0)
        # the 3x3 corner both shapes share decodes differently once the decoder is told
        corner = (
            model.decode(z, 16, tall)[0][..., :3, :3] - model.decode(z, 16, wide)[0][..., :3, :3]
        )
    assert corner.abs().max() > 1e-3


def test_a_free_running_decode_takes_the_shape_the_head_predicts():
    run = _run("patch", seed=3)
    z = torch.randn(8, run.net.latent_dim)
    predicted = (run.net.size_logits(z).argmax(-1) + 1).tolist()
    assert [g.shape for g in run.decode(z.numpy())] == [tuple(s) for s in predicted]
    asked = [(1, 30), (30, 1), (6, 25), (2, 2), (30, 30), (1, 1), (17, 4), (9, 9)]
    assert [g.shape for g in run.decode(z.numpy(), sizes=asked)] == asked
    for bad in ([(1, 31)] * 8, [(0, 3)] * 8, [(3, 3)] * 7):
        with pytest.raises(ValueError, match="sizes must be"):
            run.decode(z.numpy(), sizes=bad)


def test_inside_share_is_the_share_of_each_cell_inside_the_grid():
    share = inside_share(torch.tensor([[3, 5]]), side=2, factor=4)[0, 0]
    # rows 0-3 of the first cell hold 3 of the grid's rows, cols 0-3 all 4 of its first columns
    assert share.tolist() == [[0.75, 0.75 * 0.25], [0.0, 0.0]]
    assert inside_share(torch.tensor([[7, 7]]), side=7, factor=1)[0, 0].eq(1).all()


def test_a_grid_is_exact_on_its_pixels_and_the_shape_head_is_judged_apart():
    target = torch.tensor([[[1, 2], [3, 4]]])
    logits = torch.nn.functional.one_hot(target.long(), 10).permute(0, 3, 1, 2).float()
    wrong_shape = torch.zeros(1, 2, 30)
    wrong_shape[:, :, 0] = 1.0  # the head says 1x1
    stats = new_stats(1, "cpu")
    add_accuracy(stats, logits, target, torch.tensor([[2, 2]]), torch.zeros(1, 1), wrong_shape)
    figures = summarize(stats)
    assert figures["grid_accuracy"] == 1.0 and figures["shape_accuracy"] == 0.0


def test_a_checkpoint_from_before_the_shape_inputs_decodes_as_it_did():
    run = _run("patch", seed=5)
    net = run.net
    with torch.no_grad():
        for shape_input in net.shape_in:
            shape_input.weight.zero_()
    old = {k: v for k, v in net.state_dict().items() if not k.startswith("shape_in.")}
    torch.manual_seed(9)
    fresh = build_model(run.config).eval()
    ckpt.load_state(fresh, old)
    grids = _random_grids([(3, 7), (30, 1), (12, 12)], seed=2)
    again = TrainedRun(Path("."), run.config, fresh, torch.device("cpu"), 0)
    assert all(
        np.array_equal(a, b) for a, b in zip(run.reconstruct(grids), again.reconstruct(grids))
    )
