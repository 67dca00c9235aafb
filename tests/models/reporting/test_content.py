"""Picking the report's content out of a real evaluation of frames with known answers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.reporting import content
from fairdistill.models.spec import DatasetSpec, complete_spec

PRIVILEGED = {"sex": ["M"], "race": ["W"]}


def known_frame(rows: int, seed: int) -> pl.DataFrame:
    """Positive labels: 60% of M rows and 30% of F rows, exactly, in every race."""
    rng = np.random.default_rng(seed)
    sex = np.repeat(["M", "F"], rows // 2)
    race = np.tile(np.repeat(["W", "B"], rows // 4), 2)
    position = np.tile(np.arange(rows // 4), 4) / (rows // 4)
    positive = np.where(sex == "M", position < 0.6, position < 0.3)
    return pl.DataFrame(
        {
            "sex": sex,
            "race": race,
            "colour": rng.choice(["red", "green", "blue"], rows),
            "x": rng.normal(size=rows) + positive,
            "label": np.where(positive, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def evaluation() -> dict[str, Any]:
    train, test = known_frame(800, 0), known_frame(400, 1)
    spec = complete_spec(
        DatasetSpec.model_validate(
            {
                "name": "known",
                "target": {"column": "label", "positive": "yes"},
                "sensitive": [{"column": c, "privileged": v} for c, v in PRIVILEGED.items()],
            }
        ),
        train,
    )
    # The synthetic data keeps everything but paints every row blue.
    synthetic = train.with_columns(pl.lit("blue").alias("colour"))
    result = evaluate_synthetic(
        train, test, synthetic, spec, seed=0, families=("logistic_regression",), max_rows=300
    )
    return {"metrics": result.metrics, "tables": result.tables}


def test_group_rates_are_the_known_ones_for_each_attribute_and_the_intersection(
    evaluation: dict[str, Any],
) -> None:
    sections = content.group_fairness(evaluation["tables"], PRIVILEGED, "logistic_regression")
    assert [s.attribute for s in sections] == ["sex", "race", "intersection"]
    sex, race, intersection = sections
    assert sex.groups == ["privileged", "unprivileged"]
    assert sex.label_rate["real"] == pytest.approx({"privileged": 0.6, "unprivileged": 0.3})
    assert sex.rows["real"] == {"privileged": 400, "unprivileged": 400}
    assert race.label_rate["real"] == pytest.approx({"privileged": 0.45, "unprivileged": 0.45})
    assert len(intersection.groups) == 4
    assert intersection.label_rate["synthetic"]["sex=privileged|race=unprivileged"] == 0.6
    assert sex.definition.startswith("privileged: sex is M;")
    assert "joined by |" in intersection.definition
    assert set(sex.ratios) == {"trtr", "tstr", "tsts"}
    assert 0 < sex.ratios["tstr"]["demographic_parity_ratio"] < 1
    # The label depends on sex only: a classifier favours men in every protocol.
    rates = sex.prediction_rate["trtr"]
    assert rates["privileged"] > rates["unprivileged"]


def test_the_fairness_headline_shows_the_worst_grouping(evaluation: dict[str, Any]) -> None:
    tables, metrics = evaluation["tables"], evaluation["metrics"]
    fairness, utility, fidelity = content.headlines(tables, metrics, "logistic_regression", "label")
    tstr = tables["utility"]["logistic_regression"]["tstr"]["fairness"]
    worst = min(tstr, key=lambda name: tstr[name]["demographic_parity_ratio"])
    assert fairness.metric.endswith(worst)
    assert fairness.synthetic == tstr[worst]["demographic_parity_ratio"]
    assert utility.reference == metrics["trtr.logistic_regression.auroc"]
    assert utility.synthetic == metrics["tstr.logistic_regression.auroc"]
    assert (fidelity.reference, fidelity.synthetic) == (1.0, metrics["fidelity.alpha_precision"])


def test_a_ratio_that_could_not_be_computed_never_becomes_the_headline() -> None:
    def protocol(ratios: dict[str, float]) -> dict[str, Any]:
        return {
            "utility": {"auroc": 0.8},
            "fairness": {k: {"demographic_parity_ratio": v} for k, v in ratios.items()},
        }

    tables = {
        "utility": {
            "gradient_boosting": {
                "trtr": protocol({"a": 0.5, "b": 0.6}),
                "tstr": protocol({"a": math.nan, "b": 0.7}),
            }
        }
    }
    fairness = content.headlines(tables, {}, "gradient_boosting", "y")[0]
    assert fairness.metric.endswith(", b") and fairness.synthetic == 0.7
    assert math.isnan(content.headlines(tables, {}, "gradient_boosting", "y")[2].synthetic)


def test_the_most_different_column_comes_first(evaluation: dict[str, Any]) -> None:
    chosen, note = content.most_different_marginals(evaluation["tables"]["fidelity"], count=2)
    assert len(chosen) == 2 and chosen[0].column == "colour"
    colour = chosen[0]
    assert colour.kind == "categorical" and colour.distance_name == "TVD"
    assert colour.distance == pytest.approx(2 / 3, abs=0.06)
    assert dict(zip(colour.labels, colour.synthetic, strict=True))["blue"] == 1.0
    assert note.startswith("The 2 of 5 columns")


def test_utility_scores_cover_every_protocol(evaluation: dict[str, Any]) -> None:
    scores = content.utility_scores(evaluation["tables"])
    assert set(scores) == {"logistic_regression"}
    assert set(scores["logistic_regression"]) == {"trtr", "tstr", "tsts"}
    assert scores["logistic_regression"]["trtr"]["auroc"] > 0.7


def test_the_projection_finds_the_main_axis_with_a_fixed_sign() -> None:
    rng = np.random.default_rng(0)
    main = rng.normal(size=500) * 5
    latents = np.column_stack([main, main, rng.normal(size=500) * 0.1])
    projection = content.project_latents(latents, {"sex": ["M"] * 500})
    points = np.asarray(projection.points)
    assert points.shape == (500, 2)
    assert projection.explained_variance[0] > 0.99
    assert np.corrcoef(points[:, 0], main)[0, 1] > 0.999
    with pytest.raises(ValueError, match="2-D array"):
        content.project_latents(latents[:1], {})


def test_a_history_becomes_one_series_per_metric() -> None:
    summary = content.model_summary(
        name="teacher",
        role="fair VAE",
        parameters=10,
        encoder_parameters=4,
        history=[{"loss": 2.0, "kl": 1.0}, {"loss": 1.0}],
        probe_auroc={"sex": 0.5},
        latents=None,
        mlflow_run_id=None,
    )
    assert summary.history["loss"] == [2.0, 1.0]
    assert summary.history["kl"][0] == 1.0 and math.isnan(summary.history["kl"][1])


def test_each_figure_reads_against_the_holdout_in_its_own_direction() -> None:
    assert content.reading("coverage", 0.85, 0.95) == "worse than real held-out rows by 0.100"
    assert content.reading("mean_tvd", 0.01, 0.04) == "better than real held-out rows by 0.030"
    assert content.reading("discriminator_auc", 0.51, 0.50) == "as real held-out rows"
    assert content.reading("density", 1.30, 1.00) == "above real held-out rows by 0.300"
    # Distances are read relative to their own scale.
    assert content.reading("dcr.synthetic_median", 10.1, 10.0) == "as real held-out rows"
    assert content.reading("coverage", math.nan, 0.9) == ""
    assert content.reading("dcr.median_ratio", 1.0, 1.0) == ""


def test_the_holdout_references_come_from_the_evaluation_metrics() -> None:
    metrics = {
        "holdout.fidelity.coverage": 0.93,
        "privacy.holdout_exact_copy_rate": 0.002,
        "privacy.dcr.holdout_median": 1.7,
        "privacy.dcr.holdout_p5": 0.4,
        "holdout.privacy.nndr_median": 0.8,
    }
    references = content.holdout_references(metrics)
    assert references["fidelity"]["coverage"] == 0.93
    assert math.isnan(references["fidelity"]["alpha_precision"])
    assert references["privacy"] == {
        "exact_copy_rate": 0.002,
        "dcr.synthetic_median": 1.7,
        "dcr.synthetic_share_below_holdout_p5": 0.05,
        "nndr_median": 0.8,
    }
    assert math.isnan(content.holdout_references({})["privacy"]["nndr_median"])
