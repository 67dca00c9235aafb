"""The train_teacher stage: a stored, logged teacher with its epochs and latent probe."""

from __future__ import annotations

import mlflow
import pytest

from fairdistill.models.teacher import FairVAE
from fairdistill.tasks.services.stage_outputs import load_teacher

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_the_teacher_is_stored_logged_and_its_training_recorded(
    stage_config, trained_teacher, stage_child_run
) -> None:
    model = load_teacher(trained_teacher)
    assert isinstance(model, FairVAE)
    assert trained_teacher.encoder_parameters < trained_teacher.parameters
    run = stage_child_run("train_teacher")
    assert run.info.status == "FINISHED"
    assert run.data.params["teacher.beta"] == str(stage_config.teacher.beta)
    assert run.data.params["device"] == "cpu"
    assert 0.0 <= run.data.metrics["probe_auroc.sex"] <= 1.0
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert len(history) == stage_config.teacher.epochs
    assert trained_teacher.mlflow_model_uri.startswith("models:/")
