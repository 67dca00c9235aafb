"""Quality gates read the TSTR results of gradient boosting, or of the first family evaluated."""

from __future__ import annotations

import math

import pytest

from fairdistill.models.gates import GateConfig, evaluate_gates, gate_miss_hint, gated_family

IMAGE_METRICS = {
    "tstr.cnn.auroc_ratio_to_trtr": 1.02,
    "tstr.cnn.colour.demographic_parity_ratio": 0.9,
    "tstr.logistic_regression.auroc_ratio_to_trtr": 0.5,
    "tstr.logistic_regression.colour.demographic_parity_ratio": 0.1,
    "privacy.exact_copy_rate": 0.0,
    "privacy.holdout_exact_copy_rate": 0.0,
    "privacy.dcr.synthetic_share_below_holdout_p5": 0.04,
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
    copies = next(d for d in decisions if d.gate == "max_exact_copy_excess")
    assert math.isnan(copies.value) and not copies.passed


def copies(synthetic: float, holdout: float, dcr_share: float = 0.03) -> dict[str, float]:
    return {
        "privacy.exact_copy_rate": synthetic,
        "privacy.holdout_exact_copy_rate": holdout,
        "privacy.dcr.synthetic_share_below_holdout_p5": dcr_share,
    }


def privacy_gates(metrics: dict[str, float], **gates: float | None) -> dict[str, object]:
    config = GateConfig(min_utility_ratio=None, **gates)
    return {d.gate: d for d in evaluate_gates(metrics, config, ["sex"])}


def test_copies_are_judged_against_what_the_real_holdout_copies() -> None:
    """Adult without fnlwgt: the holdout repeats 18.5 % of training rows,
    the synthetic data 9.8 %: as private as real data, so it passes by default."""
    decisions = privacy_gates(copies(0.098, 0.185))
    copy_gate = decisions["max_exact_copy_excess"]
    assert copy_gate.passed and copy_gate.threshold == pytest.approx(0.235)
    assert copy_gate.baseline_metric == "privacy.holdout_exact_copy_rate"
    assert (copy_gate.baseline, copy_gate.allowance) == (0.185, 0.05)
    assert "needs <= 0.2350 = real holdout 0.1850 + 0.0500" in copy_gate.describe()
    assert set(decisions) == {"max_exact_copy_excess", "max_dcr_share_below_holdout_p5"}
    # A table with few distinct rows: real rows repeat training rows 94 % of the time.
    assert privacy_gates(copies(0.95, 0.94))["max_exact_copy_excess"].passed
    # A generator that copies more than real data does is refused.
    memorised = privacy_gates(copies(0.40, 0.185))["max_exact_copy_excess"]
    assert not memorised.passed and memorised.margin == pytest.approx(-0.165)


def test_synthetic_rows_closer_than_real_ones_fail_the_distance_gate() -> None:
    assert privacy_gates(copies(0.0, 0.0, dcr_share=0.06))["max_dcr_share_below_holdout_p5"].passed
    close = privacy_gates(copies(0.0, 0.0, dcr_share=0.3))["max_dcr_share_below_holdout_p5"]
    assert not close.passed and close.metric == "privacy.dcr.synthetic_share_below_holdout_p5"


def test_the_absolute_ceiling_still_works_when_set() -> None:
    decisions = privacy_gates(copies(0.098, 0.185), max_exact_copy_rate=0.05)
    assert not decisions["max_exact_copy_rate"].passed
    assert decisions["max_exact_copy_excess"].passed


def test_the_manifest_record_of_a_gate_says_what_it_compares_with() -> None:
    record = privacy_gates(copies(0.098, 0.185))["max_exact_copy_excess"].as_dict()
    assert record["key"] == "gates.max_exact_copy_excess"
    assert record["baseline_metric"] == "privacy.holdout_exact_copy_rate"
    assert record["baseline"] == 0.185 and record["allowance"] == 0.05
    assert "real held-out rows" in str(record["meaning"])


def test_a_missed_gate_shows_the_setting_that_changes_it() -> None:
    """The key, and the one line of YAML or the option that moves it."""
    metrics = {"tstr.gradient_boosting.auroc_ratio_to_trtr": 0.7345, **copies(0.30, 0.185)}
    failed = [d for d in evaluate_gates(metrics, GateConfig(), ["sex"]) if not d.passed]
    assert [d.key for d in failed] == ["gates.min_utility_ratio", "gates.max_exact_copy_excess"]
    hint = gate_miss_hint(failed)
    assert "`gates: {min_utility_ratio: 0.73, max_exact_copy_excess: 0.12}`" in hint
    assert "--set gates.min_utility_ratio=0.73 --set gates.max_exact_copy_excess=0.12" in hint
    nan_gate = evaluate_gates({}, GateConfig(min_utility_ratio=0.8), ["sex"])[0]
    assert "min_utility_ratio: null" in gate_miss_hint([nan_gate])
