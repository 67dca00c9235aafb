"""How faithful synthetic rows are to the real ones.

The sample-level metrics work on the evaluation embedding (see ``embedding.py``) and compare at
most ``max_rows`` real and ``max_rows`` synthetic rows (default 5000 each), drawn without
replacement with ``numpy.random.default_rng(seed)``: their nearest-neighbour searches grow with
the product of the two sizes, and 5000 rows estimate a share to within about one point.

Alpha-precision, beta-recall and authenticity follow Alaa et al. 2022, "How Faithful is your
Synthetic Data?", with the usual practical estimator on a fixed embedding:

- alpha-precision: centre the real rows at their mean; the real alpha-support is the ball around
  the centre holding the share alpha of real rows (radius = alpha-quantile of real distances to
  the centre). P(alpha) is the share of synthetic rows inside that ball; a faithful generator
  gives P(alpha) = alpha. The score integrates the gap over alpha = 0.025, 0.075, ..., 0.975:
  ``1 - 2 * mean |P(alpha) - alpha|`` (1 = faithful; 0 when every synthetic row is at the centre,
  a collapse, or every one is outside the real support).
- beta-recall: every synthetic row owns a ball reaching its k-th nearest synthetic neighbour
  (k = 5). The synthetic beta-support is the share beta of synthetic rows closest to the
  synthetic mean. R(beta) is the share of real rows that lie inside the ball of their nearest
  synthetic row, that row being in the beta-support; the score is
  ``1 - 2 * mean |R(beta) - beta|`` over the same grid. Mode dropping and collapse leave real
  rows uncovered and lower it. Even for two samples of one distribution a real row misses its
  nearest synthetic ball now and then, so the score sits below 1 there (0.85 to 0.9 on
  Gaussian samples and on halves of Adult).
- authenticity: the share of synthetic rows whose nearest real row is farther from them than
  that real row is from its own nearest real neighbour. Copies of real rows score 0; two
  independent samples of one distribution score about 0.5.

Density and coverage follow Naeem et al. 2020 with k = 5 real neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import ks_2samp, wasserstein_distance

from fairdistill.models.evaluation.embedding import (
    category_codes,
    nearest_neighbours,
    split_columns,
    subsample_rows,
)
from fairdistill.models.spec import DatasetSpec

DEFAULT_MAX_ROWS = 5000
NEIGHBOURS = 5
MARGINAL_BINS = 20
MARGINAL_LEVELS = 10
OTHER_LEVELS = "(other values)"
MISSING_LEVEL = "(missing)"
_LEVELS = (np.arange(20) + 0.5) / 20
_DENSITY_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class RealNeighbours:
    """A real sample and, for each of its rows, the distances to its ``k`` nearest other rows.

    Density, coverage and authenticity all measure against the real rows' own neighbours, and
    an evaluation scores the synthetic rows and the held-out real rows against the same real
    sample, so the search is made once and handed on.
    """

    rows: np.ndarray
    distances: np.ndarray  # (n, k): to the 1st, ..., k-th nearest other row

    def kth(self, k: int) -> np.ndarray:
        """Distance from each row to its k-th nearest other row."""
        return self.distances[:, k - 1]

    def holds(self, rows: np.ndarray, k: int) -> bool:
        """Whether these are the neighbours of ``rows`` up to the k-th."""
        return (
            self.distances.shape[1] >= k
            and self.rows.shape == rows.shape
            and np.array_equal(self.rows, rows)
        )


def real_neighbours(real: np.ndarray, k: int = NEIGHBOURS) -> RealNeighbours:
    """The :class:`RealNeighbours` of ``real`` up to the k-th (the row itself is skipped)."""
    distances, _ = nearest_neighbours(real, real, k + 1)
    return RealNeighbours(rows=real, distances=distances[:, 1:])


def sample_fidelity(
    real_emb: np.ndarray,
    synth_emb: np.ndarray,
    seed: int,
    max_rows: int = DEFAULT_MAX_ROWS,
    k: int = NEIGHBOURS,
    known: RealNeighbours | None = None,
) -> tuple[dict[str, Any], RealNeighbours]:
    """Integrated alpha-precision and beta-recall with their curves, authenticity, density and
    coverage; and the real sample's neighbours, which a later call on the same real rows can
    pass back as ``known`` (they are recomputed when they belong to another sample).

    Four neighbour searches serve all five figures: real and synthetic rows among their own
    kind, and each side's nearest row on the other.
    """
    real, synthetic = _paired_subsamples(real_emb, synth_emb, seed, max_rows)
    neighbours = known if known is not None and known.holds(real, k) else real_neighbours(real, k)
    synthetic_radius = _kth_neighbour_distance(synthetic, k)
    # For every real row its nearest synthetic row, and for every synthetic row its nearest
    # real row: recall and coverage use the first, authenticity the second.
    to_synthetic = nearest_neighbours(synthetic, real, 1)
    to_real = nearest_neighbours(real, synthetic, 1)
    precision_curve = _alpha_precision_curve(real, synthetic)
    recall_curve = _beta_recall_curve(synthetic, synthetic_radius, to_synthetic)
    radii = neighbours.kth(k)
    figures = {
        "alpha_precision": _integrated(precision_curve),
        "beta_recall": _integrated(recall_curve),
        "authenticity": _authenticity(neighbours.kth(1), to_real),
        "levels": _LEVELS.tolist(),
        "alpha_precision_curve": precision_curve.tolist(),
        "beta_recall_curve": recall_curve.tolist(),
        "density": _density(real, synthetic, radii, k),
        "coverage": float((to_synthetic[0][:, 0] <= radii).mean()),
    }
    return figures, neighbours


def _density(real: np.ndarray, synthetic: np.ndarray, radii: np.ndarray, k: int) -> float:
    """Naeem et al. 2020: each real row owns a ball reaching its k-th nearest real neighbour;
    the mean number of real balls holding a synthetic row, divided by k (about 1 for one
    distribution, above 1 when synthetic rows crowd dense regions). Coverage is the share of
    real balls holding at least one synthetic row."""
    hits = 0
    for start in range(0, synthetic.shape[0], _DENSITY_CHUNK_ROWS):
        chunk = synthetic[start : start + _DENSITY_CHUNK_ROWS].astype(np.float64)
        hits += int((_pairwise_distances(chunk, real) <= radii[None, :]).sum())
    return hits / (k * synthetic.shape[0])


def marginal_distances(real: pl.DataFrame, synth: pl.DataFrame, spec: DatasetSpec) -> dict:
    """Per-column distances between the real and synthetic marginals, and their means.

    Categorical columns (sensitive attributes and target included): total variation distance,
    a missing value counting as a category. Numeric columns: Wasserstein-1 distance of the
    values standardised by the real mean and standard deviation, the two-sample
    Kolmogorov-Smirnov statistic, both over present values, and the difference in the share of
    missing values.
    """
    categorical, numeric = split_columns(spec, include_target=True)
    tvd = {
        name: _total_variation(real.get_column(name), synth.get_column(name))
        for name in categorical
    }
    wasserstein, ks, missing = {}, {}, {}
    for name in numeric:
        real_column, synth_column = real.get_column(name), synth.get_column(name)
        wasserstein[name], ks[name] = _numeric_distances(real_column, synth_column)
        missing[name] = abs(_missing_share(real_column) - _missing_share(synth_column))
    return {
        "tvd": tvd,
        "wasserstein": wasserstein,
        "ks": ks,
        "missing_share_difference": missing,
        "mean_tvd": _mean(tvd),
        "mean_wasserstein": _mean(wasserstein),
        "mean_ks": _mean(ks),
    }


def column_shapes(marginals: dict) -> float:
    """Mean over columns of 1 - distance of the marginals (TVD, or KS for numeric columns).

    The column-shape score of synthetic-data quality reports: 1 when every column's
    distribution matches, 0 when none overlaps. ``marginals`` is :func:`marginal_distances`.
    """
    scores = [1.0 - value for value in [*marginals["tvd"].values(), *marginals["ks"].values()]]
    finite = [score for score in scores if np.isfinite(score)]
    return float(np.mean(finite)) if finite else float("nan")


def marginal_histograms(
    real: pl.DataFrame,
    synth: pl.DataFrame,
    spec: DatasetSpec,
    *,
    bins: int = MARGINAL_BINS,
    max_levels: int = MARGINAL_LEVELS,
) -> dict[str, dict[str, Any]]:
    """Each column's distribution in both frames on shared bins, as shares of all rows.

    Categorical: ``labels`` are the ``max_levels`` levels most frequent in the real frame, then
    ``OTHER_LEVELS`` for the rest and ``MISSING_LEVEL`` for missing values when either frame
    has some. Numeric: ``edges`` span the present values of both frames; the share of missing
    values is apart in ``missing``, so the bars and it sum to 1 for each frame.
    """
    categorical, numeric = split_columns(spec, include_target=True)
    histograms = {
        name: _categorical_histogram(real.get_column(name), synth.get_column(name), max_levels)
        for name in categorical
    }
    for name in numeric:
        histograms[name] = _numeric_histogram(real.get_column(name), synth.get_column(name), bins)
    return histograms


def _categorical_histogram(real: pl.Series, synth: pl.Series, max_levels: int) -> dict[str, Any]:
    real_shares, synth_shares = _shares(real), _shares(synth)
    present = sorted(
        (value for value in real_shares if value is not None),
        key=lambda value: (-real_shares[value], value),
    )
    kept = present[:max_levels]
    rest = (real_shares.keys() | synth_shares.keys()) - {*kept, None}
    labels: list[str] = list(kept)
    columns = [[shares.get(value, 0.0) for value in kept] for shares in (real_shares, synth_shares)]
    if rest:
        labels.append(OTHER_LEVELS)
        for values, shares in zip(columns, (real_shares, synth_shares), strict=True):
            values.append(math.fsum(shares.get(value, 0.0) for value in rest))
    if None in real_shares or None in synth_shares:
        labels.append(MISSING_LEVEL)
        for values, shares in zip(columns, (real_shares, synth_shares), strict=True):
            values.append(shares.get(None, 0.0))
    return {"kind": "categorical", "labels": labels, "real": columns[0], "synthetic": columns[1]}


def _numeric_histogram(real: pl.Series, synth: pl.Series, bins: int) -> dict[str, Any]:
    real_values, synth_values = _present(real), _present(synth)
    both = np.concatenate([real_values, synth_values])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)

    def shares(values: np.ndarray, total: int) -> list[float]:
        return (np.histogram(values, bins=edges)[0] / max(total, 1)).tolist()

    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "real": shares(real_values, real.len()),
        "synthetic": shares(synth_values, synth.len()),
        "missing": {"real": _missing_share(real), "synthetic": _missing_share(synth)},
    }


@dataclass(frozen=True)
class AssociationComparison:
    """Pairwise association matrices of the real and synthetic frames over the same columns."""

    columns: tuple[str, ...]
    real: np.ndarray
    synthetic: np.ndarray

    @property
    def mean_absolute_difference(self) -> float:
        """Mean |real - synthetic| over the column pairs above the diagonal."""
        upper = np.triu_indices(len(self.columns), k=1)
        if not upper[0].size:
            return float("nan")
        return float(np.abs(self.real[upper] - self.synthetic[upper]).mean())

    def as_table(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "real": self.real.tolist(),
            "synthetic": self.synthetic.tolist(),
            "mean_absolute_difference": self.mean_absolute_difference,
        }


def correlation_difference(
    real: pl.DataFrame, synth: pl.DataFrame, spec: DatasetSpec
) -> AssociationComparison:
    """Association of every column pair in each frame; compare with ``mean_absolute_difference``.

    Categorical-categorical: Cramér's V (missing values a category); categorical-numeric: the
    correlation ratio eta; numeric-numeric: Pearson's r (signed, the others lie in [0, 1]);
    numeric missing values are left out pair by pair. A pair with a constant column has
    association 0: a column that never varies predicts nothing.
    """
    categorical, numeric = split_columns(spec, include_target=True)
    levels = {
        name: _union_levels(real.get_column(name), synth.get_column(name)) for name in categorical
    }
    columns = (*categorical, *numeric)
    return AssociationComparison(
        columns=columns,
        real=_association_matrix(real, categorical, numeric, levels),
        synthetic=_association_matrix(synth, categorical, numeric, levels),
    )


def _paired_subsamples(
    real_emb: np.ndarray, synth_emb: np.ndarray, seed: int, max_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    if real_emb.shape[0] <= NEIGHBOURS or synth_emb.shape[0] <= NEIGHBOURS:
        raise ValueError(
            f"fidelity metrics need more than {NEIGHBOURS} rows on each side "
            f"(real {real_emb.shape[0]}, synthetic {synth_emb.shape[0]})"
        )
    rng = np.random.default_rng(seed)
    return subsample_rows(real_emb, max_rows, rng), subsample_rows(synth_emb, max_rows, rng)


def _distance_to_mean(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    centre = reference.astype(np.float64).mean(axis=0)
    return np.linalg.norm(rows.astype(np.float64) - centre, axis=1)


def _alpha_precision_curve(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    radii = np.quantile(_distance_to_mean(real, real), _LEVELS)
    synthetic_distance = _distance_to_mean(synthetic, real)
    return (synthetic_distance[None, :] <= radii[:, None]).mean(axis=1)


def _beta_recall_curve(
    synthetic: np.ndarray,
    synthetic_radius: np.ndarray,
    to_synthetic: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    to_centre = _distance_to_mean(synthetic, synthetic)
    support_radii = np.quantile(to_centre, _LEVELS)
    distance, nearest = to_synthetic[0][:, 0], to_synthetic[1][:, 0]
    covered = distance <= synthetic_radius[nearest]
    in_support = to_centre[nearest][None, :] <= support_radii[:, None]
    return (covered[None, :] & in_support).mean(axis=1)


def _authenticity(own_distance: np.ndarray, to_real: tuple[np.ndarray, np.ndarray]) -> float:
    distance, nearest = to_real[0][:, 0], to_real[1][:, 0]
    return float((distance > own_distance[nearest]).mean())


def _integrated(curve: np.ndarray) -> float:
    return max(0.0, float(1.0 - 2.0 * np.abs(curve - _LEVELS).mean()))


def _kth_neighbour_distance(rows: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (the row itself is skipped)."""
    distances, _ = nearest_neighbours(rows, rows, k + 1)
    return distances[:, k]


def _pairwise_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    squared = (
        (queries**2).sum(axis=1)[:, None]
        - 2.0 * queries @ reference.T.astype(np.float64)
        + (reference.astype(np.float64) ** 2).sum(axis=1)[None, :]
    )
    return np.sqrt(np.maximum(squared, 0.0))


def _total_variation(real: pl.Series, synth: pl.Series) -> float:
    real_shares, synth_shares = _shares(real), _shares(synth)
    values = real_shares.keys() | synth_shares.keys()
    gaps = [abs(real_shares.get(value, 0.0) - synth_shares.get(value, 0.0)) for value in values]
    # fsum is exact whatever the order of the set, which changes with each process's string
    # hashing: a plain sum made the metric differ in its last digit between two equal runs.
    return 0.5 * math.fsum(gaps) if real.len() and synth.len() else float("nan")


def _shares(series: pl.Series) -> dict[str | None, float]:
    counts = series.cast(pl.String).value_counts(name="rows")
    total = max(series.len(), 1)
    return {
        value: rows / total
        for value, rows in zip(
            counts.get_column(series.name), counts.get_column("rows"), strict=True
        )
    }


def _numeric_distances(real: pl.Series, synth: pl.Series) -> tuple[float, float]:
    real_values, synth_values = _present(real), _present(synth)
    if not real_values.size or not synth_values.size:
        return float("nan"), float("nan")
    scale = (real_values.std(ddof=1) if real_values.size > 1 else 0.0) or 1.0
    centre = real_values.mean()
    distance = wasserstein_distance((real_values - centre) / scale, (synth_values - centre) / scale)
    return float(distance), float(ks_2samp(real_values, synth_values).statistic)


def _present(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()


def _missing_share(series: pl.Series) -> float:
    return series.null_count() / series.len() if series.len() else float("nan")


def _mean(values: dict[str, float]) -> float:
    finite = [value for value in values.values() if not np.isnan(value)]
    return float(np.mean(finite)) if finite else float("nan")


def _union_levels(real: pl.Series, synth: pl.Series) -> tuple[str, ...]:
    values = pl.concat([real.cast(pl.String), synth.cast(pl.String)]).drop_nulls().unique().sort()
    return tuple(values.to_list())


def _association_matrix(
    frame: pl.DataFrame,
    categorical: list[str],
    numeric: list[str],
    levels: dict[str, tuple[str, ...]],
) -> np.ndarray:
    codes = [_codes_with_missing(frame.get_column(name), levels[name]) for name in categorical]
    values = [frame.get_column(name).cast(pl.Float64).fill_nan(None).to_numpy() for name in numeric]
    size = len(codes) + len(values)
    matrix = np.eye(size)
    for i in range(size):
        for j in range(i + 1, size):
            matrix[i, j] = matrix[j, i] = _association(
                codes[i] if i < len(codes) else values[i - len(codes)],
                codes[j] if j < len(codes) else values[j - len(codes)],
                i < len(codes),
                j < len(codes),
            )
    return matrix


def _codes_with_missing(series: pl.Series, levels: tuple[str, ...]) -> np.ndarray:
    codes = category_codes(series, levels)
    return np.where(codes == -2, len(levels), codes).astype(np.int64)


def _association(
    first: np.ndarray, second: np.ndarray, first_categorical: bool, second_categorical: bool
) -> float:
    if first_categorical and second_categorical:
        return _cramers_v(first, second)
    if first_categorical:
        return _correlation_ratio(first, second)
    if second_categorical:
        return _correlation_ratio(second, first)
    return _pearson(first, second)


def _cramers_v(first: np.ndarray, second: np.ndarray) -> float:
    width = int(second.max(initial=0)) + 1
    table = np.bincount(first * width + second, minlength=(int(first.max(initial=0)) + 1) * width)
    table = table.reshape(-1, width).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    chi_squared = ((table - expected) ** 2 / expected).sum()
    return float(np.sqrt(chi_squared / total / (min(table.shape) - 1)))


def _correlation_ratio(codes: np.ndarray, values: np.ndarray) -> float:
    present = ~np.isnan(values)
    codes, values = codes[present], values[present]
    spread = ((values - values.mean()) ** 2).sum() if values.size else 0.0
    if spread <= 0:
        return 0.0
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=values)
    used = counts > 0
    group_means = sums[used] / counts[used]
    between = (counts[used] * (group_means - values.mean()) ** 2).sum()
    return float(np.sqrt(min(between / spread, 1.0)))


def _pearson(first: np.ndarray, second: np.ndarray) -> float:
    present = ~(np.isnan(first) | np.isnan(second))
    first, second = first[present], second[present]
    if first.size < 2 or first.std() == 0 or second.std() == 0:
        return 0.0
    return float(np.corrcoef(first, second)[0, 1])
