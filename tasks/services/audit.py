"""The check an auditor runs on a published folder, trusting nobody.

``verify`` re-hashes every published file, compares it with the manifest, and compares
the manifest with what the MLflow record of the run says (for a folder of conditional
rows, see ``conditional_audit``). Its companion ``reproduce``
reruns the whole flow, so it is composed in ``flows/reproduce.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pyarrow.parquet as pq

from fairdistill.tasks.services.tracking import REUSED_FROM_TAG
from fairdistill.tasks.services.verification import (
    Verification,
    VerificationError,
    check_recorded_sha,
    differing_metrics,
    file_digest,
)

MANIFEST_VERSION = 1


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise VerificationError(
            "The manifest does not exist",
            file=str(path),
            rule="manifest-exists",
            hint="pass the manifest.json of a published run folder",
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerificationError(
            f"The manifest is not valid JSON ({error})",
            file=str(path),
            rule="manifest-json",
            hint="the manifest was changed or truncated since it was published",
        ) from error
    if manifest.get("fairdistill_manifest") != MANIFEST_VERSION:
        raise VerificationError(
            "This file is not a fairdistill manifest (version field missing or unknown)",
            file=str(path),
            rule="manifest-version",
            hint="pass the manifest.json of a run",
        )
    return manifest


def _check_files(manifest: dict[str, Any], folder: Path, result: Verification) -> None:
    output = manifest["output"]
    data = folder / output["file"]
    if not data.is_file():
        result.mismatch(f"{data}: the published data file is missing")
        return
    actual = file_digest(data)
    if actual != output["sha256"]:
        result.mismatch(
            f"{data}: sha256 {actual} differs from the manifest's {output['sha256']} "
            "(the data changed after publication)"
        )
    else:
        result.passed(f"{output['file']} sha256 matches the manifest")
        rows = pq.ParquetFile(data).metadata.num_rows
        if rows != output["rows"]:
            result.mismatch(f"{data}: {rows} rows, the manifest says {output['rows']}")
        else:
            result.passed(f"{output['file']} has the manifest's {rows:,} rows")
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            result.mismatch(f"{path}: listed in the manifest but missing")
        elif (actual := file_digest(path)) != expected:
            result.mismatch(f"{path}: sha256 {actual} differs from the manifest's {expected}")
        else:
            result.passed(f"{name} sha256 matches the manifest")


def _stage_run(client: mlflow.MlflowClient, manifest: dict[str, Any], stage: str) -> Any:
    run_id = manifest["mlflow"]["run_id"]
    runs = client.search_runs(
        [manifest["mlflow"]["experiment_id"]],
        filter_string=(
            f"tags.mlflow.parentRunId = '{run_id}' and tags.`fairdistill.stage` = '{stage}'"
        ),
    )
    return runs[0] if runs else None


def _check_tracking(manifest: dict[str, Any], tracking_uri: str, result: Verification) -> None:
    client = mlflow.MlflowClient(tracking_uri)
    run_id = manifest["mlflow"]["run_id"]
    try:
        parent = client.get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        result.mismatch(f"MLflow at {tracking_uri} has no run {run_id} ({error.message[:200]})")
        return
    result.check_finished(parent, "MLflow run")
    publish = _stage_run(client, manifest, "publish")
    check_recorded_sha(
        publish.data.tags.get("output.sha256") if publish else None, manifest, result
    )
    evaluate = _stage_run(client, manifest, "evaluate")
    differing = differing_metrics(evaluate.data.metrics if evaluate else {}, manifest["metrics"])
    if differing:
        result.mismatch(
            f"{len(differing)} metrics differ from the MLflow record: {', '.join(differing[:5])}"
        )
    else:
        result.passed(f"all {len(manifest['metrics'])} metrics match the MLflow record")
    _check_stage_sources(client, manifest, result)


def _check_stage_sources(
    client: mlflow.MlflowClient, manifest: dict[str, Any], result: Verification
) -> None:
    """Each stage was computed by the MLflow run the manifest names, and that run FINISHED.

    A stage reused from an earlier flow run is recorded in this run by a child run that
    names the stage run that computed it and holds copies of its metrics: the copies must
    match the originals.
    """
    for stage, source_id in manifest["mlflow"].get("stage_runs", {}).items():
        child = _stage_run(client, manifest, stage)
        if child is None:
            result.mismatch(f"MLflow run {manifest['mlflow']['run_id']} has no {stage} stage run")
            continue
        recorded = child.data.tags.get(REUSED_FROM_TAG, child.info.run_id)
        if recorded != source_id:
            result.mismatch(
                f"{stage}: the manifest names stage run {source_id}, MLflow records {recorded}"
            )
            continue
        try:
            source = client.get_run(source_id)
        except mlflow.exceptions.MlflowException:
            result.mismatch(f"{stage}: MLflow has no stage run {source_id}")
            continue
        if source.info.status != "FINISHED":
            result.mismatch(f"{stage}: stage run {source_id} is {source.info.status}")
        elif differing := differing_metrics(source.data.metrics, child.data.metrics):
            result.mismatch(
                f"{stage}: {len(differing)} metrics of the reused record differ from stage run "
                f"{source_id}: {', '.join(differing[:5])}"
            )
        elif recorded != child.info.run_id:
            result.passed(f"{stage} was reused from stage run {source_id}, whose record matches")
        else:
            result.passed(f"{stage} was computed by stage run {source_id}")


def verify(manifest_path: str | Path, *, tracking_uri: str | None = None) -> Verification:
    """Check a published run folder, or one ``fairdistill generate`` published, against its
    manifest and its MLflow record."""
    # Imported here: the conditional checks build on this module's.
    from fairdistill.tasks.services.conditional_audit import (
        CONDITIONAL_KIND,
        check_conditional_tracking,
    )

    path = Path(manifest_path).resolve()
    manifest = load_manifest(path)
    result = Verification(manifest=path)
    _check_files(manifest, path.parent, result)
    uri = tracking_uri or manifest["mlflow"]["tracking_uri"]
    if manifest.get("kind") == CONDITIONAL_KIND:
        check_conditional_tracking(manifest, uri, result)
    else:
        _check_tracking(manifest, uri, result)
    return result
