"""The fair-relabel frontier: what "fair data" can keep of the real rows' usefulness.

The reference row of the fairness benchmark, computed for every case beside the product:

1. out-of-fold probabilities of the label for every real training row, from the benchmark's
   own gradient-boosting classifier (5 stratified folds, seeded);
2. one threshold per sensitive group on those logits: under demographic parity each group's
   rows are labelled positive at the overall real positive rate (one logit offset per group,
   then 1[shifted logit >= 0]); under equalized odds the per-group thresholds whose true-
   and false-positive rates agree across groups (the product's own search,
   :func:`fairdistill.models.labeling.equalized_odds_thresholds`);
3. the real training rows with those labels are "the synthetic data": a fresh classifier is
   trained on them and scored on the real test rows like any generator's rows.

Groups are the joint values of the sensitive columns, as the product's label model uses
them. Random label flips within each group to the same rates give a fair but useless label
(DPR about 0.5 on Adult); the offset works because the fair label stays a clean function of
the features, which is the property the generator's labels must have.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.model_selection import StratifiedKFold

from fairdistill.models.evaluation.fairness import positive_labels
from fairdistill.models.evaluation.utility import train_classifier
from fairdistill.models.labeling import equalized_odds_thresholds, rate_threshold
from fairdistill.models.losses import FairnessCriterion
from fairdistill.models.spec import DatasetSpec

FOLDS = 5
# The ratio the product's equalized-odds thresholds aim at by default.
EO_MIN_RATIO = 0.9


def out_of_fold_logits(train: pl.DataFrame, spec: DatasetSpec, seed: int) -> np.ndarray:
    """Logit of the positive label of every row from a model that did not see it."""
    labels = positive_labels(train, spec)
    logits = np.zeros(train.height)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for fit_rows, held_rows in folds.split(np.zeros(train.height), labels):
        model = train_classifier("gradient_boosting", train[np.sort(fit_rows)], spec, seed)
        held = train[np.sort(held_rows)]
        logits[np.sort(held_rows)] = model.estimator.decision_function(
            model.features.transform(held)
        )
    return logits


def group_index(frame: pl.DataFrame, spec: DatasetSpec) -> tuple[np.ndarray, int]:
    """One integer per row naming its joint sensitive values, and how many there are."""
    joined = frame.select(
        pl.concat_str(
            [pl.col(name).cast(pl.String).fill_null("") for name in spec.sensitive_columns],
            separator="|",
        )
    ).to_series()
    values, index = np.unique(joined.to_numpy(), return_inverse=True)
    return index.astype(np.int64), len(values)


def fair_relabel(
    train: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
    criterion: FairnessCriterion = "demographic_parity",
) -> pl.DataFrame:
    """The real training rows with the frontier's fair labels in the target column."""
    labels = positive_labels(train, spec)
    logits = out_of_fold_logits(train, spec, seed)
    groups, count = group_index(train, spec)
    if criterion == "equalized_odds":
        thresholds = equalized_odds_thresholds(logits, labels, groups, count, EO_MIN_RATIO)
    else:
        rate = float(labels.mean())
        thresholds = np.array(
            [rate_threshold(logits[groups == group], rate) for group in range(count)]
        )
    positive = logits >= thresholds[groups]
    target = spec.target.column
    negative = _negative_label(train, spec)
    column = np.where(positive, spec.target.positive, negative)
    return train.with_columns(pl.Series(target, column, dtype=pl.String).cast(train.schema[target]))


def _negative_label(frame: pl.DataFrame, spec: DatasetSpec) -> str:
    if spec.target.classes is not None:
        return next(value for value in spec.target.classes if value != spec.target.positive)
    values = frame.get_column(spec.target.column).cast(pl.String).drop_nulls().unique().sort()
    return next(value for value in values.to_list() if value != spec.target.positive)
