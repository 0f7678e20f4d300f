"""The ELBO's parts at the scale of docs/design.md, checked against torch's own implementations, and
free bits (Kingma et al. 2016): KL' = Σ_d max(λ, KL_d) on a hand-worked example, its gradient (zero
below λ, unchanged above), batch vs per-sample clamping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from arcvae.canvas import inside
from arcvae.config import LossConfig
from arcvae.models.layers import VAEOutput
from arcvae.training.losses import LossOptions, elbo, free_bits_kl, kl_per_sample_dim, recon_loss


def random_case(
    seed: int, batch: int = 3, side: int = 5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    torch.testing.assert_close(
        recon_loss(logits, target, "focal", None, gamma=0.0), recon_loss(logits, target, "ce")
    )
    torch.testing.assert_close(
        recon_loss(logits, target, "focal", weights, gamma=0.0),
        recon_loss(logits, target, "weighted_ce", weights),
    )


def test_recon_is_summed_over_pixels_and_averaged_over_the_batch():
    logits, target, weights = random_case(1, batch=4, side=6)
    B = logits.shape[0]
    torch.testing.assert_close(
        recon_loss(logits, target, "ce").mean(),
        F.cross_entropy(logits, target, reduction="sum") / B,
    )
    # weighted cross-entropy with reduction="sum" is Σ w[t]·nll: the same scale, not torch's
    # weighted mean.
    torch.testing.assert_close(
        recon_loss(logits, target, "weighted_ce", weights).mean(),
        F.cross_entropy(logits, target, weight=weights, reduction="sum") / B,
    )
    per_sample = [
        F.cross_entropy(logits[i : i + 1], target[i : i + 1], reduction="sum") for i in range(B)
    ]
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
    assert (
        LossOptions.from_config(
            LossConfig(recon="focal", class_weights="none"), weights
        ).class_weights
        is None
    )


def test_unknown_recon_kind_is_refused():
    logits, target, _ = random_case(4)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        recon_loss(logits, target, "dice")


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(5)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    reference = kl_divergence(
        Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(4, 6), torch.ones(4, 6))
    )
    torch.testing.assert_close(kl_per_sample_dim(mu, logvar), reference)


def test_elbo_is_recon_plus_beta_times_kl_summed_over_dims_and_batch_averaged():
    logits, target, weights = random_case(6, batch=4)
    g = torch.Generator().manual_seed(7)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    parts = elbo(
        VAEOutput(logits, mu, logvar),
        target,
        None,
        0.3,
        LossOptions(recon="focal", class_weights=weights, gamma=2.0),
    )
    reference_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(parts.kl, reference_kl)
    torch.testing.assert_close(parts.kl_clamped, reference_kl)  # no free bits: KL' is the KL
    torch.testing.assert_close(
        parts.recon, recon_loss(logits, target, "focal", weights, 2.0).mean()
    )
    torch.testing.assert_close(parts.loss, parts.recon + 0.3 * parts.kl)
    torch.testing.assert_close(parts.kl_per_dim.sum(), parts.kl)


def test_free_bits_floor_each_dimension_of_the_batch_mean():
    kl = torch.tensor([[0.0, 2.0, 0.1], [0.2, 4.0, 0.1]])  # batch means per dim: 0.1, 3.0, 0.1
    torch.testing.assert_close(free_bits_kl(kl, 0.5, "batch").mean(), torch.tensor(0.5 + 3.0 + 0.5))
    torch.testing.assert_close(
        free_bits_kl(kl, 0.5, "sample"), torch.tensor([0.5 + 2.0 + 0.5, 0.5 + 4.0 + 0.5])
    )
    torch.testing.assert_close(free_bits_kl(kl, 0.0), kl.sum(1))


# ---------------------------------------------------------------- the ELBO on a small batch


def _small_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 10, 5, 6, generator=g)
    target = torch.randint(0, 10, (4, 5, 6), generator=g)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    return logits, target, mu, logvar


def test_recon_ce_is_cross_entropy_summed_over_pixels_per_sample():
    logits, target, _, _ = _small_batch()
    per_sample = recon_loss(logits, target, "ce")
    assert per_sample.shape == (4,)
    for i in range(4):
        torch.testing.assert_close(
            per_sample[i], F.cross_entropy(logits[i : i + 1], target[i : i + 1], reduction="sum")
        )


def test_elbo_value_at_the_design_scale():
    logits, target, mu, logvar = _small_batch()
    beta = 0.3
    parts = elbo(VAEOutput(logits, mu, logvar), target, None, beta, LossOptions(recon="ce"))
    batch = logits.shape[0]
    recon_ref = F.cross_entropy(logits, target, reduction="sum") / batch
    kl_dims = kl_divergence(
        Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    )
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
    torch.testing.assert_close(
        free_bits_kl(kl, lam, "sample").mean(), kl.clamp(min=lam).sum(1).mean()
    )
    torch.testing.assert_close(free_bits_kl(kl, 0.0).mean(), kl.sum(1).mean())


# ---------------------------------------------------------------- free bits, worked by hand

# Two samples, three latent dimensions; KL in nats of each (sample, dimension).
KL = [[0.1, 0.9, 2.0], [0.7, 0.3, 1.0]]


# Batch means per dimension: 0.4, 0.6, 1.5. With λ = 0.5 only dimension 0 is below the floor.
LAMBDA = 0.5


def kl_leaf() -> torch.Tensor:
    return torch.tensor(KL, requires_grad=True)


def test_batch_mode_value_is_the_sum_of_floored_batch_means():
    value = free_bits_kl(kl_leaf(), LAMBDA, "batch").mean()
    assert value.item() == pytest.approx(max(0.5, 0.4) + max(0.5, 0.6) + max(0.5, 1.5))  # 2.6


def test_batch_mode_gradient_is_zero_below_the_floor_and_unchanged_above():
    kl = kl_leaf()
    free_bits_kl(kl, LAMBDA, "batch").mean().backward()
    plain = kl_leaf()
    plain.sum(1).mean().backward()  # no free bits: d/dKL_bd = 1/B = 0.5 everywhere
    expected = plain.grad.clone()
    expected[:, 0] = 0.0  # dimension 0's batch mean 0.4 < λ: no pull at all,
    torch.testing.assert_close(kl.grad, expected)  # even for sample 1, whose own KL 0.7 is above λ


def test_sample_mode_clamps_each_sample_and_dimension():
    kl = kl_leaf()
    per_sample = free_bits_kl(kl, LAMBDA, "sample")
    torch.testing.assert_close(per_sample, torch.tensor([0.5 + 0.9 + 2.0, 0.7 + 0.5 + 1.0]))
    assert per_sample.mean().item() == pytest.approx(2.8)  # differs from batch mode's 2.6
    per_sample.mean().backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]))


def test_zero_disables_and_a_floor_above_everything_is_constant():
    kl = kl_leaf()
    torch.testing.assert_close(free_bits_kl(kl, 0.0, "batch"), kl.sum(1))
    high = kl_leaf()
    value = free_bits_kl(high, 5.0, "batch").mean()
    value.backward()
    assert value.item() == pytest.approx(3 * 5.0) and torch.count_nonzero(high.grad) == 0


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_gradient_reaches_the_encoder_only_through_dimensions_above_the_floor(mode):
    """Through the ELBO: μ of a dimension whose KL is below λ gets no gradient from the KL term."""
    mu = torch.tensor([[0.2, 1.5], [0.4, 2.0]], requires_grad=True)  # KL_d = μ²/2 at σ = 1
    logvar = torch.zeros(2, 2)
    logits = torch.zeros(2, 10, 1, 1)
    target = torch.zeros(2, 1, 1, dtype=torch.long)
    parts = elbo(
        VAEOutput(logits, mu, logvar),
        target,
        None,
        1.0,
        LossOptions(free_bits=0.5, free_bits_mode=mode),
    )
    parts.loss.backward()
    assert torch.all(mu.grad[:, 0] == 0)  # KL 0.02 and 0.08 nats, both below λ = 0.5
    torch.testing.assert_close(mu.grad[:, 1], mu.detach()[:, 1] / 2)  # d(mean_b μ²/2)/dμ = μ/B
    # The breakdown keeps the true KL beside the clamped one.
    true_kl = (mu.detach() ** 2 / 2).sum(1).mean()
    torch.testing.assert_close(parts.kl, true_kl)
    assert parts.kl_clamped.item() == pytest.approx(0.5 + (1.5**2 + 2.0**2) / 4)
    torch.testing.assert_close(parts.loss, parts.recon + parts.kl_clamped)


@pytest.mark.parametrize("seed", range(5))
def test_floored_kl_is_never_below_the_true_kl(seed):
    kl = torch.rand(16, 8, generator=torch.Generator().manual_seed(seed)) * 2
    for mode in ("batch", "sample"):
        assert free_bits_kl(kl, 0.7, mode).mean() >= kl.sum(1).mean() - 1e-6


def test_mean_reduction_divides_each_grids_recon_by_the_pixels_it_counts():
    """The seed's scaling (loss.reduction=mean): black mode divides by the whole canvas, symbol mode
    by each grid's own pixels (the shape term stays as it is); the KL is untouched, so β weighs
    ~pixels× more."""
    logits, target, weights = random_case(3, batch=2, side=6)
    mu, logvar = torch.randn(2, 4), torch.randn(2, 4)
    out = VAEOutput(logits, mu, logvar, size_logits=torch.randn(2, 2, 30))
    summed = elbo(out, target, None, 0.5, LossOptions("focal", "sum", class_weights=weights))
    mean = elbo(out, target, None, 0.5, LossOptions("focal", "mean", class_weights=weights))
    torch.testing.assert_close(mean.recon, summed.recon / 36)
    torch.testing.assert_close(mean.kl, summed.kl)
    sizes = torch.tensor([[2, 3], [6, 6]])
    per_grid = recon_loss(logits, target, "ce", mask=inside(sizes, 6))
    symbol = elbo(out, target, sizes, 0.5, LossOptions("ce", "mean", padding="symbol"))
    torch.testing.assert_close(
        symbol.recon - symbol.shape, (per_grid / torch.tensor([6.0, 36.0])).mean()
    )


def test_an_unknown_reduction_is_one_config_error():
    from arcvae.config_io import load_config
    from arcvae.errors import ConfigError

    with pytest.raises(ConfigError, match="loss.reduction"):
        load_config(None, ["loss.reduction=median"])


def test_free_bits_grant_no_floor_to_a_dim_the_canvas_does_not_reach():
    """Dim 2 is beyond the canvas (the prior: KL 0): KL' floors dims 0 and 1 only, in both modes."""
    kl = torch.tensor([[0.1, 0.9, 0.0], [0.7, 0.3, 0.0]])
    reached = torch.tensor([True, True, False])
    batch = free_bits_kl(kl, LAMBDA, "batch", reached).mean()
    assert batch.item() == pytest.approx(max(0.5, 0.4) + max(0.5, 0.6) + 0.0)
    sample = free_bits_kl(kl, LAMBDA, "sample", reached).mean()
    assert sample.item() == pytest.approx(((0.5 + 0.9) + (0.7 + 0.5)) / 2)
