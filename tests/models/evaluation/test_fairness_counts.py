"""The count-based summary metrics equal fairlearn's own functions, degenerate cases included."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)

from fairdistill.models.evaluation.fairness import FAIRNESS_SUMMARY, fairness_metrics

FAIRLEARN = {
    "demographic_parity_ratio": demographic_parity_ratio,
    "demographic_parity_difference": demographic_parity_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equalized_odds_difference": equalized_odds_difference,
}
GROUP_NAMES = (
    "sex=privileged|race=privileged",
    "sex=privileged|race=unprivileged",
    "sex=unprivileged|race=privileged",
    "sex=unprivileged|race=unprivileged",
    "unknown",
)
LABEL_MODES = ("random", "random", "all_positive", "all_negative")
PREDICTION_MODES = ("random", "random", "all_zero", "all_one", "labels", "inverted")
RANDOM_CASES = 160


def fairlearn_summary(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            name: float(function(y_true, y_pred, sensitive_features=groups))
            for name, function in FAIRLEARN.items()
        }


def assert_same(ours: float, reference: float, name: str) -> None:
    if math.isnan(reference):
        assert math.isnan(ours), f"{name}: {ours} where fairlearn gives NaN"
    else:
        assert abs(ours - reference) <= 1e-12, f"{name}: {ours} where fairlearn gives {reference}"


def assert_summary_matches_fairlearn(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, float]:
    ours = fairness_metrics(y_true, y_pred, groups)
    reference = fairlearn_summary(y_true, y_pred, groups)
    for name in FAIRNESS_SUMMARY:
        assert_same(ours[name], reference[name], name)
    return ours


def random_labels(rng: np.random.Generator, size: int, mode: str) -> np.ndarray:
    if mode == "all_positive":
        return np.ones(size, dtype=np.int8)
    if mode == "all_negative":
        return np.zeros(size, dtype=np.int8)
    return (rng.random(size) < rng.uniform(0.05, 0.95)).astype(np.int8)


def random_predictions(rng: np.random.Generator, labels: np.ndarray, mode: str) -> np.ndarray:
    if mode == "all_zero":
        return np.zeros_like(labels)
    if mode == "all_one":
        return np.ones_like(labels)
    if mode == "labels":
        return labels.copy()
    if mode == "inverted":
        return 1 - labels
    return (rng.random(labels.size) < rng.uniform(0.0, 1.0)).astype(np.int8)


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1–5 groups of 1–40 rows, each with its own label and prediction pattern, rows shuffled."""
    rng = np.random.default_rng(seed)
    names = rng.choice(GROUP_NAMES, size=rng.integers(1, 6), replace=False)
    # Some cases use one prediction pattern for every group (e.g. nobody predicted positive).
    shared_mode = rng.choice(PREDICTION_MODES) if rng.random() < 0.3 else None
    truths, predictions, groups = [], [], []
    for name in names:
        size = int(rng.integers(1, 7) if rng.random() < 0.4 else rng.integers(7, 41))
        labels = random_labels(rng, size, rng.choice(LABEL_MODES))
        mode = shared_mode or rng.choice(PREDICTION_MODES)
        truths.append(labels)
        predictions.append(random_predictions(rng, labels, mode))
        groups.append(np.full(size, name))
    order = rng.permutation(sum(part.size for part in truths))
    return (
        np.concatenate(truths)[order],
        np.concatenate(predictions)[order],
        np.concatenate(groups)[order],
    )


def rate_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


@pytest.mark.parametrize("seed", range(RANDOM_CASES))
def test_random_cases_match_fairlearn(seed: int) -> None:
    y_true, y_pred, groups = random_case(seed)
    if np.unique(groups).size < 2:
        result = fairness_metrics(y_true, y_pred, groups)
        assert all(math.isnan(result[name]) for name in FAIRNESS_SUMMARY)
    else:
        result = assert_summary_matches_fairlearn(y_true, y_pred, groups)
    for group in np.unique(groups):
        member = groups == group
        truth, prediction = y_true[member], y_pred[member]
        assert result[f"count.{group}"] == member.sum()
        assert result[f"positives.{group}"] == truth.sum()
        assert result[f"positive_rate.{group}"] == prediction.mean()
        for name, label in (("true_positive_rate", 1), ("false_positive_rate", 0)):
            key = f"{name}.{group}"
            assert_same(result[key], rate_or_nan(prediction[truth == label]), key)


def test_random_cases_cover_the_degenerate_cases() -> None:
    """The random cases above do reach every case the module documents."""
    reached = {"one group": 0, "nan ratio": 0, "no positives": 0, "no negatives": 0}
    for seed in range(RANDOM_CASES):
        y_true, y_pred, groups = random_case(seed)
        names = np.unique(groups)
        reached["one group"] += names.size == 1
        reached["nan ratio"] += names.size > 1 and not y_pred.any()
        reached["no positives"] += names.size > 1 and any(
            not y_true[groups == name].any() for name in names
        )
        reached["no negatives"] += names.size > 1 and any(
            y_true[groups == name].all() for name in names
        )
    assert min(reached.values()) >= 3, reached


GROUPS = np.array(["a"] * 4 + ["b"] * 4)
TRUTH = np.array([1, 1, 0, 0] * 2, dtype=np.int8)


def test_nobody_predicted_positive_matches_fairlearn() -> None:
    result = assert_summary_matches_fairlearn(TRUTH, np.zeros_like(TRUTH), GROUPS)
    assert math.isnan(result["demographic_parity_ratio"])
    assert math.isnan(result["equalized_odds_ratio"])
    assert result["demographic_parity_difference"] == result["equalized_odds_difference"] == 0


def test_a_group_without_negative_labels_counts_its_false_positive_rate_as_zero() -> None:
    truth = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=np.int8)
    predictions = np.array([1, 1, 1, 1, 1, 0, 1, 0], dtype=np.int8)
    result = assert_summary_matches_fairlearn(truth, predictions, GROUPS)
    assert math.isnan(result["false_positive_rate.a"])
    # a: TPR 1, FPR counted as 0; b: TPR 1/2, FPR 1/2.
    assert result["equalized_odds_ratio"] == 0.0
    assert result["equalized_odds_difference"] == 0.5


def test_a_perfect_classifier_has_an_odds_ratio_of_one_as_in_fairlearn() -> None:
    # Nobody is a false positive, so the FPR ratio is 0/0; fairlearn's min keeps the TPR ratio.
    result = assert_summary_matches_fairlearn(TRUTH, TRUTH, GROUPS)
    assert result["equalized_odds_ratio"] == 1.0
    assert result["equalized_odds_difference"] == 0.0


def test_no_true_positives_anywhere_gives_an_undefined_odds_ratio_as_in_fairlearn() -> None:
    predictions = np.array([0, 0, 1, 0, 0, 0, 1, 1], dtype=np.int8)
    result = assert_summary_matches_fairlearn(TRUTH, predictions, GROUPS)
    assert math.isnan(result["equalized_odds_ratio"])
    assert result["equalized_odds_difference"] == 0.5


def test_one_group_is_nan_where_fairlearn_reports_parity() -> None:
    groups = np.array(["a"] * TRUTH.size)
    predictions = np.array([1, 0, 1, 0, 0, 0, 0, 1], dtype=np.int8)
    result = fairness_metrics(TRUTH, predictions, groups)
    assert all(math.isnan(result[name]) for name in FAIRNESS_SUMMARY)
    assert fairlearn_summary(TRUTH, predictions, groups)["demographic_parity_ratio"] == 1.0


def test_summaries_on_evaluation_sized_data_match_fairlearn() -> None:
    rng = np.random.default_rng(7)
    size = 5000
    groups = rng.choice(np.array(GROUP_NAMES[:4]), size=size, p=[0.6, 0.25, 0.1, 0.05])
    y_true = (rng.random(size) < 0.24).astype(np.int8)
    y_pred = ((y_true + rng.normal(0.0, 0.7, size)) > 0.6).astype(np.int8)
    result = assert_summary_matches_fairlearn(y_true, y_pred, groups)
    assert 0.0 < result["equalized_odds_ratio"] < 1.0
