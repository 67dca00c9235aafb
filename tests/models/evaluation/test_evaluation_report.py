from __future__ import annotations

import json
import math
import re

import polars as pl
import pytest

from fairdistill.models.evaluation import EvaluationResult, evaluate_synthetic, metric_name
from fairdistill.models.spec import DatasetSpec

MLFLOW_METRIC_NAME = re.compile(r"^[/\w.\- :]*$")


@pytest.fixture(scope="module")
def faithful_result(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec_with_race: DatasetSpec
) -> EvaluationResult:
    train, test = adult_split
    # Real rows drawn again stand in for a faithful generator.
    synthetic = train.sample(n=3000, with_replacement=True, seed=3)
    return evaluate_synthetic(train, test, synthetic, adult_spec_with_race, seed=0, max_rows=1500)


def test_metrics_are_flat_floats_with_valid_names(faithful_result: EvaluationResult) -> None:
    for name, value in faithful_result.metrics.items():
        assert MLFLOW_METRIC_NAME.match(name), name
        assert isinstance(value, float), name


def test_every_section_reports(faithful_result: EvaluationResult) -> None:
    metrics = faithful_result.metrics
    expected = [
        "real.positive_rate",
        "synthetic.positive_rate",
        "label_parity.sex",
        "label_parity.intersection",
        "real.label_parity.race.difference",
        "trtr.gradient_boosting.auroc",
        "tstr.gradient_boosting.auroc",
        "tsts.logistic_regression.f1",
        "tstr.logistic_regression.auroc_ratio_to_trtr",
        "tstr.gradient_boosting.sex.demographic_parity_ratio",
        "tstr.gradient_boosting.intersection.equalized_odds_difference",
        "fidelity.alpha_precision",
        "fidelity.beta_recall",
        "fidelity.authenticity",
        "fidelity.density",
        "fidelity.coverage",
        "fidelity.mean_tvd",
        "fidelity.tvd.workclass",
        "fidelity.wasserstein.age",
        "fidelity.correlation_difference",
        "privacy.exact_copy_rate",
        "privacy.holdout_exact_copy_rate",
        "privacy.dcr.median_ratio",
    ]
    missing = [name for name in expected if name not in metrics]
    assert not missing
    assert metrics["trtr.gradient_boosting.auroc"] > 0.8
    assert metrics["synthetic.positive_rate"] == pytest.approx(
        metrics["real.positive_rate"], abs=0.03
    )
    assert metrics["fidelity.alpha_precision"] > 0.8
    assert metrics["fidelity.mean_tvd"] < 0.05
    # Every synthetic row is a training row.
    assert metrics["privacy.exact_copy_rate"] == 1.0
    assert metrics["privacy.dcr.synthetic_median"] == 0.0
    assert metrics["privacy.holdout_exact_copy_rate"] < 0.01


def test_tables_are_plain_json(faithful_result: EvaluationResult) -> None:
    text = json.dumps(faithful_result.tables)
    tables = json.loads(text)
    assert set(tables) >= {"utility", "label_parity", "fidelity", "privacy", "timings_s"}
    association = tables["fidelity"]["association"]
    assert len(association["real"]) == len(association["columns"])
    histogram = tables["privacy"]["dcr_histogram"]
    assert sum(histogram["synthetic"]) == sum(histogram["holdout"]) == 1500
    assert set(tables["fidelity"]["marginal_histograms"]) == set(association["columns"])
    rates = tables["utility"]["gradient_boosting"]["tstr"]["fairness"]["sex"]
    assert 0 <= rates["positive_rate.unprivileged"] < rates["positive_rate.privileged"]


def test_collapsed_synthetic_data_is_reported_not_raised(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    collapsed = train.head(400).with_columns(pl.lit("<=50K").alias("income"))
    with_missing = pl.concat(
        [collapsed, collapsed.head(100).with_columns(pl.lit(None).alias("income"))]
    )
    result = evaluate_synthetic(
        train, test, with_missing, adult_spec, seed=0, families=("logistic_regression",)
    )
    assert result.metrics["tstr.logistic_regression.trained"] == 0.0
    assert math.isnan(result.metrics["tstr.logistic_regression.auroc"])
    assert result.metrics["synthetic.positive_rate"] == 0.0
    assert result.metrics["synthetic.missing_target_share"] == pytest.approx(0.2)
    assert result.metrics["synthetic.rows"] == 400.0
    assert "0 positive" in result.tables["utility"]["logistic_regression"]["tstr"]["reason"]


def test_missing_columns_are_named(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    with pytest.raises(ValueError, match="synthetic data lacks the columns age"):
        evaluate_synthetic(train, test, train.drop("age"), adult_spec, seed=0)


def test_metric_name_replaces_what_mlflow_refuses() -> None:
    assert metric_name("fidelity", "tvd", "age (years)/x:y") == "fidelity.tvd.age _years__x_y"
