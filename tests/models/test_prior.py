from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from fairdistill.models.checkpoint import load_arrays, save_arrays
from fairdistill.models.errors import CheckpointError
from fairdistill.models.prior import GaussianMixturePrior


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    """Two well separated, correlated clusters in 3 dimensions."""
    rng = np.random.default_rng(0)
    covariance = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    first = rng.multivariate_normal([0.0, 0.0, 0.0], covariance, 3000)
    second = rng.multivariate_normal([6.0, -4.0, 2.0], 0.5 * covariance, 1000)
    return np.concatenate([first, second])


@pytest.fixture(scope="module")
def prior(codes: np.ndarray) -> GaussianMixturePrior:
    return GaussianMixturePrior.fit(codes, n_components=2, seed=0)


def test_fit_recovers_the_clusters(prior: GaussianMixturePrior):
    order = np.argsort(prior.weights)
    assert np.allclose(prior.weights[order], [0.25, 0.75], atol=0.02)
    assert np.allclose(prior.means[order[0]], [6.0, -4.0, 2.0], atol=0.1)
    assert np.allclose(prior.means[order[1]], [0.0, 0.0, 0.0], atol=0.1)


def test_sample_is_deterministic_per_seed(prior: GaussianMixturePrior):
    first, again, other = prior.sample(500, seed=4), prior.sample(500, seed=4), prior.sample(500, 5)

    assert first.dtype == np.float32 and first.shape == (500, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_samples_match_the_codes_moments(prior: GaussianMixturePrior, codes: np.ndarray):
    samples = prior.sample(40_000, seed=1).astype(np.float64)

    assert np.allclose(samples.mean(axis=0), codes.mean(axis=0), atol=0.1)
    assert np.allclose(np.cov(samples.T), np.cov(codes.T), atol=0.25)
    # Rows are interleaved across components, not grouped by component.
    in_second = samples[:, 0] > 3.0
    assert 0.2 < in_second[:1000].mean() < 0.3


def test_log_likelihood_matches_scikit_learn(prior: GaussianMixturePrior, codes: np.ndarray):
    reference = GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(codes)
    assert prior.log_likelihood(codes) == pytest.approx(reference.score(codes), rel=1e-9)
    far_away = codes + 50.0
    assert prior.log_likelihood(far_away) < prior.log_likelihood(codes) - 100


def test_log_likelihood_of_many_components_matches_scikit_learn() -> None:
    """The row-scaled prior: hundreds of components, some nearly degenerate, scored in
    chunks; scikit-learn given the same mixture is the reference."""
    rng = np.random.default_rng(3)
    scales = np.r_[np.ones(4), np.full(8, 0.03)]
    codes = rng.normal(size=(9_000, 12)) * scales + 2.0
    codes[:200] = codes[0]  # a cluster of one repeated code
    prior = GaussianMixturePrior.fit(codes, n_components=None, seed=0)
    assert prior.n_components > 100
    reference = GaussianMixture(n_components=prior.n_components, covariance_type="full")
    reference.weights_, reference.means_ = prior.weights, prior.means
    # scikit-learn keeps the Cholesky factor of the precision: L^-T for covariance L L^T.
    inverse = np.linalg.inv(prior.covariance_cholesky)
    reference.precisions_cholesky_ = inverse.transpose(0, 2, 1)
    assert prior.log_likelihood(codes) == pytest.approx(reference.score(codes), rel=1e-9)
    moved = codes + rng.normal(scale=0.1, size=codes.shape)
    assert prior.log_likelihood(moved) == pytest.approx(reference.score(moved), rel=1e-9)


def test_arrays_round_trip_through_a_file(prior: GaussianMixturePrior, tmp_path: Path):
    sha = save_arrays(tmp_path / "prior.safetensors", prior.to_arrays(), {"kind": "prior"})
    arrays, metadata = load_arrays(tmp_path / "prior.safetensors", expected_sha256=sha)
    restored = GaussianMixturePrior.from_arrays(arrays)

    assert metadata == {"kind": "prior"}
    assert np.array_equal(restored.sample(300, seed=9), prior.sample(300, seed=9))


def test_from_arrays_refuses_arrays_that_do_not_form_a_mixture(prior: GaussianMixturePrior):
    arrays = prior.to_arrays()
    with pytest.raises(CheckpointError, match="do not form a mixture"):
        GaussianMixturePrior.from_arrays({**arrays, "means": arrays["means"][:, :2]})
    with pytest.raises(CheckpointError, match="lacks"):
        GaussianMixturePrior.from_arrays({"weights": arrays["weights"]})


def test_fewer_codes_than_components_caps_the_components():
    codes = np.random.default_rng(2).normal(size=(4, 2))
    prior = GaussianMixturePrior.fit(codes, n_components=10, seed=0)
    assert prior.n_components == 4
    assert np.isfinite(prior.sample(10, seed=0)).all()


def test_fit_refuses_non_finite_codes():
    with pytest.raises(ValueError, match="finite"):
        GaussianMixturePrior.fit(np.array([[0.0, np.nan], [1.0, 2.0]]), n_components=1)


def test_by_default_components_grow_with_the_rows_and_stand_for_groups_of_codes() -> None:
    from fairdistill.models.prior import MIN_COMPONENT_ROWS, components_for_rows

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(5000, 3))
    prior = GaussianMixturePrior.fit(codes, None, seed=0)
    assert components_for_rows(5000) == 100
    assert 1 < prior.n_components <= 100
    # Every component holds at least MIN_COMPONENT_ROWS codes: none describes one row.
    assert prior.weights.min() * len(codes) >= MIN_COMPONENT_ROWS - 1e-9
    assert np.isclose(prior.weights.sum(), 1.0)
    again = GaussianMixturePrior.fit(codes, None, seed=0)
    np.testing.assert_array_equal(prior.means, again.means)
    sample = prior.sample(20_000, seed=1)
    np.testing.assert_allclose(sample.mean(axis=0), codes.mean(axis=0), atol=0.05)
    np.testing.assert_allclose(sample.std(axis=0), codes.std(axis=0), atol=0.08)


def test_group_weights_let_each_group_draw_from_where_its_codes_lie() -> None:
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 2, 4000)
    # Group 1's codes sit apart from group 0's: a latent that still knows the group.
    codes = rng.normal(size=(4000, 2)) + 4.0 * groups[:, None]
    prior = GaussianMixturePrior.fit(codes, None, seed=0, groups=groups, group_count=2)
    assert prior.group_weights is not None and prior.group_weights.shape[1] == 2
    drawn = prior.sample(4000, seed=3, groups=np.ones(4000, dtype=np.int64))
    assert drawn.mean() > 3.0  # group 1's rows come from group 1's region
    anyone = prior.sample(4000, seed=3)
    assert 1.0 < anyone.mean() < 3.0
    stored = GaussianMixturePrior.from_arrays(prior.to_arrays())
    np.testing.assert_array_equal(stored.group_weights, prior.group_weights)


def test_posterior_variance_is_added_only_where_the_means_do_not_spread() -> None:
    """Dimension 0 carries the rows apart (means spread, posteriors narrow); dimension 1
    is all posterior noise around nearly equal means, which alone would decode to one
    output everywhere."""
    rng = np.random.default_rng(7)
    codes = np.column_stack([rng.normal(0.0, 2.0, 2000), rng.normal(0.0, 0.05, 2000)])
    variances = np.column_stack([np.full(2000, 0.01), np.full(2000, 0.9)])
    plain = GaussianMixturePrior.fit(codes, None, seed=0)
    widened = GaussianMixturePrior.fit(codes, None, seed=0, code_variances=variances)
    draws = plain.sample(20_000, seed=1), widened.sample(20_000, seed=1)
    assert draws[0][:, 1].std() < 0.1
    assert draws[1][:, 1].std() == pytest.approx(np.sqrt(0.9 + 0.05**2), rel=0.05)
    assert draws[1][:, 0].std() == pytest.approx(draws[0][:, 0].std(), rel=0.02)
    assert np.array_equal(widened.means, plain.means)
    with pytest.raises(ValueError, match="do not match"):
        plain.with_posterior_variance(codes, variances[:10])
