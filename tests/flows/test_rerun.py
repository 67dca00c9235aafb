"""An unchanged rerun, as a weekly schedule makes: every stage reused, and still a folder
that verifies, a record that backs it, and no second registered version."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from fairdistill.flows.regenerate import RunSummary, regenerate_fair_dataset
from fairdistill.tasks.services.audit import verify
from fairdistill.tasks.services.tracking import REUSED_FROM_TAG

pytestmark = pytest.mark.slow

COMPUTED_STAGES = ["validate", "prepare", "train_teacher", "distill_student", "generate"]
COMPUTED_STAGES += ["evaluate"]


def versions_of(finished_run) -> list[int]:
    first, _ = finished_run
    model = first.published.registry.model
    return [int(v.version) for v in mlflow.MlflowClient().search_model_versions(f"name='{model}'")]


@pytest.fixture(scope="module")
def versions_before_the_rerun(finished_run) -> list[int]:
    return versions_of(finished_run)


@pytest.fixture(scope="module")
def rerun(finished_run, finished_run_config, versions_before_the_rerun) -> RunSummary:
    return regenerate_fair_dataset(finished_run_config)


def manifest_of(summary: RunSummary) -> dict:
    return json.loads(Path(summary.published.manifest).read_text())


def test_an_unchanged_rerun_reuses_every_stage_but_publish(rerun: RunSummary) -> None:
    assert [timing.stage for timing in rerun.stages if timing.reused] == COMPUTED_STAGES
    assert manifest_of(rerun)["mlflow"]["reused_stages"] == COMPUTED_STAGES


def test_both_published_folders_verify(finished_run, rerun: RunSummary) -> None:
    first, _ = finished_run
    assert rerun.published.folder != first.published.folder
    for summary in (first, rerun):
        result = verify(summary.published.manifest)
        assert result.ok, result.mismatches
    checks = verify(rerun.published.manifest).checks
    assert any("evaluate was reused from stage run" in check for check in checks)


def test_the_manifest_names_the_stage_runs_that_computed_the_data(
    finished_run, rerun: RunSummary
) -> None:
    first, _ = finished_run
    computed = manifest_of(first)["mlflow"]["stage_runs"]
    assert sorted(computed) == sorted(COMPUTED_STAGES)
    assert manifest_of(rerun)["mlflow"]["stage_runs"] == computed
    assert manifest_of(rerun)["metrics"] == manifest_of(first)["metrics"]


def test_the_rerun_record_holds_each_reused_stage_and_its_metrics(
    finished_run, rerun: RunSummary
) -> None:
    first, _ = finished_run
    client = mlflow.MlflowClient()
    children = {
        run.data.tags["fairdistill.stage"]: run
        for run in client.search_runs(
            [manifest_of(rerun)["mlflow"]["experiment_id"]],
            filter_string=f"tags.mlflow.parentRunId = '{rerun.mlflow_run_id}'",
        )
    }
    computed = manifest_of(first)["mlflow"]["stage_runs"]
    assert sorted(children) == sorted([*COMPUTED_STAGES, "publish"])
    for stage in COMPUTED_STAGES:
        record = children[stage]
        assert record.info.status == "FINISHED"
        assert record.data.tags[REUSED_FROM_TAG] == computed[stage]
        assert record.data.metrics == client.get_run(computed[stage]).data.metrics
    assert REUSED_FROM_TAG not in children["publish"].data.tags


def test_the_rerun_registers_no_second_version(
    finished_run, rerun: RunSummary, versions_before_the_rerun: list[int]
) -> None:
    first, _ = finished_run
    assert first.published.registry is not None and not first.published.registry.reused
    registry = rerun.published.registry
    assert registry is not None and registry.reused
    assert registry.version == first.published.registry.version
    assert manifest_of(rerun)["registry"] == registry.model_dump()
    # Other runs of the session may register versions of this model; the rerun adds none.
    assert versions_of(finished_run) == versions_before_the_rerun
