"""Free bits (Kingma et al. 2016): KL' = Σ_d max(λ, KL_d) on a hand-worked example, its gradient
(zero below λ, unchanged above), batch vs per-sample clamping, and the true KL logged beside KL'."""
from __future__ import annotations

import pytest
import torch

from arcvae.losses import LossOptions, elbo, free_bits_kl
from arcvae.model import VAEOutput
from arcvae.tracking import read_metrics
from arcvae.trainer import train

# Two samples, three latent dimensions; KL in nats of each (sample, dimension).
KL = [[0.1, 0.9, 2.0],
      [0.7, 0.3, 1.0]]
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
    plain.sum(1).mean().backward()                     # no free bits: d/dKL_bd = 1/B = 0.5 everywhere
    expected = plain.grad.clone()
    expected[:, 0] = 0.0                               # dimension 0's batch mean 0.4 < λ: no pull at all,
    torch.testing.assert_close(kl.grad, expected)      # even for sample 1, whose own KL 0.7 is above λ


def test_sample_mode_clamps_each_sample_and_dimension():
    kl = kl_leaf()
    per_sample = free_bits_kl(kl, LAMBDA, "sample")
    torch.testing.assert_close(per_sample, torch.tensor([0.5 + 0.9 + 2.0, 0.7 + 0.5 + 1.0]))
    assert per_sample.mean().item() == pytest.approx(2.8)   # differs from batch mode's 2.6
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
    mu = torch.tensor([[0.2, 1.5], [0.4, 2.0]], requires_grad=True)   # KL_d = μ²/2 at σ = 1
    logvar = torch.zeros(2, 2)
    logits = torch.zeros(2, 10, 1, 1)
    target = torch.zeros(2, 1, 1, dtype=torch.long)
    parts = elbo(VAEOutput(logits, mu, logvar), target, None, 1.0, LossOptions(free_bits=0.5, free_bits_mode=mode))
    parts.loss.backward()
    assert torch.all(mu.grad[:, 0] == 0)               # KL 0.02 and 0.08 nats, both below λ = 0.5
    torch.testing.assert_close(mu.grad[:, 1], mu.detach()[:, 1] / 2)  # d(mean_b μ²/2)/dμ = μ/B
    # The breakdown keeps the true KL beside the clamped one.
    true_kl = (mu.detach() ** 2 / 2).sum(1).mean()
    torch.testing.assert_close(parts.kl, true_kl)
    assert parts.kl_clamped.item() == pytest.approx(0.5 + (1.5 ** 2 + 2.0 ** 2) / 4)
    torch.testing.assert_close(parts.loss, parts.recon + parts.kl_clamped)


@pytest.mark.parametrize("seed", range(5))
def test_floored_kl_is_never_below_the_true_kl(seed):
    kl = torch.rand(16, 8, generator=torch.Generator().manual_seed(seed)) * 2
    for mode in ("batch", "sample"):
        assert free_bits_kl(kl, 0.7, mode).mean() >= kl.sum(1).mean() - 1e-6


def test_training_logs_the_true_kl_and_the_clamped_one(tiny_config, tmp_path):
    cfg = tiny_config("loss.free_bits=0.5", "train.epochs=1", "beta.schedule=constant")
    train(cfg, tmp_path / "run")
    records = read_metrics(tmp_path / "run")
    assert records
    floor = cfg.model.latent_dim * 0.5                 # 8 dims x 0.5 nats
    for r in records:
        assert r["kl_clamped"] >= floor - 1e-4         # KL' is floored...
        assert r["kl"] == pytest.approx(sum(r["kl_per_dim"]), rel=1e-3, abs=1e-3)  # ...kl is the true sum
    assert any(r["kl"] < r["kl_clamped"] - 1e-3 for r in records)  # and they differ while dims sit below λ
