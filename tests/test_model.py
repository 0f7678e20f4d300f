"""Model shapes at several grid sizes and widths; z = μ without sampling; gradients reach every weight.
Losses at the DESIGN.md scale, checked against torch's own KL and cross-entropy."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from arcvae.config import ModelConfig
from arcvae.losses import LossOptions, elbo, free_bits_kl, kl_per_sample_dim, recon_loss
from arcvae.model import GridVAE, VAEOutput


def _grids(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 10, (batch, size, size), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def _model(size: int, channels=(8, 16), latent: int = 6, seed: int = 0) -> GridVAE:
    torch.manual_seed(seed)
    return GridVAE(ModelConfig(latent_dim=latent, embed_dim=4, channels=list(channels)), size)


# ---------------------------------------------------------------- model

@pytest.mark.parametrize("size", [30, 16, 10, 7])
@pytest.mark.parametrize("channels", [[8], [8, 16], [8, 16, 32]])
def test_output_shapes(size, channels):
    out = _model(size, channels, latent=5)(_grids(3, size))
    assert out.logits.shape == (3, 10, size, size)
    assert out.mu.shape == out.logvar.shape == (3, 5)
    assert torch.isfinite(out.logits).all()


def test_the_default_model_at_30x30():
    model = GridVAE(ModelConfig(), 30)
    out = model(_grids(2, 30))
    assert out.logits.shape == (2, 10, 30, 30) and out.mu.shape == (2, 64)


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


# ---------------------------------------------------------------- losses at the DESIGN.md scale

def _small_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 10, 5, 6, generator=g)
    target = torch.randint(0, 10, (4, 5, 6), generator=g)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    return logits, target, mu, logvar


def test_kl_matches_torch_distributions():
    _, _, mu, logvar = _small_batch()
    ours = kl_per_sample_dim(mu, logvar)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(ours, ref)


def test_recon_ce_is_cross_entropy_summed_over_pixels_per_sample():
    logits, target, _, _ = _small_batch()
    per_sample = recon_loss(logits, target, "ce")
    assert per_sample.shape == (4,)
    for i in range(4):
        torch.testing.assert_close(per_sample[i], F.cross_entropy(logits[i:i + 1], target[i:i + 1], reduction="sum"))


def test_elbo_value_at_the_design_scale():
    logits, target, mu, logvar = _small_batch()
    beta = 0.3
    parts = elbo(VAEOutput(logits, mu, logvar), target, None, beta, LossOptions(recon="ce"))
    batch = logits.shape[0]
    recon_ref = F.cross_entropy(logits, target, reduction="sum") / batch
    kl_dims = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    kl_ref = kl_dims.sum(1).mean()
    torch.testing.assert_close(parts.recon, recon_ref)
    torch.testing.assert_close(parts.kl, kl_ref)
    torch.testing.assert_close(parts.kl_clamped, kl_ref)
    torch.testing.assert_close(parts.kl_per_dim, kl_dims.mean(0))
    torch.testing.assert_close(parts.loss, recon_ref + beta * kl_ref)


def test_free_bits_clamp_each_dimensions_batch_mean():
    _, _, mu, logvar = _small_batch()
    kl = kl_per_sample_dim(mu, logvar)
    lam = kl.mean(0).median().item()  # some dimensions below the floor, some above
    expected = torch.clamp(kl.mean(0), min=lam).sum()
    torch.testing.assert_close(free_bits_kl(kl, lam, "batch").mean(), expected)
    torch.testing.assert_close(free_bits_kl(kl, lam, "sample").mean(), kl.clamp(min=lam).sum(1).mean())
    torch.testing.assert_close(free_bits_kl(kl, 0.0).mean(), kl.sum(1).mean())
