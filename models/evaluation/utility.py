"""How useful synthetic data is for training a classifier of the target, and how fair that is.

Three protocols, each for every classifier family asked for:

- TRTR: train on the real training frame, test on the real test frame (the baseline);
- TSTR: train on the synthetic frame, test on the real test frame;
- TSTS: split the synthetic frame 70/30 (stratified by label, seeded), train on 70, test on 30.

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
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

from fairdistill.models.evaluation.embedding import category_codes, fit_embedding, split_columns
from fairdistill.models.evaluation.fairness import (
    FAIRNESS_SUMMARY,
    fairness_metrics,
    grouping_names,
    positive_labels,
    sensitive_groupings,
)
from fairdistill.models.spec import DatasetSpec

Family = Literal["gradient_boosting", "logistic_regression"]
FAMILIES: tuple[Family, ...] = ("gradient_boosting", "logistic_regression")
UTILITY_METRICS = ("auroc", "f1", "accuracy", "positive_prediction_rate")
TSTS_TEST_SHARE = 0.3
DECISION_THRESHOLD = 0.5
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
    return _scores(positive_labels(test, spec), model.positive_probability(test))


def tstr_trtr(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
    families: Sequence[Family] = FAMILIES,
) -> dict[str, dict[str, Any]]:
    """Per family: ``trtr``, ``tstr`` and ``tsts`` results and ``auroc_ratio_to_trtr``.

    Each protocol result holds ``trained`` (bool), ``reason`` (why not, or None), ``utility``
    (:data:`UTILITY_METRICS`) and ``fairness`` (per sensitive attribute and intersection, the
    output of :func:`fairness_metrics` on that protocol's test predictions).
    """
    synthetic_train, synthetic_test, split_reason = _tsts_split(synthetic, spec, seed)
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        trtr = _protocol(family, real_train, real_test, spec, seed)
        tstr = _protocol(family, synthetic, real_test, spec, seed)
        if split_reason is None:
            tsts = _protocol(family, synthetic_train, synthetic_test, spec, seed)
        else:
            tsts = _untrained(spec, split_reason)
        results[family] = {
            "trtr": trtr,
            "tstr": tstr,
            "tsts": tsts,
            "auroc_ratio_to_trtr": _ratio(tstr["utility"]["auroc"], trtr["utility"]["auroc"]),
        }
    return results


def _protocol(
    family: Family, train: pl.DataFrame, test: pl.DataFrame, spec: DatasetSpec, seed: int
) -> dict[str, Any]:
    try:
        model = train_classifier(family, train, spec, seed)
    except SingleClassError as error:
        return _untrained(spec, f"training data: {error}")
    labels = positive_labels(test, spec)
    probability = model.positive_probability(test)
    predictions = (probability >= DECISION_THRESHOLD).astype(np.int8)
    return {
        "trained": True,
        "reason": None,
        "utility": _scores(labels, probability),
        "fairness": {
            name: fairness_metrics(labels, predictions, groups)
            for name, groups in sensitive_groupings(test, spec).items()
        },
    }


def _untrained(spec: DatasetSpec, reason: str) -> dict[str, Any]:
    return {
        "trained": False,
        "reason": reason,
        "utility": dict.fromkeys(UTILITY_METRICS, float("nan")),
        "fairness": {
            name: dict.fromkeys(FAIRNESS_SUMMARY, float("nan")) for name in grouping_names(spec)
        },
    }


def _tsts_split(
    synthetic: pl.DataFrame, spec: DatasetSpec, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    labels = positive_labels(synthetic, spec)
    class_counts = np.bincount(labels, minlength=2)
    if class_counts.min() < 2:
        reason = (
            f"synthetic data: {_single_class_reason(labels)} (a stratified split needs 2+ each)"
        )
        return synthetic, synthetic, reason
    train_rows, test_rows = train_test_split(
        np.arange(synthetic.height), test_size=TSTS_TEST_SHARE, stratify=labels, random_state=seed
    )
    return synthetic[np.sort(train_rows)], synthetic[np.sort(test_rows)], None


def _scores(labels: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    predictions = (probability >= DECISION_THRESHOLD).astype(np.int8)
    both_classes = np.unique(labels).size == 2
    return {
        "auroc": float(roc_auc_score(labels, probability)) if both_classes else float("nan"),
        "f1": float(f1_score(labels, predictions, zero_division=0.0)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "positive_prediction_rate": float(predictions.mean()),
    }


def _single_class_reason(labels: np.ndarray) -> str:
    positives = int(labels.sum())
    return f"{positives} positive and {labels.size - positives} negative labels"


def _ratio(numerator: float, denominator: float) -> float:
    if np.isnan(numerator) or np.isnan(denominator) or denominator == 0:
        return float("nan")
    return numerator / denominator
