"""Bits (issue 26): the lossless baselines on grids whose answer is known, the evaluation's rate and
distortion against a hand computation of the unweighted likelihood, and the IWAE bound against the
ELBO, on tiny untrained models."""

from __future__ import annotations

import lzma
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arcvae.canvas import inside
from arcvae.data.batches import grid_batches
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.models.build import build_model
from arcvae.training.bits import (
    LN2,
    add_bits,
    baselines,
    bit_figures,
    grid_bytes,
    iwae_nats,
    new_bit_sums,
    sample_generator,
)
from arcvae.training.evaluation import evaluate, evaluating
from arcvae.training.losses import LossOptions
from arcvae.training.precision import Precision

FP32 = Precision(torch.device("cpu"), bf16=False)
SHAPE = math.log2(900)  # rows and cols, 30 choices each


# ---------------------------------------------------------------- lossless baselines


def test_a_grid_is_coded_as_its_shape_then_a_byte_a_pixel():
    assert grid_bytes(np.array([[0, 1, 2], [3, 4, 9]], dtype=np.uint8)) == bytes(
        [2, 3, 0, 1, 2, 3, 4, 9]
    )


def test_uniform_and_order0_of_two_equiprobable_colours():
    # 4 + 6 pixels, five black and five blue: one bit a pixel
    grids = [np.array([[0, 1], [1, 0]]), np.array([[0, 0, 0], [1, 1, 1]])]
    figures = baselines(grids)
    assert figures["uniform"] == pytest.approx(5 * math.log2(10) + SHAPE)
    assert figures["order0"] == pytest.approx(5 * 1.0 + SHAPE)


def test_one_colour_costs_only_the_shape_at_order0():
    assert baselines([np.zeros((3, 4), dtype=np.uint8)])["order0"] == pytest.approx(SHAPE)


def test_deflate_codes_each_grid_and_xz_the_whole_set():
    grids = [np.full((5, 5), c, dtype=np.uint8) for c in range(4)]
    codes = [bytes([5, 5]) + bytes([c]) * 25 for c in range(4)]
    figures = baselines(grids)
    assert figures["deflate_per_grid"] == 8 * np.mean([len(zlib.compress(c, 9)) for c in codes])
    whole = lzma.compress(b"".join(codes), preset=9 | lzma.PRESET_EXTREME)
    assert figures["xz_whole_set"] == 8 * len(whole) / 4


def test_the_baselines_of_arc1_evaluation_are_those_of_the_design_notes():
    figures = baselines(load_arc_grids("arc1", "evaluation"))
    rounded = {name: round(value) for name, value in figures.items()}
    assert rounded == {"uniform": 702, "order0": 491, "deflate_per_grid": 386, "xz_whole_set": 183}


# ---------------------------------------------------------------- the model's bits


def some_grids(seed: int = 0, n: int = 6) -> list[np.ndarray]:
    """n grids of random shapes up to 10x10, mostly black with a few colours."""
    rng = np.random.default_rng(seed)
    grids = []
    for _ in range(n):
        rows, cols = rng.integers(1, 11, size=2)
        colours = rng.integers(0, 10, size=(rows, cols))
        grids.append(np.where(rng.random((rows, cols)) < 0.6, 0, colours).astype(np.uint8))
    return grids


@pytest.fixture(params=["symbol", "black"])
def tiny_model(request, tiny_config):
    """An untrained model of each padding mode at fp32 (so a hand computation agrees), and its
    config."""
    arch = "conv_any" if request.param == "symbol" else "conv"
    cfg = tiny_config(f"model.arch={arch}", f"data.padding={request.param}", "train.precision=fp32")
    torch.manual_seed(0)
    return build_model(cfg).eval(), cfg


def batches_of(grids: list[np.ndarray], cfg, batch_size: int = 4) -> list:
    return [batch for _, batch in grid_batches(pad_grids(grids, 10), cfg, batch_size)]


def hand_distortion_nats(net, cfg, batches) -> float:
    """Σ over the grids of -log p(x|z) at the evaluation's draws, from F.cross_entropy: the grid's
    own pixels and its rows and cols in symbol mode, every pixel of the canvas in black mode."""
    generator = sample_generator("cpu")
    total = 0.0
    for grids, sizes in batches:
        with torch.no_grad():
            mu, logvar = net.encode(grids)
            eps = torch.randn(mu.shape, generator=generator)
            logits, size_logits = net.decode(mu + eps * (0.5 * logvar).exp(), grids.shape[-1])
        target = grids.long()
        if cfg.data.padding == "symbol":
            own = inside(sizes, grids.shape[-1])
            nll = F.cross_entropy(logits, target.masked_fill(~own, 0), reduction="none")
            total += nll[own].sum().item()
            shape = F.cross_entropy(
                size_logits.flatten(0, 1), (sizes - 1).flatten(), reduction="sum"
            )
            total += shape.item()
        else:
            total += F.cross_entropy(logits, target, reduction="sum").item()
    return total


def test_distortion_is_the_unweighted_likelihood_and_class_weights_do_not_move_it(tiny_model):
    net, cfg = tiny_model
    grids = some_grids()
    batches = batches_of(grids, cfg)
    plain = evaluate(net, batches, 0.0, LossOptions(padding=cfg.data.padding), FP32, 0.01)
    weighted_options = LossOptions(
        recon="focal",
        class_weights=torch.linspace(0.1, 5.0, 10),
        padding=cfg.data.padding,
    )
    weighted = evaluate(net, batches, 0.0, weighted_options, FP32, 0.01)
    assert weighted["recon"] != pytest.approx(plain["recon"])  # the training loss does move
    for key in ("rate_bits", "distortion_bits", "neg_elbo_bits"):
        assert weighted[key] == plain[key]
    expected = hand_distortion_nats(net, cfg, batches) / len(grids) / LN2
    assert plain["distortion_bits"] == pytest.approx(expected, rel=1e-5)
    assert plain["rate_bits"] == pytest.approx(plain["kl"] / LN2, rel=1e-6)
    assert plain["neg_elbo_bits"] == pytest.approx(plain["rate_bits"] + plain["distortion_bits"])


def test_two_evaluations_give_the_same_bits_and_leave_the_global_rng_alone(tiny_model):
    net, cfg = tiny_model
    batches = batches_of(some_grids(), cfg)
    options = LossOptions(padding=cfg.data.padding)
    state = torch.get_rng_state()
    first = evaluate(net, batches, 0.0, options, FP32, 0.01)
    assert torch.equal(torch.get_rng_state(), state)  # training's draws are not shifted
    assert evaluate(net, batches, 0.0, options, FP32, 0.01) == first


def posterior(net, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's μ, log σ² moved by a seeded offset: an untrained encoder sits near the prior,
    where the rate and the bounds' gap are too small for a test to see an error in them (here the
    rate is ~14 nats a grid)."""
    g = torch.Generator().manual_seed(0)
    mu, logvar = net.encode(grids)
    shift, spread = torch.randn(2, *mu.shape, generator=g)
    return mu + 1.5 * shift, logvar - 2 + 0.5 * spread


def draws_of_one_sample_bounds(net, cfg, batch, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n draws of the one-sample -ELBO (rate + distortion at one z) and of the K=1 IWAE, in nats
    summed over the batch, from generators of their own."""
    grids, sizes = batch
    elbo_gen, iwae_gen = sample_generator("cpu", 10), sample_generator("cpu", 20)
    neg_elbo, iwae = [], []
    with evaluating(net, FP32):
        mu, logvar = posterior(net, grids)
        for _ in range(n):
            sums = new_bit_sums("cpu")
            add_bits(sums, net, mu, logvar, grids, sizes, elbo_gen)
            neg_elbo.append(bit_figures(sums)["neg_elbo_bits"] * LN2 * len(grids))
            iwae.append(iwae_nats(net, mu, logvar, grids, sizes, 1, iwae_gen).sum().item())
    return np.array(neg_elbo), np.array(iwae)


def test_iwae_with_one_sample_is_the_elbo_in_expectation(tiny_model):
    net, cfg = tiny_model
    neg_elbo, iwae = draws_of_one_sample_bounds(net, cfg, batches_of(some_grids(), cfg, 6)[0], 300)
    error = math.sqrt((neg_elbo.var() + iwae.var()) / len(iwae))
    assert abs(neg_elbo.mean() - iwae.mean()) < 4 * error


def test_iwae_with_64_samples_is_below_the_elbo(tiny_model):
    net, cfg = tiny_model
    batch = batches_of(some_grids(1), cfg, 6)[0]
    neg_elbo, _ = draws_of_one_sample_bounds(net, cfg, batch, 64)
    with evaluating(net, FP32):
        mu, logvar = posterior(net, batch.grids)
        iwae = iwae_nats(net, mu, logvar, batch.grids, batch.sizes, 64, sample_generator("cpu"))
    assert iwae.dtype == torch.float64 and iwae.shape == (len(batch.grids),)
    # the ELBO's own sampling noise (2 standard errors) is the tolerance: the gap is larger
    assert iwae.sum().item() <= neg_elbo.mean() + 2 * neg_elbo.std() / math.sqrt(len(neg_elbo))
