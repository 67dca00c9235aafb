"""How useful synthetic data is for training a classifier of the target, and how fair that is.

The TRTR, TSTR and TSTS protocols of ``protocols.py``, each for every classifier family asked
for; TSTS splits the synthetic frame 70/30 (stratified by label, seeded) with scikit-learn.

Both families see every non-target column except ignored ones, sensitive attributes included:

- ``gradient_boosting``: scikit-learn's HistGradientBoostingClassifier; categorical columns are
  integer codes over the training frame's categories (at most the 255 most frequent; rarer,
  unseen and missing values are all "missing", which the model handles natively) and are
  declared categorical; numeric columns go in as they are, missing values included;
- ``logistic_regression``: L2 logistic regression on the evaluation embedding fitted on the
  training frame (one-hot categoricals, standardised numerics, missing values imputed at the
  mean with an indicator). The Newton-Cholesky solver (at most 1000 iterations) converges in a
  handful of steps when rows far outnumber features, several times faster than lbfgs here.

A training frame with a single label class (synthetic data that collapsed) trains nothing: its
metrics are NaN and ``reason`` says why, instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from fairdistill.models.evaluation.embedding import category_codes, fit_embedding, split_columns
from fairdistill.models.evaluation.fairness import positive_labels
from fairdistill.models.evaluation.protocols import (
    TSTS_TEST_SHARE,
    NoClassifierError,
    protocol_results,
    utility_scores,
)
from fairdistill.models.spec import DatasetSpec

Family = Literal["gradient_boosting", "logistic_regression"]
FAMILIES: tuple[Family, ...] = ("gradient_boosting", "logistic_regression")
# HistGradientBoosting bins a categorical feature into at most 255 codes.
_MAX_CODED_CATEGORIES = 255


class SingleClassError(ValueError):
    """The training frame holds one label class, so no classifier can be trained on it."""


class _Features(Protocol):
    def transform(self, frame: pl.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class _OrdinalFeatures:
    """Categorical codes then raw numerics, with NaN for anything missing or unseen."""

    categories: dict[str, tuple[str, ...]]
    numeric: tuple[str, ...]

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([True] * len(self.categories) + [False] * len(self.numeric))

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        columns = []
        for name, levels in self.categories.items():
            codes = category_codes(frame.get_column(name), levels)
            columns.append(np.where(codes < 0, np.nan, codes.astype(np.float64)))
        for name in self.numeric:
            columns.append(frame.get_column(name).cast(pl.Float64).fill_nan(None).to_numpy())
        return np.column_stack(columns)


def _fit_ordinal(frame: pl.DataFrame, spec: DatasetSpec) -> _OrdinalFeatures:
    categorical, numeric = split_columns(spec, include_target=False)
    categories = {}
    for name in categorical:
        counts = frame.get_column(name).cast(pl.String).drop_nulls().value_counts(sort=True)
        kept = counts.get_column(name).head(_MAX_CODED_CATEGORIES).sort()
        categories[name] = tuple(kept.to_list())
    return _OrdinalFeatures(categories=categories, numeric=tuple(numeric))


@dataclass(frozen=True)
class TabularClassifier:
    """A fitted classifier of the spec's target that predicts straight from polars frames."""

    family: Family
    features: _Features
    estimator: Any

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Class probabilities, columns (negative, positive)."""
        return self.estimator.predict_proba(self.features.transform(frame))

    def positive_probability(self, frame: pl.DataFrame) -> np.ndarray:
        return self.predict_proba(frame)[:, 1]


def train_classifier(
    family: Family, train: pl.DataFrame, spec: DatasetSpec, seed: int
) -> TabularClassifier:
    """Fit one classifier family on ``train``; raises :class:`SingleClassError` on one class."""
    labels = positive_labels(train, spec)
    if np.unique(labels).size < 2:
        raise SingleClassError(_single_class_reason(labels))
    if family == "gradient_boosting":
        ordinal = _fit_ordinal(train, spec)
        estimator: Any = HistGradientBoostingClassifier(
            categorical_features=ordinal.categorical_mask, random_state=seed
        )
        features: _Features = ordinal
    elif family == "logistic_regression":
        features = fit_embedding(train, spec, include_target=False)
        estimator = LogisticRegression(solver="newton-cholesky", max_iter=1000, random_state=seed)
    else:
        raise ValueError(f"unknown classifier family '{family}' (known: {', '.join(FAMILIES)})")
    estimator.fit(features.transform(train), labels)
    return TabularClassifier(family=family, features=features, estimator=estimator)


def utility_metrics(model: TabularClassifier, test: pl.DataFrame, spec: DatasetSpec) -> dict:
    """AUROC of the positive probability; F1, accuracy and positive rate at 0.5.

    AUROC is NaN when the test labels hold one class.
    """
    return utility_scores(positive_labels(test, spec), model.positive_probability(test))


def tstr_trtr(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
    families: Sequence[Family] = FAMILIES,
) -> dict[str, dict[str, Any]]:
    """Per family: ``trtr``, ``tstr`` and ``tsts`` results and ``auroc_ratio_to_trtr``.

    Each protocol result holds ``trained``, ``reason``, ``utility`` and ``fairness``, as
    :func:`~fairdistill.models.evaluation.protocols.protocol_results` describes.
    """
    return protocol_results(
        real_train, real_test, synthetic, spec, seed, families, TabularClassifiers(spec)
    )


@dataclass(frozen=True)
class TabularClassifiers:
    """The protocols' classifiers for tables: :func:`train_classifier` on polars frames."""

    spec: DatasetSpec

    def split_synthetic(
        self, synthetic: pl.DataFrame, seed: int
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        labels = positive_labels(synthetic, self.spec)
        if np.bincount(labels, minlength=2).min() < 2:
            raise NoClassifierError(
                f"synthetic data: {_single_class_reason(labels)} (a stratified split needs 2+ each)"
            )
        train_rows, test_rows = train_test_split(
            np.arange(synthetic.height),
            test_size=TSTS_TEST_SHARE,
            stratify=labels,
            random_state=seed,
        )
        return synthetic[np.sort(train_rows)], synthetic[np.sort(test_rows)]

    def fit(
        self, family: str, train: pl.DataFrame, test: pl.DataFrame, seed: int
    ) -> TabularClassifier:
        try:
            return train_classifier(cast(Family, family), train, self.spec, seed)
        except SingleClassError as error:
            raise NoClassifierError(f"training data: {error}") from error

    def extra_scores(
        self,
        protocol: str,
        model: TabularClassifier,
        labels: np.ndarray,
        predictions: np.ndarray,
    ) -> dict[str, Any]:
        return {}

    def untrained_extras(self) -> dict[str, Any]:
        return {}


def _single_class_reason(labels: np.ndarray) -> str:
    positives = int(labels.sum())
    return f"{positives} positive and {labels.size - positives} negative labels"
