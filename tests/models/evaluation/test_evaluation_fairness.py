from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.fairness import (
    FAIRNESS_SUMMARY,
    INTERSECTION,
    fairness_metrics,
    grouping_names,
    intersectional_groups,
    label_parity,
    positive_labels,
    privileged_groups,
    sensitive_groupings,
)
from fairdistill.models.spec import DatasetSpec

SPEC = DatasetSpec.model_validate(
    {
        "name": "toy",
        "target": {"column": "y", "positive": "yes"},
        "sensitive": [
            {"column": "sex", "privileged": ["M"]},
            {"column": "race", "privileged": ["W", "A"]},
        ],
    }
)
FRAME = pl.DataFrame(
    {
        "sex": ["M", "M", "F", "F", None, "M"],
        "race": ["W", "B", "A", "B", "W", None],
        "y": ["yes", "no", "yes", "no", "no", "yes"],
    }
)
GROUPS = np.array(["privileged"] * 8 + ["unprivileged"] * 8)
TRUTH = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 2)


def test_privileged_groups_follow_the_privileged_values_and_put_missing_in_the_rest() -> None:
    assert privileged_groups(FRAME, SPEC, "sex").tolist() == [
        "privileged",
        "privileged",
        "unprivileged",
        "unprivileged",
        "unprivileged",
        "privileged",
    ]
    assert privileged_groups(FRAME, SPEC, "race").tolist()[:3] == [
        "privileged",
        "unprivileged",
        "privileged",
    ]


def test_privileged_groups_refuses_a_column_that_is_not_sensitive() -> None:
    with pytest.raises(ValueError, match="not a sensitive attribute"):
        privileged_groups(FRAME, SPEC, "y")


def test_intersection_labels_name_every_attribute() -> None:
    labels = intersectional_groups(FRAME, SPEC)
    assert labels[0] == "sex=privileged|race=privileged"
    assert labels[3] == "sex=unprivileged|race=unprivileged"
    groupings = sensitive_groupings(FRAME, SPEC)
    assert list(groupings) == ["sex", "race", INTERSECTION] == grouping_names(SPEC)


def test_one_attribute_has_no_intersection() -> None:
    single = SPEC.model_copy(update={"sensitive": SPEC.sensitive[:1]})
    assert list(sensitive_groupings(FRAME, single)) == ["sex"] == grouping_names(single)


def test_equal_positive_rates_give_parity() -> None:
    predictions = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 2)
    result = fairness_metrics(TRUTH, predictions, GROUPS)
    assert result["demographic_parity_ratio"] == pytest.approx(1.0)
    assert result["demographic_parity_difference"] == pytest.approx(0.0)
    assert result["positive_rate.privileged"] == result["positive_rate.unprivileged"] == 0.5


def test_positives_only_for_the_privileged_give_zero_parity() -> None:
    predictions = (GROUPS == "privileged").astype(int)
    result = fairness_metrics(TRUTH, predictions, GROUPS)
    assert result["demographic_parity_ratio"] == pytest.approx(0.0)
    assert result["demographic_parity_difference"] == pytest.approx(1.0)


def test_equalized_odds_on_a_constructed_case() -> None:
    # privileged: TPR 3/4, FPR 1/4; unprivileged: TPR 1/4, FPR 2/4.
    predictions = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0])
    result = fairness_metrics(TRUTH, predictions, GROUPS)
    assert result["true_positive_rate.privileged"] == pytest.approx(0.75)
    assert result["true_positive_rate.unprivileged"] == pytest.approx(0.25)
    assert result["false_positive_rate.privileged"] == pytest.approx(0.25)
    assert result["false_positive_rate.unprivileged"] == pytest.approx(0.5)
    assert result["equalized_odds_ratio"] == pytest.approx(1 / 3)  # min(0.25/0.75, 0.25/0.5)
    assert result["equalized_odds_difference"] == pytest.approx(0.5)  # max(0.5, 0.25)
    assert result["count.privileged"] == 8 and result["positives.unprivileged"] == 4


def test_a_group_without_positive_labels_has_an_undefined_rate_and_zero_odds_ratio() -> None:
    truth = np.array([1, 1, 0, 0] + [0] * 12)
    groups = np.array(["privileged"] * 4 + ["unprivileged"] * 12)
    predictions = np.array([1, 0, 1, 0] + [1, 0] * 6)
    result = fairness_metrics(truth, predictions, groups)
    assert math.isnan(result["true_positive_rate.unprivileged"])
    assert result["positives.unprivileged"] == 0
    assert result["equalized_odds_ratio"] == pytest.approx(0.0)


def test_nobody_predicted_positive_gives_an_undefined_ratio_and_zero_difference() -> None:
    result = fairness_metrics(TRUTH, np.zeros_like(TRUTH), GROUPS)
    assert math.isnan(result["demographic_parity_ratio"])
    assert result["demographic_parity_difference"] == 0.0


def test_a_single_group_has_nothing_to_compare() -> None:
    result = fairness_metrics(TRUTH, TRUTH, np.array(["privileged"] * TRUTH.size))
    assert all(math.isnan(result[name]) for name in FAIRNESS_SUMMARY)
    assert result["true_positive_rate.privileged"] == 1.0


def test_fairness_metrics_refuse_mismatched_or_non_binary_inputs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        fairness_metrics(TRUTH, TRUTH[:-1], GROUPS)
    with pytest.raises(ValueError, match="binary"):
        fairness_metrics(TRUTH, TRUTH * 2, GROUPS)


def test_label_parity_reports_rates_ratio_and_difference() -> None:
    result = label_parity(FRAME, SPEC, "sex")
    # privileged rows 0,1,5: yes,no,yes; unprivileged rows 2,3,4: yes,no,no.
    assert result["positive_rate"] == pytest.approx({"privileged": 2 / 3, "unprivileged": 1 / 3})
    assert result["ratio"] == pytest.approx(0.5)
    assert result["difference"] == pytest.approx(1 / 3)
    assert result["count"] == {"privileged": 3, "unprivileged": 3}
    assert set(label_parity(FRAME, SPEC, INTERSECTION)["positive_rate"]) == set(
        intersectional_groups(FRAME, SPEC).tolist()
    )


def test_positive_labels_refuse_a_missing_target() -> None:
    assert positive_labels(FRAME, SPEC).tolist() == [1, 0, 1, 0, 0, 1]
    with pytest.raises(ValueError, match="missing"):
        positive_labels(FRAME.with_columns(pl.lit(None, pl.String).alias("y")), SPEC)
