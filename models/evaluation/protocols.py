"""The TRTR, TSTR and TSTS protocols: one loop for every kind of data.

- TRTR: train on the real training frame, test on the real test frame (the baseline);
- TSTR: train on the synthetic frame, test on the real test frame;
- TSTS: split the synthetic frame (seeded, stratified by label), train on one part, test on
  the other.

How a classifier of the label is trained on a frame and scored on another (tabular rows,
images) is a :class:`ProtocolClassifiers`; the loop, the scores at the decision threshold, the
fairness of the predictions and the outcome of a protocol that trains nothing are shared, so
tabular and image results have one shape and one set of metric names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import polars as pl
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from fairdistill.models.evaluation.fairness import (
    FAIRNESS_SUMMARY,
    fairness_metrics,
    grouping_names,
    positive_labels,
    sensitive_groupings,
)
from fairdistill.models.spec import DatasetSpec

PROTOCOLS = ("trtr", "tstr", "tsts")
UTILITY_METRICS = ("auroc", "f1", "accuracy", "positive_prediction_rate")
TSTS_TEST_SHARE = 0.3
DECISION_THRESHOLD = 0.5


class NoClassifierError(ValueError):
    """A protocol cannot train or test a classifier; the message says why, for its outcome."""


class FittedClassifier(Protocol):
    """A classifier of the spec's target, scored straight from a frame."""

    def positive_probability(self, frame: pl.DataFrame) -> np.ndarray: ...


Model = TypeVar("Model", bound=FittedClassifier)


class ProtocolClassifiers(Protocol[Model]):
    """How one kind of data splits the synthetic frame and trains the protocols' classifiers."""

    def split_synthetic(
        self, synthetic: pl.DataFrame, seed: int
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The TSTS training and test parts; :class:`NoClassifierError` when there are none."""
        ...

    def fit(self, family: str, train: pl.DataFrame, test: pl.DataFrame, seed: int) -> Model:
        """A ``family`` classifier trained on ``train`` to be tested on ``test``.

        Raises :class:`NoClassifierError` when the frames allow no such test.
        """
        ...

    def extra_scores(
        self, protocol: str, model: Model, labels: np.ndarray, predictions: np.ndarray
    ) -> dict[str, Any]:
        """Outcome entries beyond ``utility`` and ``fairness`` for a trained protocol."""
        ...

    def untrained_extras(self) -> dict[str, Any]:
        """The entries of :meth:`extra_scores` for a protocol that trained nothing."""
        ...


def protocol_results(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
    families: Sequence[str],
    classifiers: ProtocolClassifiers[Any],
) -> dict[str, dict[str, Any]]:
    """Per family: ``trtr``, ``tstr`` and ``tsts`` outcomes and ``auroc_ratio_to_trtr``.

    Each outcome holds ``trained`` (bool), ``reason`` (why not, or None), ``utility``
    (:data:`UTILITY_METRICS`), ``fairness`` (per sensitive attribute and intersection, the
    output of :func:`fairness_metrics` on that protocol's test predictions) and whatever
    ``classifiers`` adds.
    """
    try:
        synthetic_train, synthetic_test = classifiers.split_synthetic(synthetic, seed)
        split_reason = None
    except NoClassifierError as error:
        split_reason = str(error)
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        trtr = _outcome(classifiers, "trtr", family, real_train, real_test, spec, seed)
        tstr = _outcome(classifiers, "tstr", family, synthetic, real_test, spec, seed)
        if split_reason is None:
            tsts = _outcome(
                classifiers, "tsts", family, synthetic_train, synthetic_test, spec, seed
            )
        else:
            tsts = _untrained(classifiers, spec, split_reason)
        results[family] = {
            "trtr": trtr,
            "tstr": tstr,
            "tsts": tsts,
            "auroc_ratio_to_trtr": _ratio(tstr["utility"]["auroc"], trtr["utility"]["auroc"]),
        }
    return results


def utility_scores(labels: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUROC of the positive probability; F1, accuracy and positive rate at the threshold.

    AUROC is NaN when ``labels`` hold one class.
    """
    predictions = (probability >= DECISION_THRESHOLD).astype(np.int8)
    both_classes = np.unique(labels).size == 2
    return {
        "auroc": float(roc_auc_score(labels, probability)) if both_classes else float("nan"),
        "f1": float(f1_score(labels, predictions, zero_division=0.0)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "positive_prediction_rate": float(predictions.mean()),
    }


def _outcome(
    classifiers: ProtocolClassifiers[Any],
    protocol: str,
    family: str,
    train: pl.DataFrame,
    test: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
) -> dict[str, Any]:
    try:
        model = classifiers.fit(family, train, test, seed)
    except NoClassifierError as error:
        return _untrained(classifiers, spec, str(error))
    labels = positive_labels(test, spec)
    probability = model.positive_probability(test)
    predictions = (probability >= DECISION_THRESHOLD).astype(np.int8)
    return {
        "trained": True,
        "reason": None,
        "utility": utility_scores(labels, probability),
        "fairness": {
            name: fairness_metrics(labels, predictions, groups)
            for name, groups in sensitive_groupings(test, spec).items()
        },
        **classifiers.extra_scores(protocol, model, labels, predictions),
    }


def _untrained(
    classifiers: ProtocolClassifiers[Any], spec: DatasetSpec, reason: str
) -> dict[str, Any]:
    return {
        "trained": False,
        "reason": reason,
        "utility": dict.fromkeys(UTILITY_METRICS, float("nan")),
        "fairness": {
            name: dict.fromkeys(FAIRNESS_SUMMARY, float("nan")) for name in grouping_names(spec)
        },
        **classifiers.untrained_extras(),
    }


def _ratio(numerator: float, denominator: float) -> float:
    if np.isnan(numerator) or np.isnan(denominator) or denominator == 0:
        return float("nan")
    return numerator / denominator
