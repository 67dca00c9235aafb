"""The summary printed at the end of a run: real vs synthetic, and each stage's time."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from fairdistill.flows.regenerate import RunSummary, StageTiming
from fairdistill.flows.run_summary import headline_rows, measure_label, print_run_summary
from fairdistill.tasks.publish import PublishedDataset
from fairdistill.tasks.services.registry import RegisteredVersion

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


def summary_of(stages: list[StageTiming], registry: RegisteredVersion | None) -> RunSummary:
    published = PublishedDataset(
        folder="/out/run",
        data="/out/run/synthetic.parquet",
        manifest="/out/run/manifest.json",
        report="/out/run/report.md",
        report_html="/out/run/report.html",
        sha256="0" * 64,
        rows=100,
        registry=registry,
    )
    return RunSummary(
        run_name="run",
        flow_run_id=None,
        mlflow_run_id="abc",
        tracking_uri="sqlite:///x.db",
        published=published,
        headline=HEADLINE,
        stages=stages,
    )


def test_a_resumed_stage_says_from_which_epoch_and_a_reused_version_says_so() -> None:
    summary = summary_of(
        [
            StageTiming(stage="prepare", seconds=0.2, reused=True),
            StageTiming(stage="train_teacher", seconds=3.0, reused=False, resumed_from_epoch=5),
            StageTiming(stage="distill_student", seconds=1.0, reused=False),
        ],
        RegisteredVersion(model="fairdistill-adult", version=3, alias="candidate", reused=True),
    )
    stream = io.StringIO()
    print_run_summary(summary, "sqlite:///x.db", Console(file=stream, width=140))
    rows = {line.split()[1]: line for line in stream.getvalue().splitlines() if "│" in line}
    assert "resumed from epoch 5" in rows["train_teacher"]
    assert "reused" in rows["prepare"] and "resumed" not in rows["distill_student"]
    assert (
        "registered     : fairdistill-adult version 3 (alias candidate, reused: the generator "
        "is unchanged)" in stream.getvalue()
    )
    stages = json.loads(summary.model_dump_json())["stages"]
    assert [stage["resumed_from_epoch"] for stage in stages] == [None, 5, None]


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
