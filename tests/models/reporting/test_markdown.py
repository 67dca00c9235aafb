"""The run's Markdown: the headline, the evaluation tables, the gate verdict, the model card;
every number shown where it belongs and a missing one shown as n/a."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from fairdistill.models.gates import GateDecision
from fairdistill.models.reporting.data import ReportData
from fairdistill.models.reporting.markdown import (
    headline_markdown,
    headline_metrics,
    render_evaluation_markdown,
    render_gate_markdown,
)
from fairdistill.models.reporting.model_card import render_model_card
from fairdistill.models.spec import DatasetSpec

SPEC = DatasetSpec.model_validate(
    {
        "name": "loans",
        "target": {"column": "approved", "positive": "yes"},
        "sensitive": [{"column": "sex", "privileged": ["male"]}],
    }
)
METRICS = {
    "trtr.gradient_boosting.auroc": 0.91,
    "tstr.gradient_boosting.auroc": 0.87,
    "tsts.gradient_boosting.auroc": 0.89,
    "tstr.gradient_boosting.f1": 0.64,
    "trtr.gradient_boosting.sex.demographic_parity_ratio": 0.3,
    "tstr.gradient_boosting.sex.demographic_parity_ratio": 0.88,
    "tstr.gradient_boosting.sex.equalized_odds_ratio": math.nan,
    "fidelity.alpha_precision": 0.95,
    "fidelity.coverage": 0.9,
    "privacy.exact_copy_rate": 0.0,
    "privacy.dcr.synthetic_share_below_holdout_p5": 0.04,
}


def test_the_headline_holds_the_first_attributes_figures_that_exist() -> None:
    headline = headline_metrics(METRICS, SPEC)
    assert headline["tstr.gradient_boosting.auroc"] == 0.87
    assert headline["tstr.gradient_boosting.sex.demographic_parity_ratio"] == 0.88
    assert "fidelity.beta_recall" not in headline
    assert set(headline) <= set(METRICS)


def test_the_evaluation_report_shows_each_table_and_n_a_for_what_is_missing() -> None:
    text = render_evaluation_markdown(METRICS, {}, SPEC)
    assert text.startswith("# Evaluation of synthetic loans")
    tstr = next(line for line in text.splitlines() if "| tstr (train synthetic" in line)
    assert tstr.endswith("| 0.870 | 0.640 | n/a |")  # AUROC, F1, accuracy
    fairness = [line for line in text.splitlines() if line.startswith("| sex | tstr")]
    assert fairness == ["| sex | tstr | 0.880 | n/a |"]
    assert "| dcr.synthetic_share_below_holdout_p5 | 0.040 |" in text


def test_the_verdict_names_a_failed_gate_and_by_how_much() -> None:
    decisions = [
        GateDecision("min_utility_ratio", "auroc_ratio", ">=", 0.8, 0.95, True),
        GateDecision("max_exact_copy_rate", "privacy.exact_copy_rate", "<=", 0.05, 0.08, False),
    ]
    text = render_gate_markdown(decisions)
    assert "quality gates FAILED" in text
    assert (
        "| max_exact_copy_rate | privacy.exact_copy_rate | <= 0.0500 | 0.0800 | FAIL (by 0.0300) |"
        in text
    )
    assert "PASSED" in render_gate_markdown(decisions[:1])
    assert "No quality gate" in render_gate_markdown([])


def test_a_gate_relative_to_real_data_shows_the_holdouts_score_and_what_it_checks() -> None:
    """The report says the copy gate compares with the real holdout."""
    copies = GateDecision(
        "max_exact_copy_excess",
        "privacy.exact_copy_rate",
        "<=",
        0.235,
        0.098,
        True,
        baseline_metric="privacy.holdout_exact_copy_rate",
        baseline=0.185,
        allowance=0.05,
    )
    text = render_gate_markdown([copies])
    assert (
        "| max_exact_copy_excess | privacy.exact_copy_rate | <= 0.2350 = real holdout 0.1850 + "
        "0.0500 | 0.0980 | pass |" in text
    )
    assert "- max_exact_copy_excess: synthetic rows repeat a real training row hardly more " in text


def test_the_model_card_states_data_criterion_results_and_gates() -> None:
    manifest = {
        "spec": SPEC.model_dump(mode="json", exclude_none=True),
        "config": {"teacher": {"criterion": "demographic_parity", "beta": 5.0}},
        "input": {"path": "loans.csv", "sha256": "ab" * 32, "rows": 1200},
        "split": {"train_rows": 960, "test_rows": 240},
        "metrics": METRICS,
        "models": {"student": {"parameters": 1234, "weights_sha256": "cd" * 32}},
        "gates": [
            {
                "gate": "min_utility_ratio",
                "metric": "auroc_ratio",
                "value": 0.956,
                "comparison": ">=",
                "threshold": 0.8,
                "passed": True,
            },
            {
                "gate": "max_exact_copy_excess",
                "metric": "privacy.exact_copy_rate",
                "value": 0.098,
                "comparison": "<=",
                "threshold": 0.235,
                "passed": True,
                "baseline_metric": "privacy.holdout_exact_copy_rate",
                "baseline": 0.185,
                "allowance": 0.05,
            },
        ],
    }
    card = render_model_card(manifest)
    assert card.startswith("# Model card: fairdistill generator for loans")
    assert "1,200 rows" in card and "960 train / 240 held-out test" in card
    assert "sex (privileged: male)" in card and "β = 5.0" in card
    assert "| demographic parity ratio, sex | 0.300 | 0.880 |" in card
    assert "- student: 1,234 parameters" in card
    assert "min_utility_ratio: auroc_ratio = 0.9560 (needs >= 0.8000) — passed" in card
    assert (
        "max_exact_copy_excess: privacy.exact_copy_rate = 0.0980 (needs <= 0.2350 = real "
        "holdout 0.1850 + 0.0500) — passed" in card
    )


def test_the_markdown_headline_keeps_its_table_intact(report: ReportData) -> None:
    text = headline_markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| Fairness")]
    assert len(rows) == 1
    assert len(re.findall(r"(?<!\\)\|", rows[0])) == 6
    assert "0.610 (real)" in rows[0] and "0.930 (syn)" in rows[0]


def test_a_missing_number_reads_n_a_and_a_line_break_stays_in_its_cell(report: ReportData) -> None:
    broken = replace(report.headlines[2], metric="alpha\nprecision")
    text = headline_markdown(replace(report, headlines=[broken]))
    (row,) = [line for line in text.splitlines() if line.startswith("| Fidelity")]
    assert "| alpha precision |" in row
    assert "n/a (syn)" in row and "1.000 (ideal)" in row
