"""The MLflow and registry half of ``verify`` for a folder ``fairdistill generate`` published.

Such a folder is one MLflow run, not a flow of stage runs: the run itself carries the
output's sha256 (a tag), the request (params) and the evaluation and draw (metrics). Its
rows come from a registered generator version, so the version, the flow run that
published it and that run's manifest must still be what the folder says they were: the
rows are only as traceable as their source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from fairdistill.models.evaluation.conditional import evaluation_metrics
from fairdistill.tasks.services.verification import (
    Verification,
    check_recorded_sha,
    differing_metrics,
    file_digest,
)

CONDITIONAL_KIND = "conditional-generation"
KIND_TAG = "fairdistill.kind"


def check_conditional_tracking(
    manifest: dict[str, Any], tracking_uri: str, result: Verification
) -> None:
    """The conditional run's MLflow record, then its source, against the manifest."""
    client = mlflow.MlflowClient(tracking_uri)
    run_id = manifest["mlflow"]["run_id"]
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        result.mismatch(f"MLflow at {tracking_uri} has no run {run_id} ({error.message[:200]})")
        return
    _check_run(run, manifest, result)
    _check_params(run.data.params, manifest, result)
    _check_metrics(run.data.metrics, manifest, result)
    _check_source(client, manifest["source"], result)


def _check_run(run: Any, manifest: dict[str, Any], result: Verification) -> None:
    run_id = run.info.run_id
    result.check_finished(run, "MLflow run")
    kind = run.data.tags.get(KIND_TAG)
    if kind != CONDITIONAL_KIND:
        result.mismatch(f"MLflow run {run_id} is of kind {kind}, not {CONDITIONAL_KIND}")
    check_recorded_sha(run.data.tags.get("output.sha256"), manifest, result)


def expected_params(manifest: dict[str, Any]) -> dict[str, Any]:
    """The params ``fairdistill generate`` logs, as the manifest states them."""
    request = manifest["request"]
    return {
        "source": manifest["source"]["requested"],
        "source.model_uri": manifest["source"]["model_uri"],
        "conditions": [condition["text"] for condition in manifest["conditions"]],
        "rows": str(request["rows"]),
        "seed": str(request["seed"]),
        "sensitive_mix": request["sensitive_mix"],
    }


def _check_params(params: dict[str, str], manifest: dict[str, Any], result: Verification) -> None:
    expected = expected_params(manifest)
    recorded: dict[str, Any] = dict(params)
    try:
        # Compared as lists: the JSON spelling of the param is not part of the record.
        recorded["conditions"] = json.loads(params.get("conditions", "null"))
    except json.JSONDecodeError:
        recorded["conditions"] = params.get("conditions")
    differing = [key for key, value in expected.items() if recorded.get(key) != value]
    if differing:
        result.mismatch(
            f"{len(differing)} params differ from the MLflow record: {', '.join(differing)}"
        )
    else:
        result.passed(f"the request ({len(expected)} params) matches the MLflow record")


def expected_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """The metrics ``fairdistill generate`` logs: the evaluation's and the draw's."""
    evaluation = evaluation_metrics(manifest["evaluation"])
    metrics = {f"evaluation.{key}": value for key, value in evaluation.items()}
    draw = manifest["draw"]
    return {
        **metrics,
        "draws": float(draw["draws"]),
        "estimated_rate": float(draw["estimated_rate"]),
    }


def _check_metrics(
    recorded: dict[str, float], manifest: dict[str, Any], result: Verification
) -> None:
    expected = expected_metrics(manifest)
    differing = differing_metrics(recorded, expected)
    if differing:
        result.mismatch(
            f"{len(differing)} metrics differ from the MLflow record: {', '.join(differing[:5])}"
        )
    else:
        result.passed(f"all {len(expected)} metrics match the MLflow record")


def _check_source(
    client: mlflow.MlflowClient, source: dict[str, Any], result: Verification
) -> None:
    """The registered version, the flow run that published it and its manifest exist."""
    model, version = source["model"], str(source["version"])
    try:
        client.get_model_version(model, version)
    except MlflowException:
        result.mismatch(f"the registry has no version {version} of {model} (the source)")
    else:
        result.passed(f"the source {source['model_uri']} is registered")
    if source.get("run_id"):
        _check_source_run(client, source["run_id"], result)
    if source.get("manifest"):
        _check_source_manifest(source, result)


def _check_source_run(client: mlflow.MlflowClient, run_id: str, result: Verification) -> None:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        result.mismatch(f"MLflow has no source run {run_id}")
        return
    result.check_finished(run, "the source run")


def _check_source_manifest(source: dict[str, Any], result: Verification) -> None:
    path = Path(source["manifest"])
    if not path.is_file():
        result.mismatch(f"{path}: the source run's manifest is missing")
    elif (actual := file_digest(path)) != source.get("manifest_sha256"):
        result.mismatch(
            f"{path}: sha256 {actual} differs from the recorded {source.get('manifest_sha256')} "
            "(the source run's manifest changed since these rows were drawn)"
        )
    else:
        result.passed("the source run's manifest sha256 matches the record")
