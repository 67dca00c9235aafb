"""Group fairness of predictions and of labels, for each sensitive attribute and their intersection.

Every sensitive attribute splits the rows into two groups: ``privileged`` (the attribute's value
is one of the spec's privileged values) and ``unprivileged`` (every other value, a missing value
included). With several attributes, their intersection labels each row by all of them at once,
e.g. ``sex=privileged|race=unprivileged``.

The summary metrics are fairlearn's, computed between all groups present:

- ``demographic_parity_ratio``: smallest over largest positive-prediction rate (1 is parity);
  ``demographic_parity_difference``: largest minus smallest rate (0 is parity).
- ``equalized_odds_ratio``: the smaller of the true-positive-rate ratio and the false-positive-rate
  ratio; ``equalized_odds_difference``: the larger of the two rate differences.

Degenerate cases, as fairlearn defines them:

- every group has rate 0 (e.g. nobody is predicted positive): the ratio is 0/0 and is NaN, while
  the difference is 0;
- a group has no positive labels, so its true-positive rate is undefined: fairlearn (through
  scikit-learn's normalised confusion matrix) counts that rate as 0, which drives the equalized
  odds ratio to 0. The per-group table reports that rate as NaN instead, with the group's label
  counts beside it, so a reader can tell "undefined" from "zero";
- only one group is present: there is nothing to compare, and every summary metric is NaN
  (fairlearn would report a ratio of 1).
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)

from fairdistill.models.spec import DatasetSpec, SensitiveAttribute

PRIVILEGED = "privileged"
UNPRIVILEGED = "unprivileged"
INTERSECTION = "intersection"
FAIRNESS_SUMMARY = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "equalized_odds_ratio",
    "equalized_odds_difference",
)


def positive_labels(frame: pl.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """1 where the target equals the spec's positive label, else 0; a missing label is an error."""
    target = frame.get_column(spec.target.column)
    if target.null_count():
        raise ValueError(
            f"the target column '{spec.target.column}' has {target.null_count()} missing values; "
            "drop those rows before evaluating"
        )
    return (target.cast(pl.String) == spec.target.positive).to_numpy().astype(np.int8)


def privileged_groups(frame: pl.DataFrame, spec: DatasetSpec, attribute: str) -> np.ndarray:
    """``privileged`` or ``unprivileged`` per row, by the attribute's privileged values."""
    privileged = _attribute(spec, attribute).privileged
    is_privileged = (
        frame.get_column(attribute).cast(pl.String).is_in(list(privileged)).fill_null(False)
    )
    return np.where(is_privileged.to_numpy(), PRIVILEGED, UNPRIVILEGED)


def intersectional_groups(frame: pl.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """One label per row naming its group on every sensitive attribute, joined by ``|``."""
    parts = [
        np.char.add(f"{column}=", privileged_groups(frame, spec, column))
        for column in spec.sensitive_columns
    ]
    labels = parts[0]
    for part in parts[1:]:
        labels = np.char.add(np.char.add(labels, "|"), part)
    return labels


def grouping_names(spec: DatasetSpec) -> list[str]:
    """The names :func:`sensitive_groupings` returns, in its order."""
    names = list(spec.sensitive_columns)
    return [*names, INTERSECTION] if len(names) > 1 else names


def sensitive_groupings(frame: pl.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Group labels for each sensitive attribute, plus their intersection when there are several."""
    groupings = {
        column: privileged_groups(frame, spec, column) for column in spec.sensitive_columns
    }
    if len(groupings) > 1:
        groupings[INTERSECTION] = intersectional_groups(frame, spec)
    return groupings


def fairness_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, float]:
    """Parity summaries and per-group rates of binary predictions (see the module notes).

    Keys: the four names in :data:`FAIRNESS_SUMMARY`, then per group ``count.<group>``,
    ``positives.<group>`` (positive labels), ``positive_rate.<group>`` (of predictions),
    ``true_positive_rate.<group>`` and ``false_positive_rate.<group>``.
    """
    y_true, y_pred, groups = _checked(y_true, y_pred, groups)
    result = _summary(y_true, y_pred, groups)
    for group in np.unique(groups):
        member = groups == group
        truth, prediction = y_true[member], y_pred[member]
        result[f"count.{group}"] = float(member.sum())
        result[f"positives.{group}"] = float(truth.sum())
        result[f"positive_rate.{group}"] = float(prediction.mean())
        result[f"true_positive_rate.{group}"] = _mean_or_nan(prediction[truth == 1])
        result[f"false_positive_rate.{group}"] = _mean_or_nan(prediction[truth == 0])
    return result


def label_parity(frame: pl.DataFrame, spec: DatasetSpec, attribute: str) -> dict:
    """Positive-label rate per group in the data itself, their ratio (min/max) and difference.

    ``attribute`` is a sensitive column or :data:`INTERSECTION`. The ratio is NaN when no group
    has a positive label (0/0), and both summaries are NaN with fewer than two groups.
    """
    labels = positive_labels(frame, spec)
    groups = (
        intersectional_groups(frame, spec)
        if attribute == INTERSECTION
        else privileged_groups(frame, spec, attribute)
    )
    names = [str(group) for group in np.unique(groups)]
    rates = {name: float(labels[groups == name].mean()) for name in names}
    counts = {name: int((groups == name).sum()) for name in names}
    lowest, highest = min(rates.values(), default=np.nan), max(rates.values(), default=np.nan)
    comparable = len(rates) > 1
    return {
        "positive_rate": rates,
        "count": counts,
        "ratio": lowest / highest if comparable and highest > 0 else float("nan"),
        "difference": highest - lowest if comparable else float("nan"),
    }


def _summary(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    if np.unique(groups).size < 2:
        return dict.fromkeys(FAIRNESS_SUMMARY, float("nan"))
    functions = {
        "demographic_parity_ratio": demographic_parity_ratio,
        "demographic_parity_difference": demographic_parity_difference,
        "equalized_odds_ratio": equalized_odds_ratio,
        "equalized_odds_difference": equalized_odds_difference,
    }
    with warnings.catch_warnings():
        # fairlearn warns on 0/0 ratios; the NaN it returns is the documented answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            name: float(function(y_true, y_pred, sensitive_features=groups))
            for name, function in functions.items()
        }


def _checked(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(np.int8).ravel()
    y_pred = np.asarray(y_pred).astype(np.int8).ravel()
    groups = np.asarray(groups).astype(str).ravel()
    if not (y_true.size == y_pred.size == groups.size):
        raise ValueError(
            f"labels, predictions and groups differ in length "
            f"({y_true.size}, {y_pred.size}, {groups.size})"
        )
    if y_true.size == 0:
        raise ValueError("fairness metrics need at least one row")
    for name, values in (("labels", y_true), ("predictions", y_pred)):
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{name} must be binary 0/1")
    return y_true, y_pred, groups


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _attribute(spec: DatasetSpec, column: str) -> SensitiveAttribute:
    for attribute in spec.sensitive:
        if attribute.column == column:
            return attribute
    raise ValueError(
        f"'{column}' is not a sensitive attribute of the spec "
        f"(sensitive: {', '.join(spec.sensitive_columns)})"
    )
