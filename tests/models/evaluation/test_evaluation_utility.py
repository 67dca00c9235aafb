from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.utility import (
    FAMILIES,
    SingleClassError,
    train_classifier,
    tstr_trtr,
    utility_metrics,
)
from fairdistill.models.spec import DatasetSpec, complete_spec


def separable_frame(rows: int, seed: int) -> pl.DataFrame:
    """The label is exactly ``score > 0``, with a gap around 0; the rest is noise, some missing."""
    rng = np.random.default_rng(seed)
    score = rng.choice([-1.0, 1.0], size=rows) * (0.5 + rng.exponential(size=rows))
    colour = rng.choice(["red", "green", "blue"], size=rows).astype(object)
    colour[rng.random(rows) < 0.1] = None
    noise = rng.normal(size=rows)
    noise[rng.random(rows) < 0.1] = np.nan
    return pl.DataFrame(
        {
            "score": score,
            "noise": pl.Series(noise).fill_nan(None),
            "colour": pl.Series(colour.tolist(), dtype=pl.String),
            "group": rng.choice(["a", "b"], size=rows),
            "label": np.where(score > 0, "pos", "neg"),
        }
    )


TOY = separable_frame(600, 0)
TOY_SPEC = complete_spec(
    DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": {"column": "label", "positive": "pos"},
            "sensitive": [{"column": "group", "privileged": ["a"]}],
        }
    ),
    TOY,
)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_perfect_model_on_separable_data_has_auroc_one(family: str) -> None:
    model = train_classifier(family, TOY, TOY_SPEC, seed=0)  # type: ignore[arg-type]
    result = utility_metrics(model, separable_frame(400, 1), TOY_SPEC)
    assert result["auroc"] == pytest.approx(1.0, abs=1e-3)
    assert result["accuracy"] > 0.95
    assert 0.4 < result["positive_prediction_rate"] < 0.6
    assert set(result) == {"auroc", "f1", "accuracy", "positive_prediction_rate"}


@pytest.mark.parametrize("family", FAMILIES)
def test_unseen_categories_and_missing_values_at_test_time_are_predicted(family: str) -> None:
    model = train_classifier(family, TOY, TOY_SPEC, seed=0)  # type: ignore[arg-type]
    odd = separable_frame(50, 2).with_columns(
        pl.lit("purple").alias("colour"), pl.lit(None, pl.Float64).alias("noise")
    )
    probabilities = model.predict_proba(odd)
    assert probabilities.shape == (50, 2)
    assert np.isfinite(probabilities).all()


def test_training_is_deterministic_for_a_seed() -> None:
    test = separable_frame(200, 3)
    first = train_classifier("gradient_boosting", TOY, TOY_SPEC, seed=5).predict_proba(test)
    again = train_classifier("gradient_boosting", TOY, TOY_SPEC, seed=5).predict_proba(test)
    assert np.array_equal(first, again)


def test_a_single_label_class_cannot_train() -> None:
    collapsed = TOY.with_columns(pl.lit("neg").alias("label"))
    with pytest.raises(SingleClassError, match="0 positive"):
        train_classifier("logistic_regression", collapsed, TOY_SPEC, seed=0)
    with pytest.raises(ValueError, match="unknown classifier family"):
        train_classifier("forest", TOY, TOY_SPEC, seed=0)  # type: ignore[arg-type]


def test_auroc_is_undefined_on_a_single_class_test_set() -> None:
    model = train_classifier("logistic_regression", TOY, TOY_SPEC, seed=0)
    positives_only = TOY.filter(pl.col("label") == "pos")
    result = utility_metrics(model, positives_only, TOY_SPEC)
    assert math.isnan(result["auroc"])
    assert result["accuracy"] > 0.95


def test_collapsed_synthetic_data_gives_nan_with_a_reason(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    spec = adult_spec
    collapsed = train.head(500).with_columns(pl.lit("<=50K").alias("income"))
    result = tstr_trtr(train, test, collapsed, spec, seed=0, families=("logistic_regression",))
    family = result["logistic_regression"]
    assert family["trtr"]["trained"] and family["trtr"]["reason"] is None
    for protocol in ("tstr", "tsts"):
        assert not family[protocol]["trained"]
        assert "0 positive" in family[protocol]["reason"]
        assert math.isnan(family[protocol]["utility"]["auroc"])
        assert math.isnan(family[protocol]["fairness"]["sex"]["demographic_parity_ratio"])
    assert math.isnan(family["auroc_ratio_to_trtr"])


def test_tstr_trtr_on_adult(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec_with_race: DatasetSpec
) -> None:
    train, test = adult_split
    spec = adult_spec_with_race
    # Real rows drawn again stand in for a faithful generator: TSTR should match TRTR.
    synthetic = train.sample(n=3000, with_replacement=True, seed=11)
    result = tstr_trtr(train, test, synthetic, spec, seed=0)
    assert set(result) == set(FAMILIES)
    for family in FAMILIES:
        outcome = result[family]
        assert outcome["trtr"]["utility"]["auroc"] > 0.8
        assert outcome["tstr"]["utility"]["auroc"] > 0.8
        assert outcome["tsts"]["trained"]
        assert 0.9 < outcome["auroc_ratio_to_trtr"] < 1.1
        fairness = outcome["tstr"]["fairness"]
        assert set(fairness) == {"sex", "race", "intersection"}
        # Adult's classifiers favour men: the parity ratio is far from 1.
        assert 0.0 < fairness["sex"]["demographic_parity_ratio"] < 0.7
        assert "positive_rate.sex=privileged|race=privileged" in fairness["intersection"]
