"""The summary printed at the end of a run: real vs synthetic, and each stage's time."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fairdistill.flows.run_summary import headline_rows, measure_label, print_run_summary

HEADLINE = {
    "trtr.gradient_boosting.auroc": 0.93,
    "tstr.gradient_boosting.auroc": 0.85,
    "trtr.gradient_boosting.sex.demographic_parity_ratio": 0.3,
    "tstr.gradient_boosting.sex.demographic_parity_ratio": 0.88,
    "tstr.gradient_boosting.sex.equalized_odds_ratio": 0.6,
    "fidelity.coverage": 0.87,
}


def test_each_synthetic_figure_sits_beside_its_real_twin() -> None:
    assert headline_rows(HEADLINE) == [
        ("AUROC (gradient boosting)", "0.930", "0.850"),
        ("demographic parity ratio (gradient boosting, sex)", "0.300", "0.880"),
        ("equalized odds ratio (gradient boosting, sex)", "–", "0.600"),
        ("coverage", "–", "0.870"),
    ]


def test_unknown_measures_still_read_as_words() -> None:
    assert measure_label("privacy.dcr_ratio_median") == "dcr ratio median"


@pytest.mark.slow
def test_a_finished_run_prints_stages_in_order_with_times(finished_run) -> None:
    summary, _ = finished_run
    assert [timing.stage for timing in summary.stages] == [
        "validate",
        "prepare",
        "train_teacher",
        "distill_student",
        "generate",
        "evaluate",
        "publish",
    ]
    assert all(timing.seconds > 0 for timing in summary.stages)
    stream = io.StringIO()
    print_run_summary(summary, "sqlite:///x.db", Console(file=stream, width=140))
    text = stream.getvalue()
    assert f"published {summary.published.rows:,} synthetic rows" in text
    assert "distill_student" in text and "total" in text
    assert "AUROC" in text and summary.published.report_html in text
