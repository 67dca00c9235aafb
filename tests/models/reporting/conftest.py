"""A complete ReportData of known values, with names a browser would misread if unescaped."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from fairdistill.models.reporting.content import model_summary, project_latents
from fairdistill.models.reporting.data import (
    Association,
    DistanceHistogram,
    GateResult,
    GroupFairness,
    Headline,
    MarginalHistogram,
    Provenance,
    ReportData,
)

HOSTILE = '<script>alert("x")</script> & co'


def _fairness(attribute: str, groups: list[str]) -> GroupFairness:
    rates = {group: 0.2 + 0.1 * index for index, group in enumerate(groups)}
    return GroupFairness(
        attribute=attribute,
        definition=f"privileged: {attribute} is {HOSTILE}",
        groups=groups,
        label_rate={"real": rates, "synthetic": {g: r + 0.05 for g, r in rates.items()}},
        rows={"real": dict.fromkeys(groups, 100), "synthetic": dict.fromkeys(groups, 120)},
        prediction_rate={p: rates for p in ("trtr", "tstr", "tsts")},
        ratios={
            "trtr": {"demographic_parity_ratio": 0.61, "equalized_odds_ratio": 0.55},
            "tstr": {"demographic_parity_ratio": 0.93, "equalized_odds_ratio": 0.88},
            "tsts": {"demographic_parity_ratio": math.nan, "equalized_odds_ratio": 0.9},
        },
    )


def _model(name: str, history: list[dict[str, float]], parameters: int) -> object:
    rng = np.random.default_rng(3)
    latents = rng.normal(size=(300, 4))
    groups = {"sex": list(rng.choice(["Male", "Female"], 300)), HOSTILE: ["a"] * 300}
    return model_summary(
        name=name,
        role=f"{name} role",
        parameters=parameters * 2,
        encoder_parameters=parameters,
        history=history,
        probe_auroc={"sex": 0.52, HOSTILE: 0.5},
        latents=project_latents(latents, groups),
        mlflow_run_id=f"run-{name}",
    )


def build_report(*, passed: bool = True) -> ReportData:
    columns = ["age", HOSTILE, "sex"]
    return ReportData(
        run_name="adult-test-run",
        dataset="adult",
        created_at="2026-01-01T00:00:00+00:00",
        gates=[
            GateResult(
                gate="min_demographic_parity_ratio",
                metric=f"tstr.gradient_boosting.{HOSTILE}.demographic_parity_ratio",
                comparison=">=",
                threshold=0.8 if passed else 0.95,
                value=0.93,
                passed=passed,
                margin=0.13 if passed else -0.02,
            )
        ],
        headlines=[
            Headline(
                "Fairness",
                f"demographic parity ratio, {HOSTILE}",
                0.61,
                0.93,
                "real",
                "syn",
                "1 is parity",
            ),
            Headline(
                "Utility", "AUROC predicting income", 0.9, 0.85, "real", "syn", "higher is better"
            ),
            Headline("Fidelity", "alpha-precision", 1.0, math.nan, "ideal", "syn", "1 is ideal"),
        ],
        fairness_classifier="gradient_boosting",
        fairness=[
            _fairness(HOSTILE, ["privileged", "unprivileged"]),
            _fairness("intersection", ["a=privileged|b=privileged", "a=unprivileged|b=privileged"]),
        ],
        utility={
            family: {
                "trtr": {"auroc": 0.9, "f1": 0.7, "accuracy": 0.85},
                "tstr": {"auroc": 0.85, "f1": 0.65, "accuracy": 0.8},
                "tsts": {"auroc": math.nan, "f1": 0.6, "accuracy": 0.8},
            }
            for family in ("gradient_boosting", "logistic_regression")
        },
        fidelity={"alpha_precision": 0.9, "mean_tvd": 0.05},
        marginals=[
            MarginalHistogram(
                HOSTILE,
                "categorical",
                "TVD",
                0.3,
                ["x", HOSTILE, "(missing)"],
                [],
                [0.5, 0.3, 0.2],
                [0.2, 0.5, 0.3],
            ),
            MarginalHistogram(
                "age",
                "numeric",
                "KS",
                0.1,
                [],
                [0.0, 10.0, 20.0, 30.0],
                [0.2, 0.5, 0.3],
                [0.3, 0.4, 0.3],
                {"real": 0.0, "synthetic": 0.0},
            ),
        ],
        marginal_selection="The 2 of 3 columns that differ most.",
        association=Association(
            columns=columns,
            real=[[1.0, 0.4, 0.1], [0.4, 1.0, 0.2], [0.1, 0.2, 1.0]],
            synthetic=[[1.0, 0.1, 0.1], [0.1, 1.0, 0.3], [0.1, 0.3, 1.0]],
            mean_absolute_difference=0.133,
        ),
        privacy={"exact_copy_rate": 0.0, "dcr.median_ratio": 1.02},
        distances=DistanceHistogram(
            edges=[0.0, 1.0, 2.0, 3.0], synthetic=[5.0, 30.0, 10.0], holdout=[4.0, 31.0, 12.0]
        ),
        models=[
            _model(
                "teacher",
                [
                    {"loss": 3.0, "kl": 0.5, "epoch_seconds": 1.0},
                    {"loss": 2.0, "kl": 0.4, "epoch_seconds": 1.0},
                ],
                1000,
            ),
            _model("student", [{"loss": 1.0, "quality": 0.5}, {"loss": 0.5, "quality": 0.2}], 200),
        ],
        provenance=Provenance(
            input_path=f"/data/{HOSTILE}.csv",
            input_sha256="ab" * 32,
            input_rows=1000,
            train_rows=800,
            test_rows=200,
            output_sha256="cd" * 32,
            output_rows=800,
            published_folder="/published/adult-test-run" if passed else None,
            spec={"name": "adult", "note": HOSTILE},
            config={"seed": 0},
            code_version={"package": "0.1.0", "git_commit": None},
            tracking_uri="sqlite:///tmp/mlflow.db",
            experiment_id="1",
            mlflow_run_id="parent-run",
            stage_runs={"evaluate": "run-evaluate"},
            reused_stages=["train_teacher"],
            flow_run_id="flow-run",
        ),
        fidelity_reference={"alpha_precision": 0.97, "mean_tvd": 0.01},
        privacy_reference={"exact_copy_rate": 0.0},
    )


@pytest.fixture(scope="session")
def report() -> ReportData:
    return build_report()


@pytest.fixture(scope="session")
def failed_report() -> ReportData:
    return build_report(passed=False)


@pytest.fixture(scope="session")
def ungated_report(report: ReportData) -> ReportData:
    return replace(report, gates=[])
