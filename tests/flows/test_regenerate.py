"""The whole flow on a small Adult sample: real Prefect engine, real MLflow SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import polars as pl
import pytest

from fairdistill.flows.settings import load_settings
from fairdistill.models.config import RunConfig
from fairdistill.models.errors import QualityGateError
from fairdistill.tasks.services.storage import sha256_bytes

STAGES = {
    "validate",
    "prepare",
    "train_teacher",
    "distill_student",
    "generate",
    "evaluate",
    "publish",
}

pytestmark = pytest.mark.slow


def child_runs(parent_run_id: str) -> dict[str, mlflow.entities.Run]:
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        output_format="list",
    )
    return {run.data.tags["fairdistill.stage"]: run for run in runs}


def test_every_stage_is_a_finished_child_run_with_its_metrics(finished_run) -> None:
    summary, _ = finished_run
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    parent = mlflow.get_run(summary.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["prefect.flow_run_id"] == summary.flow_run_id
    assert parent.data.tags["fairdistill.torch_threads"] == str(load_settings().torch_threads)
    children = child_runs(summary.mlflow_run_id)
    assert set(children) == STAGES
    assert all(run.info.status == "FINISHED" for run in children.values())
    teacher = children["train_teacher"]
    client = mlflow.MlflowClient()
    for name in ("loss", "reconstruction", "kl", "dcor"):
        assert len(client.get_metric_history(teacher.info.run_id, name)) == 3, name
    assert "probe_auroc.sex" in teacher.data.metrics
    student = children["distill_student"]
    assert student.data.metrics["size_ratio"] <= 0.25
    evaluation = children["evaluate"].data.metrics
    assert 0.5 < evaluation["trtr.gradient_boosting.auroc"] <= 1.0
    assert "tstr.gradient_boosting.sex.demographic_parity_ratio" in evaluation
    assert "fidelity.alpha_precision" in evaluation


def test_models_are_logged_and_load(finished_run) -> None:
    summary, _ = finished_run
    manifest = json.loads(Path(summary.published.manifest).read_text())
    for name in ("teacher", "student"):
        uri = manifest["mlflow"]["models"][name]
        model = mlflow.pytorch.load_model(uri)
        assert model is not None


def test_published_data_matches_its_manifest(finished_run) -> None:
    summary, output = finished_run
    data = Path(summary.published.data).read_bytes()
    manifest = json.loads(Path(summary.published.manifest).read_text())
    assert manifest["output"]["sha256"] == sha256_bytes(data) == summary.published.sha256
    assert manifest["mlflow"]["run_id"] == summary.mlflow_run_id
    assert manifest["input"]["rows"] == 3000
    frame = pl.read_parquet(summary.published.data)
    assert frame.height == manifest["output"]["rows"] == manifest["split"]["train_rows"]
    assert (output / "latest").resolve() == Path(summary.published.folder)
    assert not [p for p in output.iterdir() if p.name.startswith(".")]


def test_every_task_completed_in_prefect(finished_run) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    summary, _ = finished_run
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(summary.flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    assert flow_run.state.is_completed()
    names = {run.name.rsplit("-", 1)[0]: run for run in task_runs}
    assert set(names) == STAGES
    assert all(run.state.is_completed() for run in names.values())
    assert {"gpu"} <= set(names["train_teacher"].tags)


def test_a_missed_gate_publishes_nothing_and_fails_the_run(
    finished_run, sample_input: dict, tmp_path: Path
) -> None:
    """Runs after ``finished_run`` on the same input and config, so stages are reused."""
    from fairdistill.flows.regenerate import regenerate_fair_dataset

    config = RunConfig.model_validate(
        {
            **sample_input,
            "teacher": {"epochs": 3},
            "student": {"epochs": 3},
            "output": str(tmp_path),
            "run_name": "gated",
            "gates": {"min_demographic_parity_ratio": 1.0},
        }
    )
    with pytest.raises(QualityGateError, match="min_demographic_parity_ratio"):
        regenerate_fair_dataset(config)
    assert list(tmp_path.iterdir()) == []
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.`fairdistill.stage` = 'flow' and attributes.status = 'FAILED'",
        output_format="list",
    )
    failed = [
        run
        for run in runs
        if "min_demographic_parity_ratio" in run.data.tags.get("fairdistill.failure", "")
    ]
    assert len(failed) == 1
    # Same input, config (gates aside) and code as the first run: every stage before
    # publish came from Prefect's cache instead of running again.
    reused = set(failed[0].data.tags["fairdistill.reused_stages"].split(","))
    assert reused == STAGES - {"publish"}


def test_a_new_fairness_weight_reuses_the_validated_input_and_the_split(
    finished_run, sample_input: dict, tmp_path: Path
) -> None:
    """Each stage's cache key covers only the config it reads: β reaches the teacher and the
    stages after it, never validate or prepare."""
    from fairdistill.flows.regenerate import regenerate_fair_dataset

    config = RunConfig.model_validate(
        {
            **sample_input,
            "teacher": {"epochs": 3, "beta": 1.0},
            "student": {"epochs": 3},
            "output": str(tmp_path),
            "run_name": "other-beta",
            "gates": {"min_demographic_parity_ratio": 1.0},
        }
    )
    with pytest.raises(QualityGateError):
        regenerate_fair_dataset(config)
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.`fairdistill.run_name` = 'other-beta'",
        output_format="list",
    )
    assert set(run.data.tags["fairdistill.reused_stages"].split(",")) == {"validate", "prepare"}


def test_the_input_is_logged_as_an_mlflow_dataset_with_schema_and_size(finished_run) -> None:
    summary, _ = finished_run
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    validate = mlflow.get_run(child_runs(summary.mlflow_run_id)["validate"].info.run_id)
    (logged,) = validate.inputs.dataset_inputs
    manifest = json.loads(Path(summary.published.manifest).read_text())
    assert logged.dataset.digest == manifest["input"]["sha256"][:16]
    columns = {
        column["name"]: column for column in json.loads(logged.dataset.schema)["mlflow_colspec"]
    }
    assert columns["age"]["type"] == "long" and columns["sex"]["type"] == "string"
    assert json.loads(logged.dataset.profile)["num_rows"] == 3000
