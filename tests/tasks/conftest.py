"""Fixtures shared by the task tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fsspec
import pytest


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A folder of its own on fsspec's in-process memory filesystem, removed afterwards."""
    root = f"memory://task-test-{uuid.uuid4().hex}"
    yield root
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(root):
        filesystem.rm(root, recursive=True)


# ------------------------------------------------------------ one stage chain, real engines
#
# Each stage task is called as Prefect calls it (a real task run on the test session's
# temporary Prefect server) inside a real MLflow SQLite store, on a small German credit
# table, with a work folder on fsspec's memory filesystem. Stages are never served from a
# cache here (reuse_stages off): every fixture runs its stage.

TINY_TEACHER = {"epochs": 2, "hidden": (32, 32), "latent_dim": 4, "batch_size": 64}
TINY_STUDENT = {"epochs": 2, "hidden": (8,)}


@pytest.fixture(scope="session")
def stage_config():
    from fairdistill.models.config import RunConfig

    return RunConfig.model_validate(
        {
            "dataset": "german",
            "teacher": TINY_TEACHER,
            "student": TINY_STUDENT,
            "generate": {"rows": 300, "prior_components": 3},
            "evaluate": {"max_rows": 200},
            "reuse_stages": False,
        }
    )


@pytest.fixture(scope="session")
def stage_context(stage_config, tmp_path_factory: pytest.TempPathFactory):
    import mlflow

    from fairdistill.flows.settings import load_settings
    from fairdistill.tasks.services.tracking import StageContext, ensure_experiment

    settings = load_settings()
    experiment = ensure_experiment(settings.tracking_uri, "stage-tasks", settings.mlflow_artifacts)
    parent = mlflow.MlflowClient(settings.tracking_uri).create_run(experiment, run_name="chain")
    root = f"memory://stage-tasks-{uuid.uuid4().hex}"
    yield StageContext(
        tracking_uri=settings.tracking_uri,
        experiment_id=experiment,
        parent_run_id=parent.info.run_id,
        work_uri=f"{root}/work",
        checkpoint_root=str(tmp_path_factory.mktemp("checkpoints")),
        reuse_stages=stage_config.reuse_stages,
    )
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(root):
        filesystem.rm(root, recursive=True)


@pytest.fixture(scope="session")
def validated(stage_config, stage_context):
    from fairdistill.tasks.validate import input_fingerprint, validate

    source = stage_config.input_files
    return validate(source, stage_config.rows_to_sample, stage_context, input_fingerprint(source))


@pytest.fixture(scope="session")
def prepared(stage_config, stage_context, validated):
    from fairdistill.tasks.prepare import prepare

    return prepare(stage_config.prepare, stage_config.seed, stage_context, validated)


@pytest.fixture(scope="session")
def trained_teacher(stage_config, stage_context, prepared):
    from fairdistill.tasks.train_teacher import train_teacher

    config = stage_config
    return train_teacher(config.teacher, config.seed, "cpu", stage_context, prepared)


@pytest.fixture(scope="session")
def trained_student(stage_config, stage_context, prepared, trained_teacher):
    from fairdistill.tasks.distill_student import distill_student

    config = stage_config
    return distill_student(
        config.student, config.seed, "cpu", stage_context, prepared, trained_teacher
    )


@pytest.fixture(scope="session")
def synthetic(stage_config, stage_context, prepared, trained_teacher, trained_student):
    from fairdistill.tasks.generate import generate

    config = stage_config
    return generate(
        config.generate, config.seed, stage_context, prepared, trained_teacher, trained_student
    )


@pytest.fixture(scope="session")
def evaluation(stage_config, stage_context, prepared, synthetic):
    from fairdistill.tasks.evaluate import evaluate

    config = stage_config
    return evaluate(config.evaluate, config.seed, stage_context, prepared, synthetic)


@pytest.fixture(scope="session")
def stage_child_run(stage_context):
    """Look up the MLflow child run of a stage under the chain's parent run (the latest)."""
    import mlflow

    client = mlflow.MlflowClient(stage_context.tracking_uri)

    def find(stage: str):
        runs = client.search_runs(
            [stage_context.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{stage_context.parent_run_id}' "
            f"and tags.`fairdistill.stage` = '{stage}'",
            order_by=["attributes.start_time DESC"],
        )
        assert runs, f"no {stage} run"
        return runs[0]

    return find
