"""One numeric embedding of table rows, fitted on the real training data.

The fidelity and privacy metrics measure distances between rows; they all use this embedding,
fitted once on the real training frame, so their distances are on one scale:

- a categorical column (sensitive attributes and the target included) becomes one-hot over the
  categories seen in the fitting frame, scaled by 1/sqrt(2) so that two rows differing in one
  category are at distance 1; a category never seen there is all zeros. A missing value is a
  level of its own when the column may be missing (the spec says nullable, or the fitting frame
  has a missing value there);
- a numeric column is standardised with the fitting frame's mean and standard deviation (a
  constant column keeps scale 1), so one standard deviation is distance 1; a missing value sits
  at the mean and, when the column may be missing, sets an indicator column of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.neighbors import NearestNeighbors

from fairdistill.models.spec import DatasetSpec

_ONE_HOT_LEVEL = np.float32(1.0 / np.sqrt(2.0))


def split_columns(spec: DatasetSpec, *, include_target: bool) -> tuple[list[str], list[str]]:
    """(categorical, numeric) columns that describe a row, in a fixed order.

    Sensitive attributes and the target are categorical; features take their spec type;
    ignored columns are left out. The spec must be completed (every feature typed).
    """
    categorical = list(spec.sensitive_columns)
    numeric: list[str] = []
    for name in spec.feature_columns:
        column_type = spec.column(name).type
        if column_type is None:
            raise ValueError(
                f"column '{name}' has no type; complete the spec (complete_spec) before evaluating"
            )
        (categorical if column_type == "categorical" else numeric).append(name)
    if include_target:
        categorical.append(spec.target.column)
    return categorical, numeric


@dataclass(frozen=True)
class CategoricalBlock:
    column: str
    categories: tuple[str, ...]
    missing_level: bool

    @property
    def width(self) -> int:
        return len(self.categories) + int(self.missing_level)


@dataclass(frozen=True)
class NumericBlock:
    column: str
    mean: float
    scale: float
    missing_indicator: bool

    @property
    def width(self) -> int:
        return 1 + int(self.missing_indicator)


@dataclass(frozen=True)
class Embedding:
    """A fitted row embedding; :meth:`transform` maps any frame with the same columns."""

    categorical: tuple[CategoricalBlock, ...]
    numeric: tuple[NumericBlock, ...]

    @property
    def width(self) -> int:
        return sum(block.width for block in (*self.categorical, *self.numeric))

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        out = np.zeros((frame.height, self.width), dtype=np.float32)
        offset = 0
        for block in self.categorical:
            _fill_categorical(out, offset, block, frame.get_column(block.column))
            offset += block.width
        for block in self.numeric:
            _fill_numeric(out, offset, block, frame.get_column(block.column))
            offset += block.width
        return out


def fit_embedding(frame: pl.DataFrame, spec: DatasetSpec, include_target: bool = True) -> Embedding:
    """Fit the embedding on ``frame`` (the real training data)."""
    categorical, numeric = split_columns(spec, include_target=include_target)
    return Embedding(
        categorical=tuple(_fit_categorical(frame, spec, name) for name in categorical),
        numeric=tuple(_fit_numeric(frame, spec, name) for name in numeric),
    )


def _may_be_missing(frame: pl.DataFrame, spec: DatasetSpec, name: str) -> bool:
    declared = spec.columns[name].nullable if name in spec.columns else None
    return bool(declared) or frame.get_column(name).null_count() > 0


def _fit_categorical(frame: pl.DataFrame, spec: DatasetSpec, name: str) -> CategoricalBlock:
    values = frame.get_column(name).cast(pl.String).drop_nulls().unique().sort()
    return CategoricalBlock(
        column=name,
        categories=tuple(values.to_list()),
        missing_level=_may_be_missing(frame, spec, name),
    )


def _fit_numeric(frame: pl.DataFrame, spec: DatasetSpec, name: str) -> NumericBlock:
    values = frame.get_column(name).cast(pl.Float64).drop_nulls().drop_nans()
    mean = values.mean() if values.len() else 0.0
    std = values.std() if values.len() > 1 else 0.0
    return NumericBlock(
        column=name,
        mean=float(mean),  # type: ignore[arg-type]
        scale=float(std) if std and np.isfinite(std) else 1.0,  # type: ignore[arg-type]
        missing_indicator=_may_be_missing(frame, spec, name),
    )


def category_codes(series: pl.Series, categories: Sequence[str]) -> np.ndarray:
    """Index of each value in ``categories``; -1 for a value not listed; -2 for a missing one."""
    codes = series.cast(pl.String).replace_strict(
        list(categories), list(range(len(categories))), default=-1, return_dtype=pl.Int32
    )
    return np.where(series.is_null().to_numpy(), -2, codes.to_numpy())


def _fill_categorical(
    out: np.ndarray, offset: int, block: CategoricalBlock, series: pl.Series
) -> None:
    codes = category_codes(series, block.categories)
    if block.missing_level:
        codes = np.where(codes == -2, len(block.categories), codes)
    rows = np.flatnonzero(codes >= 0)
    out[rows, offset + codes[rows]] = _ONE_HOT_LEVEL


def _fill_numeric(out: np.ndarray, offset: int, block: NumericBlock, series: pl.Series) -> None:
    values = series.cast(pl.Float64).fill_nan(None).to_numpy()
    missing = np.isnan(values)
    out[:, offset] = np.where(missing, 0.0, (values - block.mean) / block.scale)
    if block.missing_indicator:
        out[:, offset + 1] = missing


def subsample_rows(matrix: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` rows drawn without replacement, kept in their original order."""
    if matrix.shape[0] <= max_rows:
        return matrix
    return matrix[np.sort(rng.choice(matrix.shape[0], size=max_rows, replace=False))]


def nearest_neighbours(
    reference: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances and indices of the ``k`` nearest reference rows of each query row.

    Exact (brute force, which beats trees on embeddings this wide). The search's fast distance
    formula leaves rounding noise of about 1e-6, so the distances to the neighbours it finds are
    recomputed directly: an exact copy is at distance 0.
    """
    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    _, indices = search.kneighbors(queries)
    offsets = reference[indices].astype(np.float64) - queries[:, None, :].astype(np.float64)
    distances = np.sqrt(np.einsum("qkd,qkd->qk", offsets, offsets))
    order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(distances, order, 1), np.take_along_axis(indices, order, 1)
