"""A Gaussian-mixture prior over latent codes, the cheap generator of new latents.

scikit-learn fits the mixture; sampling and scoring use only the stored arrays (weights,
means, Cholesky factors of the covariances), so a prior read back from disk needs no
scikit-learn object and no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from fairdistill.models.errors import CheckpointError

DEFAULT_COMPONENTS = 10
_ARRAY_NAMES = ("weights", "means", "covariance_cholesky")


@dataclass(frozen=True, eq=False)
class GaussianMixturePrior:
    """A full-covariance Gaussian mixture: ``weights`` (k,), ``means`` (k, d) and
    ``covariance_cholesky`` (k, d, d), lower-triangular with covariance = L Lᵀ."""

    weights: np.ndarray
    means: np.ndarray
    covariance_cholesky: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(
        cls, codes: np.ndarray, n_components: int = DEFAULT_COMPONENTS, seed: int = 0
    ) -> GaussianMixturePrior:
        """Fit on latent codes (n, d).

        With fewer codes than ``n_components`` the mixture gets one component per code,
        since a component needs at least one point to be estimated.
        """
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] == 0 or not np.isfinite(codes).all():
            raise ValueError(f"codes must be a finite (n, d) array with n > 0, got {codes.shape}")
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        mixture = GaussianMixture(
            n_components=min(n_components, codes.shape[0]),
            covariance_type="full",
            random_state=seed,
        ).fit(codes)
        return cls(
            weights=mixture.weights_.astype(np.float64),
            means=mixture.means_.astype(np.float64),
            covariance_cholesky=np.linalg.cholesky(mixture.covariances_),
        )

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Draw ``n`` codes (float32), the same ones for the same seed.

        Each row picks its own component, so rows come out interleaved rather than grouped
        by component (scikit-learn's own sampler returns them grouped).
        """
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        components = rng.choice(self.n_components, size=n, p=self.weights / self.weights.sum())
        noise = rng.standard_normal((n, self.dim))
        samples = np.empty((n, self.dim), dtype=np.float64)
        for component in range(self.n_components):
            rows = components == component
            factor = self.covariance_cholesky[component]
            samples[rows] = self.means[component] + noise[rows] @ factor.T
        return samples.astype(np.float32)

    def log_likelihood(self, codes: np.ndarray) -> float:
        """Mean log density per code under the mixture."""
        codes = np.asarray(codes, dtype=np.float64)
        per_component = np.empty((codes.shape[0], self.n_components))
        for component in range(self.n_components):
            factor = self.covariance_cholesky[component]
            whitened = solve_triangular(factor, (codes - self.means[component]).T, lower=True)
            log_det = 2.0 * np.log(np.diag(factor)).sum()
            squared = (whitened**2).sum(axis=0)
            per_component[:, component] = -0.5 * (
                squared + log_det + self.dim * np.log(2.0 * np.pi)
            )
        return float(logsumexp(per_component + np.log(self.weights), axis=1).mean())

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(getattr(self, name)) for name in _ARRAY_NAMES}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> GaussianMixturePrior:
        """Rebuild a stored prior, refusing arrays that cannot form a mixture."""
        missing = [name for name in _ARRAY_NAMES if name not in arrays]
        if missing:
            raise CheckpointError(
                f"The stored prior lacks the arrays {missing}",
                rule="prior-arrays",
                hint="re-run the generate stage to store the prior again",
            )
        weights, means, cholesky = (np.asarray(arrays[name], np.float64) for name in _ARRAY_NAMES)
        k = weights.shape[0] if weights.ndim == 1 else -1
        d = means.shape[1] if means.ndim == 2 else -1
        shapes_agree = means.shape == (k, d) and cholesky.shape == (k, d, d)
        if not shapes_agree or k < 1 or not np.isclose(weights.sum(), 1.0):
            raise CheckpointError(
                f"The stored prior's arrays do not form a mixture (weights {weights.shape}, "
                f"means {means.shape}, cholesky {cholesky.shape})",
                rule="prior-arrays",
                hint="re-run the generate stage to store the prior again",
            )
        return cls(weights=weights, means=means, covariance_cholesky=cholesky)
