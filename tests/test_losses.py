"""The ELBO's parts at the scale of DESIGN.md, checked against torch's own implementations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from arcvae.config import LossConfig
from arcvae.losses import LossOptions, elbo, free_bits_kl, kl_per_sample_dim, recon_loss
from arcvae.model import VAEOutput


def random_case(seed: int, batch: int = 3, side: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (B, 10, S, S), targets (B, S, S) and positive class weights (10,)."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, 10, side, side, generator=g)
    target = torch.randint(0, 10, (batch, side, side), generator=g)
    weights = torch.rand(10, generator=g) * 5 + 0.1
    return logits, target, weights


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4), side=st.integers(1, 6))
def test_focal_at_gamma_zero_is_cross_entropy(seed, batch, side):
    logits, target, weights = random_case(seed, batch, side)
    torch.testing.assert_close(recon_loss(logits, target, "focal", None, gamma=0.0), recon_loss(logits, target, "ce"))
    torch.testing.assert_close(recon_loss(logits, target, "focal", weights, gamma=0.0),
                               recon_loss(logits, target, "weighted_ce", weights))


def test_recon_is_summed_over_pixels_and_averaged_over_the_batch():
    logits, target, weights = random_case(1, batch=4, side=6)
    B = logits.shape[0]
    torch.testing.assert_close(recon_loss(logits, target, "ce").mean(),
                               F.cross_entropy(logits, target, reduction="sum") / B)
    # weighted cross-entropy with reduction="sum" is Σ w[t]·nll: the same scale, not torch's weighted mean.
    torch.testing.assert_close(recon_loss(logits, target, "weighted_ce", weights).mean(),
                               F.cross_entropy(logits, target, weight=weights, reduction="sum") / B)
    per_sample = [F.cross_entropy(logits[i:i + 1], target[i:i + 1], reduction="sum") for i in range(B)]
    torch.testing.assert_close(recon_loss(logits, target, "ce"), torch.stack(per_sample))


def test_focal_matches_its_formula_and_never_exceeds_weighted_ce():
    logits, target, weights = random_case(2)
    p_t = logits.softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)
    expected = (-weights[target] * (1 - p_t) ** 2 * p_t.log()).flatten(1).sum(1)
    focal = recon_loss(logits, target, "focal", weights, gamma=2.0)
    torch.testing.assert_close(focal, expected)
    assert (focal <= recon_loss(logits, target, "weighted_ce", weights)).all()


def test_plain_ce_ignores_class_weights():
    _, _, weights = random_case(3)
    for recon, kept in (("ce", False), ("weighted_ce", True), ("focal", True)):
        options = LossOptions.from_config(LossConfig(recon=recon, class_weights="inverse"), weights)
        assert (options.class_weights is weights) == kept
    assert LossOptions.from_config(LossConfig(recon="focal", class_weights="none"), weights).class_weights is None


def test_unknown_recon_kind_is_refused():
    logits, target, _ = random_case(4)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        recon_loss(logits, target, "dice")


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(5)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(4, 6), torch.ones(4, 6)))
    torch.testing.assert_close(kl_per_sample_dim(mu, logvar), reference)


def test_elbo_is_recon_plus_beta_times_kl_summed_over_dims_and_batch_averaged():
    logits, target, weights = random_case(6, batch=4)
    g = torch.Generator().manual_seed(7)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    parts = elbo(VAEOutput(logits, mu, logvar), target, None, 0.3, LossOptions(recon="focal", class_weights=weights, gamma=2.0))
    reference_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(parts.kl, reference_kl)
    torch.testing.assert_close(parts.kl_clamped, reference_kl)  # no free bits: KL' is the KL
    torch.testing.assert_close(parts.recon, recon_loss(logits, target, "focal", weights, 2.0).mean())
    torch.testing.assert_close(parts.loss, parts.recon + 0.3 * parts.kl)
    torch.testing.assert_close(parts.kl_per_dim.sum(), parts.kl)


def test_free_bits_floor_each_dimension_of_the_batch_mean():
    kl = torch.tensor([[0.0, 2.0, 0.1], [0.2, 4.0, 0.1]])  # batch means per dim: 0.1, 3.0, 0.1
    torch.testing.assert_close(free_bits_kl(kl, 0.5, "batch").mean(), torch.tensor(0.5 + 3.0 + 0.5))
    torch.testing.assert_close(free_bits_kl(kl, 0.5, "sample"), torch.tensor([0.5 + 2.0 + 0.5, 0.5 + 4.0 + 0.5]))
    torch.testing.assert_close(free_bits_kl(kl, 0.0), kl.sum(1))
