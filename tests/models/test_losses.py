"""Dependence measures, divergences and reconstruction losses: known answers and safe gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairdistill.models.blocks import FeatureBlock
from fairdistill.models.losses import (
    bernoulli_kl,
    decoded_divergence,
    distance_correlation,
    distance_covariance_sq,
    fairness_penalty,
    gaussian_kl,
    parity_gap,
    reconstruction_loss,
)


def _naive_distance_moments(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """dCov^2 and dCor straight from the definition, for comparison."""

    def centred(values: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(values[:, None, :] - values[None, :, :], axis=-1)
        return d - d.mean(axis=0) - d.mean(axis=1)[:, None] + d.mean()

    a, b = centred(x), centred(y)
    covariance = (a * b).mean()
    return covariance, np.sqrt(covariance / np.sqrt((a * a).mean() * (b * b).mean()))


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x[:, :1] ** 2 + rng.normal(size=(120, 1))
    covariance, correlation = _naive_distance_moments(x, y)
    assert distance_covariance_sq(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(
        covariance, rel=1e-6
    )
    assert distance_correlation(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(
        correlation, rel=1e-5
    )


def test_independent_samples_have_small_dependence(generator: torch.Generator) -> None:
    x = torch.randn(500, 4, generator=generator)
    y = torch.randn(500, 2, generator=generator)
    dependent = x[:, :2] + 0.5 * torch.randn(500, 2, generator=generator)
    assert distance_covariance_sq(x, y).item() < 0.01
    assert distance_covariance_sq(x, dependent).item() > 0.1
    assert distance_correlation(x, y).item() < 0.15
    assert distance_correlation(x, dependent).item() > 0.5


def test_nonlinear_dependence_is_detected(generator: torch.Generator) -> None:
    # Uncorrelated but dependent: Pearson correlation misses it, distance correlation does not.
    half = torch.randn(250, 1, generator=generator)
    x = torch.cat([half, -half])  # symmetric, so x and x^2 are exactly uncorrelated
    y = x**2
    assert abs(np.corrcoef(x[:, 0].numpy(), y[:, 0].numpy())[0, 1]) < 1e-6
    assert distance_correlation(x, y).item() > 0.4


def test_distance_correlation_is_scale_invariant(generator: torch.Generator) -> None:
    x = torch.randn(300, 3, generator=generator)
    y = x[:, :1] + torch.randn(300, 1, generator=generator)
    reference = distance_correlation(x, y).item()
    for scale in (1e-2, 0.3, 10.0, 1e3):
        assert distance_correlation(scale * x, y).item() == pytest.approx(reference, abs=1e-4)
        assert distance_correlation(x, scale * y).item() == pytest.approx(reference, abs=1e-4)


def test_distance_correlation_lies_in_unit_interval(generator: torch.Generator) -> None:
    x = torch.randn(200, 2, generator=generator)
    assert distance_correlation(x, x).item() == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= distance_correlation(x, torch.randn(200, 2, generator=generator)).item() <= 1.0


@pytest.mark.parametrize("measure", [distance_covariance_sq, distance_correlation])
def test_gradients_are_finite_on_degenerate_batches(measure, generator: torch.Generator) -> None:
    sensitive = torch.eye(2)[torch.randint(0, 2, (64,), generator=generator)]
    constant = torch.full((64, 4), 3.0, requires_grad=True)
    repeated = torch.randn(8, 4, generator=generator).repeat(8, 1).requires_grad_(True)
    for latent in (constant, repeated):
        value = measure(latent, sensitive)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(latent.grad).all()
    # A batch where everyone is in the same group carries no dependence at all.
    one_group = torch.zeros(64, 2)
    one_group[:, 0] = 1.0
    latent = torch.randn(64, 4, generator=generator, requires_grad=True)
    value = measure(latent, one_group)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(latent.grad).all()


def test_constant_input_has_zero_distance_correlation() -> None:
    constant = torch.ones(50, 3)
    assert distance_correlation(constant, torch.randn(50, 2)).item() == pytest.approx(0, abs=1e-5)


def test_penalty_gradient_reduces_dependence(generator: torch.Generator) -> None:
    groups = torch.randint(0, 2, (256,), generator=generator)
    sensitive = torch.eye(2)[groups]
    latent = torch.randn(256, 4, generator=generator)
    latent[:, 0] += 2.0 * groups
    latent.requires_grad_(True)
    before = distance_correlation(latent, sensitive)
    before.backward()
    with torch.no_grad():
        after = distance_correlation(latent - 0.5 * latent.grad / latent.grad.norm(), sensitive)
    assert after < before


def test_equalized_odds_penalty_ignores_dependence_through_the_label(
    generator: torch.Generator,
) -> None:
    label = torch.randint(0, 2, (400,), generator=generator)
    # The group follows the label, and the latent follows the label only: dependent on s
    # overall, independent of s within each label stratum.
    groups = torch.where(torch.rand(400, generator=generator) < 0.8, label, 1 - label)
    sensitive = torch.eye(2)[groups]
    latent = label[:, None].float() * 3.0 + torch.randn(400, 2, generator=generator)
    parity = fairness_penalty(latent, sensitive, label, "demographic_parity")
    odds = fairness_penalty(latent, sensitive, label, "equalized_odds")
    assert parity.item() > 0.3
    assert odds.item() < 0.15


def test_equalized_odds_penalty_skips_tiny_strata(generator: torch.Generator) -> None:
    label = torch.zeros(40, dtype=torch.long)
    label[:3] = 1
    sensitive = torch.eye(2)[torch.randint(0, 2, (40,), generator=generator)]
    latent = torch.randn(40, 2, generator=generator)
    expected = distance_correlation(latent[label == 0], sensitive[label == 0])
    actual = fairness_penalty(latent, sensitive, label, "equalized_odds")
    assert actual.item() == pytest.approx(expected.item())


def test_parity_gap_measures_the_spread_of_group_rates() -> None:
    groups = torch.eye(3)[torch.tensor([0, 0, 1, 1, 1, 1])]
    equal = torch.tensor([0.2, 0.6, 0.4, 0.4, 0.4, 0.4])
    assert parity_gap(equal, groups).item() == pytest.approx(0.0, abs=1e-6)
    # Rates 0.8 (weight 1/3) and 0.2 (weight 2/3): overall 0.4, spread sqrt(0.08).
    unequal = torch.tensor([0.8, 0.8, 0.2, 0.2, 0.2, 0.2], requires_grad=True)
    gap = parity_gap(unequal, groups)
    assert gap.item() == pytest.approx(0.08**0.5, rel=1e-5)
    gap.backward()
    assert torch.isfinite(unequal.grad).all()
    flat = torch.full((6,), 0.5, requires_grad=True)
    parity_gap(flat, groups).backward()
    assert torch.isfinite(flat.grad).all()


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zeros = torch.zeros(5, 3)
    assert gaussian_kl(zeros, zeros).item() == pytest.approx(0.0)
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension.
    assert gaussian_kl(torch.ones(5, 3), zeros).item() == pytest.approx(1.5)
    assert gaussian_kl(zeros, torch.full((5, 3), -2.0)).item() > 0


def test_bernoulli_kl_is_zero_for_equal_and_positive_for_different() -> None:
    logits = torch.tensor([-2.0, 0.0, 3.0])
    assert bernoulli_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    p, q = torch.sigmoid(torch.tensor(1.0)), torch.sigmoid(torch.tensor(-1.0))
    expected = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
    assert bernoulli_kl(torch.tensor([1.0]), torch.tensor([-1.0])).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


BLOCKS = [
    FeatureBlock("colour", "categorical", 0, 3),
    FeatureBlock("height", "continuous", 3, 1),
    FeatureBlock("size", "categorical", 4, 2),
    FeatureBlock("weight", "continuous", 6, 1),
    FeatureBlock("shape", "categorical", 7, 3),
]


def _target() -> torch.Tensor:
    return torch.tensor(
        [
            [1, 0, 0, 0.5, 0, 1, -1.0, 0, 0, 1],
            [0, 0, 1, -2.0, 1, 0, 0.0, 1, 0, 0],
        ]
    )


def test_reconstruction_loss_matches_the_blockwise_likelihood() -> None:
    params = torch.randn(2, 10, generator=torch.Generator().manual_seed(1))
    logvar = torch.tensor([[0.3, -1.0], [0.0, 2.0]])
    target = _target()
    expected = torch.zeros(2)
    continuous = 0
    for block in BLOCKS:
        columns = slice(block.start, block.stop)
        if block.kind == "categorical":
            log_probs = torch.log_softmax(params[:, columns], dim=1)
            expected -= (target[:, columns] * log_probs).sum(dim=1)
        else:
            error = (target[:, block.start] - params[:, block.start]) ** 2
            variance_log = logvar[:, continuous]
            expected += 0.5 * (variance_log + error / variance_log.exp())
            continuous += 1
    actual = reconstruction_loss({"params": params, "logvar": logvar}, target, BLOCKS)
    assert actual.item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_reconstruction_loss_with_plain_tensor_uses_unit_variance() -> None:
    target = _target()
    with_zero_logvar = reconstruction_loss(
        {"params": target * 5.0, "logvar": torch.zeros(2, 2)}, target, BLOCKS
    )
    assert reconstruction_loss(target * 5.0, target, BLOCKS).item() == pytest.approx(
        with_zero_logvar.item()
    )


def test_reconstruction_is_lower_for_a_better_prediction() -> None:
    target = _target()
    good = reconstruction_loss(target * 6.0, target, BLOCKS)
    bad = reconstruction_loss((1.0 - target) * 6.0, target, BLOCKS)
    assert good < bad


def test_decoded_divergence_is_zero_for_identical_outputs_only() -> None:
    rng = torch.Generator().manual_seed(2)
    first = {
        "params": torch.randn(4, 10, generator=rng),
        "logvar": torch.randn(4, 2, generator=rng),
    }
    second = {"params": torch.randn(4, 10, generator=rng), "logvar": first["logvar"]}
    assert decoded_divergence(first, first, BLOCKS).item() == pytest.approx(0.0, abs=1e-6)
    assert decoded_divergence(first, second, BLOCKS).item() > 0.1
