"""A Gaussian-mixture prior over latent codes, the cheap generator of new latents.

scikit-learn fits the mixture; sampling and scoring use only the stored arrays (weights,
means, Cholesky factors of the covariances), so a prior read back from disk needs no
scikit-learn object and no pickle.

By default the number of components grows with the rows (one per ``ROWS_PER_COMPONENT``
codes, at most ``MAX_COMPONENTS``) and the mixture is fitted by k-means: each component is
a cluster's mean and covariance, the covariance shrunk half-way to its diagonal. Ten
EM-fitted components left the Adult codes' fine structure out: rows decoded from them
covered 0.86 of the real rows (coverage) at density 0.73, against 0.94 and 0.98 for the
real rows' own codes; 100 EM components reached 0.875 / 0.84 in 87 s of fitting, 800
k-means components 0.89 / 0.87 in 4 s. A component stands for at least
``MIN_COMPONENT_ROWS`` codes (smaller clusters are merged into their nearest neighbour), so
the stored prior describes groups of training rows, never single ones.

Fitted with the rows' sensitive groups, the prior also keeps, per group, how its codes
spread over the components (``group_weights``, smoothed towards the overall weights), and
rows of a group draw their component from that group's weights. The latent is pushed to
independence from the sensitive attributes, and then those weights are the overall ones;
where independence is only approximate, a latent drawn without regard to s is decoded with
an s it does not fit. On Adult that mismatch left rows whose label was positive at 0.40-0.63
(real 0.24) and alpha-precision 0.55-0.87 on the trainings where a probe still read sex from
the student's codes (probe AUROC 0.71-0.84).

The codes are the posterior means; the decoder was trained on draws from the posteriors
around them. Where a latent dimension's posterior variance exceeds the spread of the means,
the means alone are close to constant there, and a mixture fitted on them asks the decoder
for a latent it never saw in training. On a table of one four-valued feature and two
sensitive attributes every posterior had a standard deviation near 0.94 around means that
spread by 0.01-0.33: rows drawn from the means' mixture all took one value of the feature,
their label model labelled 0.3 % positive (real 52 %), and the utility ratio was 0.67. With
those dimensions widened by the members' mean posterior variance: every value in its real
share, 50 % positive, utility ratio 0.98, demographic parity ratio 0.95. Widening every
dimension also cost Adult 0.01 of coverage and density (seed 1); widening only those
dimensions left Adult where it was (coverage 0.886 against 0.890, density 0.903 against
0.896, same AUROC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from fairdistill.models.errors import CheckpointError

DEFAULT_COMPONENTS = 10
ROWS_PER_COMPONENT = 50
MAX_COMPONENTS = 1000
MIN_COMPONENT_ROWS = 10
# k-means on more codes than this gains nothing at MAX_COMPONENTS and costs time.
MAX_FIT_ROWS = 200_000
# Share of each cluster covariance moved onto its diagonal: ~50 codes in 16 dimensions
# estimate the off-diagonal terms poorly.
COVARIANCE_SHRINKAGE = 0.5
# Added to every component's diagonal, relative to the codes' variance, so that a cluster
# of (nearly) identical codes still has a positive definite covariance.
_RIDGE = 1e-6
_NEAREST_CHUNK_ROWS = 2048
# Codes scored at a time: (rows, dim^2) products stay at a few MiB.
_SCORE_CHUNK_ROWS = 4096
_ARRAY_NAMES = ("weights", "means", "covariance_cholesky")
_GROUP_WEIGHTS = "group_weights"


@dataclass(frozen=True, eq=False)
class GaussianMixturePrior:
    """A full-covariance Gaussian mixture: ``weights`` (k,), ``means`` (k, d) and
    ``covariance_cholesky`` (k, d, d), lower-triangular with covariance = L Lᵀ; optionally
    ``group_weights`` (k, g), the component weights within each sensitive group (columns
    indexed by :func:`fairdistill.models.training.joint_group_index`)."""

    weights: np.ndarray
    means: np.ndarray
    covariance_cholesky: np.ndarray
    group_weights: np.ndarray | None = None

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(
        cls,
        codes: np.ndarray,
        n_components: int | None = DEFAULT_COMPONENTS,
        seed: int = 0,
        *,
        groups: np.ndarray | None = None,
        group_count: int | None = None,
        code_variances: np.ndarray | None = None,
    ) -> GaussianMixturePrior:
        """Fit on latent codes (n, d).

        ``n_components=None``: as many components as the rows call for, fitted by k-means
        (see the module notes). A number: that many components fitted by EM; with fewer
        codes than components the mixture gets one component per code, since a component
        needs at least one point to be estimated. ``groups`` (n,) with ``group_count``
        groups: also keep each group's component weights. ``code_variances`` (n, d), the
        encoder's posterior variances of the codes: see :func:`with_posterior_variance`.
        """
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] == 0 or not np.isfinite(codes).all():
            raise ValueError(f"codes must be a finite (n, d) array with n > 0, got {codes.shape}")
        prior = cls._fit_mixture(codes, n_components, seed)
        if code_variances is not None:
            prior = prior.with_posterior_variance(codes, np.asarray(code_variances))
        if groups is None:
            return prior
        return prior.with_group_weights(codes, np.asarray(groups), group_count)

    @classmethod
    def _fit_mixture(
        cls, codes: np.ndarray, n_components: int | None, seed: int
    ) -> GaussianMixturePrior:
        if n_components is None:
            return cls._fit_clusters(codes, components_for_rows(len(codes)), seed)
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

    @classmethod
    def _fit_clusters(cls, codes: np.ndarray, k: int, seed: int) -> GaussianMixturePrior:
        """k-means clusters as components: their shares, means and shrunk covariances."""
        rng = np.random.default_rng(seed)
        fit_rows = codes
        if len(codes) > MAX_FIT_ROWS:
            fit_rows = codes[np.sort(rng.choice(len(codes), MAX_FIT_ROWS, replace=False))]
        centres = KMeans(k, n_init=1, max_iter=50, random_state=seed).fit(fit_rows).cluster_centers_
        assignment = _nearest_centre(codes, centres)
        counts = np.bincount(assignment, minlength=len(centres))
        # Small clusters go to their nearest kept centre; the largest is always kept.
        kept = (counts >= MIN_COMPONENT_ROWS) | (counts == counts.max())
        centres = centres[kept]
        assignment = _nearest_centre(codes, centres)
        ridge = _RIDGE * codes.var(axis=0).clip(min=_RIDGE)
        weights, means, factors = [], [], []
        for component in range(len(centres)):
            members = codes[assignment == component]
            if len(members) == 0:
                continue
            weights.append(len(members))
            means.append(members.mean(axis=0))
            factors.append(np.linalg.cholesky(_shrunk_covariance(members) + np.diag(ridge)))
        total = float(sum(weights))
        return cls(
            weights=np.asarray(weights, dtype=np.float64) / total,
            means=np.asarray(means),
            covariance_cholesky=np.asarray(factors),
        )

    def with_posterior_variance(
        self, codes: np.ndarray, variances: np.ndarray
    ) -> GaussianMixturePrior:
        """This prior with each component widened by its codes' mean posterior variance.

        The decoder was trained on latents drawn from the posteriors, not on their means;
        the distribution it has learnt to decode is the mixture of those posteriors. Only
        the latent dimensions whose posterior variance exceeds the spread of the means get
        the variance added: there the means alone are nearly constant and decode to one
        output (see the module notes), while in the others the means already spread as the
        training rows do and the extra blur only lowered density.
        """
        variances = np.asarray(variances, dtype=np.float64)
        if variances.shape != codes.shape:
            raise ValueError(f"variances {variances.shape} do not match codes {codes.shape}")
        blurred = variances.mean(axis=0) > codes.var(axis=0)
        if not blurred.any():
            return self
        members = _nearest_centre(codes, self.means)
        factors = np.empty_like(self.covariance_cholesky)
        for component in range(self.n_components):
            chosen = variances[members == component]
            added = (chosen.mean(axis=0) if len(chosen) else variances.mean(axis=0)) * blurred
            covariance = self.covariance_cholesky[component] @ self.covariance_cholesky[component].T
            factors[component] = np.linalg.cholesky(covariance + np.diag(added))
        return GaussianMixturePrior(self.weights, self.means, factors, self.group_weights)

    def with_group_weights(
        self, codes: np.ndarray, groups: np.ndarray, group_count: int | None = None
    ) -> GaussianMixturePrior:
        """This prior plus each group's component weights: each code counts for the
        component with the nearest mean (one matrix product; the k-means fit's own clusters).

        Counts per (component, group) are smoothed with one pseudo-row per component spread
        as the overall weights, so a small group is not confined to the components its few
        rows happen to fall in.
        """
        count = int(group_count if group_count is not None else groups.max() + 1)
        members = _nearest_centre(codes, self.means)
        table = np.zeros((self.n_components, count))
        np.add.at(table, (members, groups.astype(np.int64)), 1.0)
        table += self.n_components * self.weights[:, None] / self.weights.sum()
        weights = table / table.sum(axis=0, keepdims=True)
        return GaussianMixturePrior(self.weights, self.means, self.covariance_cholesky, weights)

    def sample(self, n: int, seed: int, *, groups: np.ndarray | None = None) -> np.ndarray:
        """Draw ``n`` codes (float32), the same ones for the same seed.

        Each row picks its own component, so rows come out interleaved rather than grouped
        by component (scikit-learn's own sampler returns them grouped). With ``groups``
        (n,) and stored group weights, a row picks its component from its group's weights
        (a group the prior has no column for uses the overall weights).
        """
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        components = self._draw_components(n, rng, groups)
        return self._latents_of(components, rng)

    def sample_components(self, components: np.ndarray, seed: int) -> np.ndarray:
        """One code (float32) from each given component, the same ones for the same seed:
        conditional generation chooses the components itself (see
        :mod:`fairdistill.models.conditional`)."""
        components = np.asarray(components, dtype=np.int64)
        if components.size and (components.min() < 0 or components.max() >= self.n_components):
            raise ValueError(f"component indices must lie in [0, {self.n_components})")
        return self._latents_of(components, np.random.default_rng(seed))

    def _latents_of(self, components: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(components)
        noise = rng.standard_normal((n, self.dim))
        samples = np.empty((n, self.dim), dtype=np.float64)
        # Rows grouped by component once (a stable sort), not one mask per component:
        # with hundreds of components the masks cost n x k comparisons.
        order = np.argsort(components, kind="stable")
        bounds = np.searchsorted(components[order], np.arange(self.n_components + 1))
        for component in range(self.n_components):
            rows = order[bounds[component] : bounds[component + 1]]
            if len(rows):
                factor = self.covariance_cholesky[component]
                samples[rows] = self.means[component] + noise[rows] @ factor.T
        return samples.astype(np.float32)

    def _draw_components(
        self, n: int, rng: np.random.Generator, groups: np.ndarray | None
    ) -> np.ndarray:
        overall = self.weights / self.weights.sum()
        if groups is None or self.group_weights is None:
            return rng.choice(self.n_components, size=n, p=overall)
        groups = np.asarray(groups, dtype=np.int64)
        if len(groups) != n:
            raise ValueError(f"{len(groups)} groups for {n} rows")
        # One uniform per row, inverted through its group's cumulative weights.
        uniform = rng.random(n)
        components = np.empty(n, dtype=np.int64)
        for group in np.unique(groups):
            rows = groups == group
            known = 0 <= group < self.group_weights.shape[1]
            weights = self.group_weights[:, group] if known else overall
            cumulative = np.cumsum(weights / weights.sum())
            chosen = np.searchsorted(cumulative, uniform[rows], side="right")
            components[rows] = np.minimum(chosen, self.n_components - 1)
        return components

    def log_likelihood(self, codes: np.ndarray) -> float:
        """Mean log density per code under the mixture.

        The squared Mahalanobis distance to each component is expanded as
        x'Px - 2x'Pm + m'Pm, so all components are scored by two matrix products, a chunk
        of codes at a time, and the log-sum-exp is taken per chunk: on 39,073 Adult codes
        and 779 components a triangular solve per component took 5.6 s, scipy's logsumexp
        over the whole (n, k) array 13 s, and even plain numpy on that array several
        seconds, most of it the first touch of freshly allocated memory.
        """
        codes = np.asarray(codes, dtype=np.float64)
        scorer = _MixtureScorer.of(self)
        total = 0.0
        for start in range(0, len(codes), _SCORE_CHUNK_ROWS):
            weighted = scorer.log_densities(codes[start : start + _SCORE_CHUNK_ROWS])
            weighted += scorer.log_weights
            peak = weighted.max(axis=1)
            weighted -= peak[:, None]
            np.exp(weighted, out=weighted)
            total += float((peak + np.log(weighted.sum(axis=1))).sum())
        return total / len(codes)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: np.ascontiguousarray(getattr(self, name)) for name in _ARRAY_NAMES}
        if self.group_weights is not None:
            arrays[_GROUP_WEIGHTS] = np.ascontiguousarray(self.group_weights)
        return arrays

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
        group_weights = arrays.get(_GROUP_WEIGHTS)
        if group_weights is not None:
            group_weights = np.asarray(group_weights, np.float64)
            shapes_agree = shapes_agree and group_weights.ndim == 2
            shapes_agree = shapes_agree and group_weights.shape[0] == k
        if not shapes_agree or k < 1 or not np.isclose(weights.sum(), 1.0):
            raise CheckpointError(
                f"The stored prior's arrays do not form a mixture (weights {weights.shape}, "
                f"means {means.shape}, cholesky {cholesky.shape})",
                rule="prior-arrays",
                hint="re-run the generate stage to store the prior again",
            )
        return cls(weights, means, cholesky, group_weights)


@dataclass(frozen=True)
class _MixtureScorer:
    """What scoring codes under a mixture needs, computed once from its Cholesky factors."""

    centre: np.ndarray  # (d,) subtracted from codes and means: no large terms cancel
    flat_precisions: np.ndarray  # (d*d, k)
    linear: np.ndarray  # (k, d): P_k m_k
    quadratic: np.ndarray  # (k,): m_k' P_k m_k
    log_norm: np.ndarray  # (k,): log det(2 pi cov_k)
    log_weights: np.ndarray  # (k,)

    @classmethod
    def of(cls, prior: GaussianMixturePrior) -> _MixtureScorer:
        factors = prior.covariance_cholesky
        centre = prior.means.mean(axis=0)
        means = prior.means - centre
        whitening = np.linalg.solve(factors, np.broadcast_to(np.eye(prior.dim), factors.shape))
        precisions = np.matmul(whitening.transpose(0, 2, 1), whitening)
        linear = np.einsum("kij,kj->ki", precisions, means)
        log_det = 2.0 * np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        return cls(
            centre=centre,
            flat_precisions=precisions.reshape(prior.n_components, -1).T.copy(),
            linear=linear,
            quadratic=np.einsum("ki,ki->k", means, linear),
            log_norm=log_det + prior.dim * np.log(2.0 * np.pi),
            log_weights=np.log(prior.weights),
        )

    def log_densities(self, codes: np.ndarray) -> np.ndarray:
        """log N(code | mean_k, cov_k) for every code of the chunk and component: (m, k)."""
        x = codes - self.centre
        outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)
        squared = outer @ self.flat_precisions
        squared -= 2.0 * (x @ self.linear.T)
        squared += self.quadratic
        # Rounding can leave a code on its component's mean a hair below zero.
        np.maximum(squared, 0.0, out=squared)
        squared += self.log_norm
        squared *= -0.5
        return squared


def components_for_rows(rows: int) -> int:
    """One component per ``ROWS_PER_COMPONENT`` codes, between 1 and ``MAX_COMPONENTS``."""
    return int(min(MAX_COMPONENTS, max(1, rows // ROWS_PER_COMPONENT)))


def _nearest_centre(codes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every code, in chunks to bound memory.

    Chunks of 2,048 codes keep the distance block at 12 MiB for 780 centres: at 16,384
    (100 MiB) a call on Adult's 39,073 codes took 0.3-1.2 s, mostly the first touch of
    fresh memory, against 0.1 s.
    """
    assignment = np.empty(len(codes), dtype=np.int64)
    centre_norms = (centres**2).sum(axis=1)
    for start in range(0, len(codes), _NEAREST_CHUNK_ROWS):
        part = codes[start : start + _NEAREST_CHUNK_ROWS]
        distances = centre_norms[None, :] - 2.0 * part @ centres.T
        assignment[start : start + _NEAREST_CHUNK_ROWS] = np.argmin(distances, axis=1)
    return assignment


def _shrunk_covariance(members: np.ndarray) -> np.ndarray:
    """The members' covariance, moved ``COVARIANCE_SHRINKAGE`` of the way to its diagonal."""
    if len(members) < 2:
        return np.zeros((members.shape[1], members.shape[1]))
    covariance = np.cov(members, rowvar=False).reshape(members.shape[1], members.shape[1])
    diagonal = np.diag(np.diag(covariance))
    return (1.0 - COVARIANCE_SHRINKAGE) * covariance + COVARIANCE_SHRINKAGE * diagonal
