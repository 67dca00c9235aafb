"""The evaluate stage: metrics against the held-out rows, stored, logged and summarised."""

from __future__ import annotations

import pytest

from fairdistill.tasks.services.storage import read_bytes, read_json

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_the_metrics_are_stored_logged_and_summarised(evaluation, stage_child_run) -> None:
    metrics = evaluation.metrics
    assert 0.0 <= metrics["tstr.gradient_boosting.auroc"] <= 1.0
    assert "tstr.gradient_boosting.sex.demographic_parity_ratio" in metrics
    assert set(evaluation.headline) <= set(metrics)
    assert "tstr.gradient_boosting.auroc" in evaluation.headline
    assert read_json(evaluation.results)["metrics"] == metrics
    assert read_bytes(evaluation.report).decode("utf-8").startswith("# Evaluation of synthetic")
    run = stage_child_run("evaluate")
    assert run.info.status == "FINISHED"
    assert (
        run.data.metrics["tstr.gradient_boosting.auroc"] == metrics["tstr.gradient_boosting.auroc"]
    )
