"""Quality gates read the TSTR results of gradient boosting, or of the first family evaluated."""

from __future__ import annotations

import math

from fairdistill.models.gates import GateConfig, evaluate_gates, gated_family

IMAGE_METRICS = {
    "tstr.cnn.auroc_ratio_to_trtr": 1.02,
    "tstr.cnn.colour.demographic_parity_ratio": 0.9,
    "tstr.logistic_regression.auroc_ratio_to_trtr": 0.5,
    "tstr.logistic_regression.colour.demographic_parity_ratio": 0.1,
    "privacy.exact_copy_rate": 0.0,
}


def test_gradient_boosting_is_preferred_when_evaluated() -> None:
    metrics = {
        "tstr.logistic_regression.auroc_ratio_to_trtr": 0.9,
        "tstr.gradient_boosting.auroc_ratio_to_trtr": 0.95,
    }
    assert gated_family(metrics) == "gradient_boosting"
    assert gated_family({}) == "gradient_boosting"


def test_images_are_gated_on_their_first_family() -> None:
    assert gated_family(IMAGE_METRICS) == "cnn"
    gates = GateConfig(min_demographic_parity_ratio=0.8, min_utility_ratio=0.8)
    decisions = {d.gate: d for d in evaluate_gates(IMAGE_METRICS, gates, ["colour"])}
    assert decisions["min_utility_ratio"].metric == "tstr.cnn.auroc_ratio_to_trtr"
    assert decisions["min_utility_ratio"].passed
    parity = decisions["min_demographic_parity_ratio"]
    assert parity.metric == "tstr.cnn.colour.demographic_parity_ratio" and parity.passed
    assert all(decision.passed for decision in decisions.values())


def test_a_missing_metric_still_fails_its_gate() -> None:
    metrics = {"tstr.cnn.auroc_ratio_to_trtr": 1.0}
    decisions = evaluate_gates(metrics, GateConfig(), ["colour"])
    copies = next(d for d in decisions if d.gate == "max_exact_copy_rate")
    assert math.isnan(copies.value) and not copies.passed
