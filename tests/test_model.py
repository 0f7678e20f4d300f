"""The architectures. conv: shapes at several grid sizes and widths; z = μ without sampling;
gradients reach every weight. conv_any: any canvas 1..grid_size, the position-indexed readout, the
shape head, and `generate` giving back a grid of its true shape after a short overfit on real ARC
grids. resnet: the same canvases, residual blocks that start as the identity, learned upsampling,
every weight trained (how much better it memorises a real batch than conv_any is a measurement:
bench/memorise.py). patch: the same canvases (odd ones included) through 2×2 patches in and out:
each pixel of a patch gets its own logits, the encoder sees every pixel of a patch, and every weight
trains."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arcvae.canvas import PAD, canvas_sizes, mark_outside
from arcvae.config import ModelConfig
from arcvae.config_io import load_config
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.errors import ConfigError
from arcvae.models.build import build_model, generate
from arcvae.models.conv import FixedCanvasVAE
from arcvae.models.conv_any import ConvAnyVAE
from arcvae.models.layers import ResBlock
from arcvae.models.patch import PatchVAE
from arcvae.models.resnet import ResNetVAE
from arcvae.training.losses import LossOptions, elbo


def _grids(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 10, (batch, size, size), generator=torch.Generator().manual_seed(seed)
    ).to(torch.uint8)


def _model(size: int, channels=(8, 16), latent: int = 6, seed: int = 0) -> FixedCanvasVAE:
    torch.manual_seed(seed)
    return FixedCanvasVAE(
        ModelConfig(latent_dim=latent, cell_dims=0, embed_dim=4, channels=list(channels)), size
    )


# ---------------------------------------------------------------- conv


@pytest.mark.parametrize("size", [30, 16, 10, 7])
@pytest.mark.parametrize("channels", [[8], [8, 16], [8, 16, 32]])
def test_output_shapes(size, channels):
    out = _model(size, channels, latent=5)(_grids(3, size))
    assert out.logits.shape == (3, 10, size, size)
    assert out.mu.shape == out.logvar.shape == (3, 5)
    assert torch.isfinite(out.logits).all()


# The default widths with one global vector (conv, conv_any and resnet have no cells).
WIDE = ModelConfig(latent_dim=256, cell_dims=0)


def test_the_default_widths_at_30x30():
    model = FixedCanvasVAE(WIDE, 30)
    out = model(_grids(2, 30))
    assert out.logits.shape == (2, 10, 30, 30) and out.mu.shape == (2, 256)


def test_without_sampling_z_is_mu_so_the_output_is_deterministic():
    model = _model(10).eval()
    grids = _grids(4, 10)
    first, second = model(grids, sample=False), model(grids, sample=False)
    assert torch.equal(first.logits, second.logits)
    assert torch.equal(first.logits, model.decode(first.mu, 10)[0])
    torch.manual_seed(1)
    sampled = model(grids, sample=True)
    assert not torch.equal(sampled.logits, first.logits)  # sampling does draw z = μ + σ·ε


def test_uint8_and_int64_grids_give_the_same_output():
    model = _model(7)
    grids = _grids(2, 7)
    assert torch.equal(model(grids, sample=False).logits, model(grids.long(), sample=False).logits)


def test_gradients_reach_every_parameter_and_one_step_changes_every_weight():
    model = _model(10, channels=[8, 16, 32])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    grids = _grids(8, 10)
    out = model(grids)
    elbo(out, grids, None, beta=0.5).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change after one step"


# ---------------------------------------------------------------- conv_any

SMALL = ModelConfig(latent_dim=6, cell_dims=0, embed_dim=4, channels=[8, 16, 32])


def _any_model(
    padding: str = "symbol", grid_size: int = 30, cfg: ModelConfig = SMALL, seed: int = 0
) -> ConvAnyVAE:
    torch.manual_seed(seed)
    return ConvAnyVAE(cfg, grid_size, padding)


def _tokens(batch: int, canvas: int, padding: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, 11 if padding == "symbol" else 10, (batch, canvas, canvas), generator=g
    ).to(torch.uint8)


@pytest.mark.parametrize("arch", ["conv_any", "resnet", "patch"])
@pytest.mark.parametrize("padding", ["symbol", "black"])
def test_every_canvas_1_to_30_gives_logits_on_that_canvas(padding, arch):
    model = {"conv_any": _any_model, "resnet": _resnet, "patch": _patch}[arch](padding)
    for canvas in range(1, 31):
        out = model(_tokens(2, canvas, padding, seed=canvas))
        assert out.logits.shape == (2, 10, canvas, canvas), canvas
        assert out.mu.shape == out.logvar.shape == (2, 6)
        assert torch.isfinite(out.logits).all()
        if padding == "symbol":
            assert out.size_logits.shape == (2, 2, 30)
        else:
            assert out.size_logits is None


def test_the_default_widths_at_small_and_full_canvases():
    model = ConvAnyVAE(WIDE, 30, "symbol")
    for canvas in (4, 30):
        out = model(_tokens(2, canvas, "symbol"))
        assert out.logits.shape == (2, 10, canvas, canvas) and out.mu.shape == (2, 256)
    # conv's parameters, plus the PAD embedding row, the size head (D -> 2x30) and the shape
    # inputs (a vector of the channels of each decoder map: the bottom, then each level's input).
    conv = sum(p.numel() for p in FixedCanvasVAE(WIDE, 30).parameters())
    shape_in = WIDE.channels[-1] + sum(WIDE.channels)
    assert sum(p.numel() for p in model.parameters()) == conv + 16 + 256 * 60 + 60 + shape_in
    assert sum(p.numel() for p in ConvAnyVAE(WIDE, 30, "black").parameters()) == conv


def test_the_readout_is_a_linear_layer_over_the_bottom_map_zero_padded_to_the_full_canvas():
    model = _any_model()
    M = 4  # 30 -> 15 -> 8 -> 4
    for canvas in (3, 9, 17, 30):
        grids = _tokens(3, canvas, "symbol", seed=canvas)
        h = model.encoder(model.embed(grids.long()).permute(0, 3, 1, 2))
        m = h.shape[-1]
        padded = F.pad(h, (0, M - m, 0, M - m)).flatten(1)
        stats = F.linear(padded, model.readout.stats_weight.flatten(1), model.readout.stats_bias)
        mu, logvar = model.encode(grids)
        torch.testing.assert_close(torch.cat([mu, logvar], 1), stats)


def test_canvases_beyond_grid_size_and_conv_on_another_canvas_are_refused():
    with pytest.raises(ValueError, match="canvases 1..16"):
        _any_model(grid_size=16)(_tokens(1, 20, "symbol"))
    with pytest.raises(ValueError, match="canvases 1..16"):
        _any_model(grid_size=16).decode(torch.zeros(1, 6), 17)
    torch.manual_seed(0)
    conv = FixedCanvasVAE(SMALL, 10)
    with pytest.raises(ValueError, match="only its 10x10 canvas"):
        conv.decode(torch.zeros(1, 6), 8)


def test_build_model_passes_the_padding_mode_and_refuses_conv_with_symbol():
    symbol = build_model(
        load_config(None, ["model.arch=conv_any", "model.cell_dims=0", "data.padding=symbol"])
    )
    assert (
        isinstance(symbol, ConvAnyVAE)
        and symbol.padding == "symbol"
        and symbol.embed.num_embeddings == 11
    )
    black = build_model(
        load_config(None, ["model.arch=conv_any", "model.cell_dims=0", "data.padding=black"])
    )
    assert black.padding == "black" and black.embed.num_embeddings == 10 and black.to_sizes is None
    cfg = load_config(None, ["model.arch=conv", "model.cell_dims=0", "data.padding=black"])
    cfg.data.padding = "symbol"  # bypassing the validation of load_config
    with pytest.raises(
        ConfigError, match="model.arch=conv cannot be used with data.padding=symbol"
    ):
        build_model(cfg)


def test_gradients_reach_every_parameter_in_symbol_mode():
    model = _any_model()
    grids = pad_grids(load_arc_grids("arc1", "training")[:16], 30)
    canvas = 30
    tokens = mark_outside(grids.pixels, grids.sizes)
    out = model(tokens)
    elbo(
        out, tokens, grids.sizes, 0.5, LossOptions(recon="focal", padding="symbol")
    ).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    assert canvas == tokens.shape[-1]


def test_generate_crops_to_the_size_heads_argmax_on_each_samples_bucket():
    model = _any_model()
    sizes = torch.tensor([[3, 7], [1, 1], [30, 2], [12, 30], [8, 8]])
    with torch.no_grad():  # the size head reads rows from z[0], cols from z[1]: one-hot scores
        model.to_sizes.weight.zero_()
        model.to_sizes.bias.zero_()
        model.to_sizes.weight.view(2, 30, 6)[0, :, 0] = torch.arange(30.0)
        model.to_sizes.weight.view(2, 30, 6)[1, :, 1] = torch.arange(30.0)
        # argmax_k k*z - k²/2 = round(z)
        model.to_sizes.bias.view(2, 30).copy_(-0.5 * torch.arange(30.0) ** 2)
    z = torch.zeros(5, 6)
    z[:, :2] = (sizes - 1).float()
    grids = generate(model, z, 4, 30)
    assert [g.shape for g in grids] == [tuple(s) for s in sizes.tolist()]
    assert all(g.dtype == np.uint8 and g.max() <= 9 for g in grids)
    # each is the crop of the decode on its bucket canvas
    canvases = canvas_sizes(sizes, 4, 30)
    for g, zi, c, (h, w) in zip(grids, z, canvases.tolist(), sizes.tolist()):
        assert np.array_equal(g, model.decode(zi[None], c)[0].argmax(1)[0, :h, :w].numpy())


def test_generate_of_a_black_mode_model_returns_the_whole_canvas():
    grids = generate(_any_model("black", grid_size=12), torch.randn(3, 6), 4, 12)
    assert [g.shape for g in grids] == [(12, 12)] * 3
    torch.manual_seed(0)
    assert [g.shape for g in generate(FixedCanvasVAE(SMALL, 10), torch.randn(2, 6), 4, 10)] == [
        (10, 10)
    ] * 2


def _overfit(model, batches, steps: int, lr: float = 1e-2) -> None:
    """Adam at β = 0 on fixed (tokens, sizes) batches, one after the other."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    options = LossOptions(recon="ce", padding="symbol")
    for step in range(steps):
        tokens, sizes = batches[step % len(batches)]
        loss = elbo(model(tokens, sample=False), tokens, sizes, 0.0, options).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.fixture(scope="module")
def arc1() -> list[np.ndarray]:
    return load_arc_grids("arc1", "training")


@pytest.mark.slow
def test_grids_of_every_size_1_to_30_come_back_with_their_true_shape(arc1):
    """Crops of a real 30x30 ARC grid with rows 1..30 and cols 30..1 (every size on both axes)."""
    big = next(g for g in arc1 if g.shape == (30, 30) and len(np.unique(g)) > 3)
    crops = [big[:k, : 31 - k] for k in range(1, 31)]
    grids = pad_grids(crops, 30)
    # one batch, carried up to the full canvas
    batch = (
        mark_outside(grids.pixels, grids.sizes),
        grids.sizes,
    )
    # 500 steps: the size head only learns once μ has grown (seeds 0-5 all pass; 150-300 steps fail
    # some)
    model = _any_model(cfg=ModelConfig(latent_dim=16, cell_dims=0, embed_dim=4, channels=[8, 16]))
    _overfit(model, [batch], steps=500, lr=1e-2)
    with torch.no_grad():
        mu, _ = model.encode(batch[0])
    out = generate(model, mu, 4, 30)
    assert [g.shape for g in out] == [c.shape for c in crops]


@pytest.mark.slow
def test_a_3x7_grid_goes_in_and_the_same_3x7_grid_comes_out(arc1):
    first = next(g for g in arc1 if g.shape == (3, 7))
    real = [
        first,
        np.ascontiguousarray(first.T),
    ]  # and its transpose (as augmentation makes it), 7x3
    grids = pad_grids(real, 30)
    canvas = int(canvas_sizes(grids.sizes, 4, 30).max())
    assert canvas == 8
    tokens = mark_outside(grids.pixels[:, :canvas, :canvas], grids.sizes)
    assert (tokens[0, 3:] == PAD).all()
    model = _any_model(cfg=ModelConfig(latent_dim=8, cell_dims=0, embed_dim=8, channels=[16, 32]))
    _overfit(model, [(tokens, grids.sizes)], steps=120)
    with torch.no_grad():
        mu, _ = model.encode(tokens)
    out = generate(model, mu, 4, 30)
    assert out[0].shape == (3, 7) and out[1].shape == (7, 3)
    assert np.array_equal(out[0], real[0]) and np.array_equal(out[1], real[1])


# ---------------------------------------------------------------- resnet


def _resnet(padding: str = "symbol", cfg: ModelConfig = SMALL, seed: int = 0) -> ResNetVAE:
    torch.manual_seed(seed)
    return ResNetVAE(cfg, 30, padding)


def test_build_model_makes_the_resnet_in_both_padding_modes():
    for padding, tokens in (("symbol", 11), ("black", 10)):
        model = build_model(
            load_config(None, ["model.arch=resnet", "model.cell_dims=0", f"data.padding={padding}"])
        )
        assert (
            isinstance(model, ResNetVAE)
            and model.padding == padding
            and model.embed.num_embeddings == tokens
        )
        assert any(isinstance(m, ResBlock) for m in model.modules())
        assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())


def test_a_new_residual_block_is_the_identity():
    block = ResBlock(16)
    x = torch.randn(3, 16, 5, 5)
    torch.testing.assert_close(block(x), x)


def test_learned_upsampling_lets_the_four_cells_of_one_bottom_cell_differ():
    """With nearest upsampling the cells that a 1×1 bottom map becomes start as copies; a transposed
    conv gives each its own weights, so a 2×2 canvas decodes to four different logit vectors."""
    model = _resnet("black")
    logits, _ = model.decode(torch.randn(1, 6), 2)
    cells = logits[0].flatten(1).T  # (4, 10)
    assert all(not torch.allclose(cells[i], cells[j]) for i in range(4) for j in range(i + 1, 4))


def test_every_resnet_weight_trains_on_real_grids():
    """Two steps: the second conv of each block starts at zero, so the first conv's gradient appears
    at step 2."""
    model = _resnet()
    grids = pad_grids(load_arc_grids("arc1", "training")[:16], 30)
    tokens = mark_outside(grids.pixels, grids.sizes)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        elbo(
            model(tokens), tokens, grids.sizes, 0.5, LossOptions(recon="focal", padding="symbol")
        ).loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change in two steps"


# ---------------------------------------------------------------- patch


def _patch(
    padding: str = "symbol", cfg: ModelConfig = SMALL, seed: int = 0, blocks: int = 1
) -> PatchVAE:
    torch.manual_seed(seed)
    return PatchVAE(dataclasses.replace(cfg, blocks=blocks), 30, padding)


def test_build_model_makes_the_patch_model_with_its_blocks_and_no_full_resolution_conv():
    for blocks in (0, 2):
        model = build_model(load_config(None, ["model.arch=patch", f"model.blocks={blocks}"]))
        assert isinstance(model, PatchVAE) and model.padding == "symbol"
        assert sum(isinstance(m, ResBlock) for m in model.modules()) == 2 * blocks * len(
            model.widths
        )
        # a 2×2 patch of embeddings
        assert model.encoder[0][0].in_channels == 4 * model.embed.embedding_dim
        assert model.to_logits.out_channels == 40  # 10 logits for each of its 4 pixels
    with pytest.raises(ConfigError, match="model.blocks"):
        load_config(None, ["model.blocks=-1"])


@pytest.mark.parametrize("canvas", [2, 7, 30])
def test_every_pixel_of_a_patch_reaches_the_encoder_and_gets_its_own_logits(canvas):
    model = _patch("symbol")
    grids = _tokens(1, canvas, "symbol", seed=canvas)
    mu = model.encode(grids)[0]
    for row, col in ((0, 0), (0, 1), (1, 0), (1, 1), (canvas - 1, canvas - 1)):
        changed = grids.clone()
        changed[0, row, col] = (int(grids[0, row, col]) + 1) % 11
        assert not torch.allclose(model.encode(changed)[0], mu), (row, col)
    logits, _ = model.decode(torch.randn(1, 6), canvas)
    cells = logits[0, :, :2, :2].flatten(1).T  # the four pixels of the first patch: (4, 10)
    assert all(not torch.allclose(cells[i], cells[j]) for i in range(4) for j in range(i + 1, 4))


def test_every_patch_weight_trains_on_real_grids(arc1):
    model = _patch()
    grids = pad_grids(arc1[:16], 30)
    tokens = mark_outside(grids.pixels, grids.sizes)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # each block's second conv starts at zero: the first conv's gradient appears at step 2
    for _ in range(2):
        optimizer.zero_grad()
        elbo(
            model(tokens),
            tokens,
            grids.sizes,
            0.5,
            LossOptions(recon="weighted_ce", padding="symbol"),
        ).loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change in two steps"


def test_a_hidden_layer_between_the_global_vector_and_the_map_trains_in_every_any_canvas_arch():
    """model.hidden: z reaches the bottom map through a GELU layer both ways; each of its weights
    gets a gradient, and conv (one linear bottleneck) refuses it by name."""
    for arch in ("patch", "conv_any", "resnet"):
        cfg = load_config(
            None,
            [f"model.arch={arch}", "model.latent_dim=10", "model.cell_dims=0", "model.hidden=32"],
        )
        model = build_model(cfg)
        assert model.readout.to_stats.in_features == model.readout.from_z.out_features == 32
        tokens = _tokens(4, 12, "symbol")
        out = model(tokens)
        assert out.mu.shape == (4, 10) and out.logits.shape == (4, 10, 12, 12)
        out.logits.sum().backward()
        for name in ("to_stats.weight", "from_z.weight", "stats_weight", "from_latent.weight"):
            grad = dict(model.readout.named_parameters())[name].grad
            assert grad is not None and grad.abs().sum() > 0, (arch, name)
    with pytest.raises(ConfigError, match="model.hidden: 32 needs an any-canvas model.arch"):
        load_config(None, ["model.arch=conv", "data.padding=black", "model.hidden=32"])
