"""The distill_student stage: a much smaller encoder, stored and logged with its probe."""

from __future__ import annotations

import mlflow
import pytest

from fairdistill.tasks.services.model_store import load_module

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_the_student_is_smaller_stored_and_recorded(
    stage_config, trained_teacher, trained_student, stage_child_run
) -> None:
    student = load_module(trained_student.weights)
    assert trained_student.parameters < trained_teacher.encoder_parameters
    assert sum(p.numel() for p in student.parameters()) == trained_student.parameters
    run = stage_child_run("distill_student")
    assert run.info.status == "FINISHED"
    ratio = trained_student.parameters / trained_teacher.encoder_parameters
    assert run.data.metrics["size_ratio"] == ratio
    assert "probe_auroc.sex" in run.data.metrics
    assert 1 <= run.data.metrics["distillation_attempts"] <= stage_config.student.attempts
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert len(history) == stage_config.student.epochs
