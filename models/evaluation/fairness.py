"""Group fairness of predictions and of labels, for each sensitive attribute and their intersection.

Every sensitive attribute splits the rows into two groups: ``privileged`` (the attribute's value
is one of the spec's privileged values) and ``unprivileged`` (every other value, a missing value
included). With several attributes, their intersection labels each row by all of them at once,
e.g. ``sex=privileged|race=unprivileged``.

The summary metrics are fairlearn's definitions (``fairlearn.metrics``, method
``between_groups``, no sample weights), computed between all groups present:

- ``demographic_parity_ratio``: smallest over largest positive-prediction rate (1 is parity);
  ``demographic_parity_difference``: largest minus smallest rate (0 is parity).
- ``equalized_odds_ratio``: the smaller of the true-positive-rate ratio and the false-positive-rate
  ratio; ``equalized_odds_difference``: the larger of the two rate differences.

Every rate is a quotient of counts, so they are computed here from one table of counts per
(group, label, prediction) cell rather than through fairlearn's per-group frames, which cost
far more than the counting; the tests check that each number equals fairlearn's own.

Degenerate cases, as fairlearn defines them:

- every group has rate 0 (e.g. nobody is predicted positive): the ratio is 0/0 and is NaN, while
  the difference is 0;
- a group has no positive labels, so its true-positive rate is undefined: fairlearn (through
  scikit-learn's normalised confusion matrix) counts that rate as 0, which drives the equalized
  odds ratio to 0; likewise a group without negative labels has a false-positive rate of 0.
  The per-group table reports such a rate as NaN instead, with the group's label counts beside
  it, so a reader can tell "undefined" from "zero";
- the equalized odds ratio takes the smaller of the two ratios the way Python's ``min`` does,
  as fairlearn does: a NaN true-positive-rate ratio gives NaN, while a NaN false-positive-rate
  ratio (no false positives anywhere) leaves the true-positive-rate ratio;
- only one group is present: there is nothing to compare, and every summary metric is NaN
  (fairlearn would report a ratio of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

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
    counts = _GroupCounts.tally(*_checked(y_true, y_pred, groups))
    result = _summary(counts)
    per_group = {
        "count": counts.rows,
        "positives": counts.positives,
        "positive_rate": counts.positive_rate,
        "true_positive_rate": _rate(counts.true_positives, counts.positives, undefined=np.nan),
        "false_positive_rate": _rate(counts.false_positives, counts.negatives, undefined=np.nan),
    }
    for index, group in enumerate(counts.names):
        for name, values in per_group.items():
            result[f"{name}.{group}"] = float(values[index])
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


@dataclass(frozen=True)
class _GroupCounts:
    """Rows per group (in sorted group order) split by label and by prediction."""

    names: np.ndarray
    cells: np.ndarray  # shape (groups, label, prediction)

    @classmethod
    def tally(cls, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> _GroupCounts:
        names, codes = np.unique(groups, return_inverse=True)
        cell_index = codes * 4 + y_true.astype(np.intp) * 2 + y_pred
        cells = np.bincount(cell_index, minlength=4 * names.size).reshape(-1, 2, 2)
        return cls(names, cells)

    @property
    def rows(self) -> np.ndarray:
        return self.cells.sum(axis=(1, 2))

    @property
    def positives(self) -> np.ndarray:
        return self.cells[:, 1].sum(axis=1)

    @property
    def negatives(self) -> np.ndarray:
        return self.cells[:, 0].sum(axis=1)

    @property
    def true_positives(self) -> np.ndarray:
        return self.cells[:, 1, 1]

    @property
    def false_positives(self) -> np.ndarray:
        return self.cells[:, 0, 1]

    @property
    def positive_rate(self) -> np.ndarray:
        return self.cells[:, :, 1].sum(axis=1) / self.rows


def _summary(counts: _GroupCounts) -> dict[str, float]:
    if counts.names.size < 2:
        return dict.fromkeys(FAIRNESS_SUMMARY, float("nan"))
    # scikit-learn's normalised confusion matrix turns an undefined rate (0/0) into 0.
    true_positive_rate = _rate(counts.true_positives, counts.positives, undefined=0.0)
    false_positive_rate = _rate(counts.false_positives, counts.negatives, undefined=0.0)
    # Python's min and max, as fairlearn applies them to its (tpr, fpr) pair: with a NaN, the
    # answer depends on the order, and this order is fairlearn's.
    return {
        "demographic_parity_ratio": _ratio(counts.positive_rate),
        "demographic_parity_difference": _difference(counts.positive_rate),
        "equalized_odds_ratio": min(_ratio(true_positive_rate), _ratio(false_positive_rate)),
        "equalized_odds_difference": max(
            _difference(true_positive_rate), _difference(false_positive_rate)
        ),
    }


def _rate(hits: np.ndarray, trials: np.ndarray, undefined: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(trials > 0, hits / trials, undefined)


def _ratio(rates: np.ndarray) -> float:
    """Smallest over largest rate; NaN when every rate is 0."""
    highest = float(rates.max())
    return float(rates.min()) / highest if highest > 0 else float("nan")


def _difference(rates: np.ndarray) -> float:
    return float(rates.max()) - float(rates.min())


def _checked(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(np.int8).ravel()
    y_pred = np.asarray(y_pred).astype(np.int8).ravel()
    groups = np.asarray(groups).astype(str, copy=False).ravel()
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


def _attribute(spec: DatasetSpec, column: str) -> SensitiveAttribute:
    for attribute in spec.sensitive:
        if attribute.column == column:
            return attribute
    raise ValueError(
        f"'{column}' is not a sensitive attribute of the spec "
        f"(sensitive: {', '.join(spec.sensitive_columns)})"
    )
