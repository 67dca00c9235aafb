"""publish: check the gates, then write the dataset and its manifest atomically.

The run folder is assembled under a hidden temporary name in the output root and renamed
into place in one step, so a reader (or a crash at any moment) sees either the whole
published run or nothing. The ``latest`` pointer is a symlink swapped with an atomic
rename, so it never dangles. A process killed mid-publish can leave only hidden staging
entries behind; the next publish into the same root removes those older than
:data:`STALE_STAGING_SECONDS` and puts back a run folder a killed overwrite had set aside.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.flows.settings import redact_uri
from fairdistill.models.errors import OutputError, QualityGateError
from fairdistill.models.gates import GateDecision, evaluate_gates
from fairdistill.tasks.evaluate import EvaluationOutcome
from fairdistill.tasks.generate import SyntheticData
from fairdistill.tasks.model_card import render_model_card
from fairdistill.tasks.prepare import PreparedData, read_spec
from fairdistill.tasks.provenance import (
    code_version,
    lock_digest,
    package_versions,
    run_started_at,
)
from fairdistill.tasks.report_data import REPORT_HTML_FILE, RunInputs, log_run_report
from fairdistill.tasks.storage import read_bytes, read_json, sha256_bytes
from fairdistill.tasks.tracking import StageContext, log_metrics, stage_run
from fairdistill.tasks.train_teacher import TrainedModel
from fairdistill.tasks.validate import ValidatedInput

DATA_FILE = "synthetic.parquet"
MANIFEST_FILE = "manifest.json"
MODEL_CARD_FILE = "model_card.md"
REPORT_FILE = "report.md"
LATEST_LINK = "latest"
PARTIAL_MARKER = ".partial-"
REPLACED_MARKER = ".replaced-"
# A publish holds its staging folder for seconds; one this old was left by a killed run
# (a younger one may belong to a run publishing right now into the same root).
STALE_STAGING_SECONDS = 3600


class PublishedDataset(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: str
    data: str
    manifest: str
    report: str
    report_html: str
    sha256: str
    rows: int


def check_output_location(output_root: str, run_name: str, *, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be clobbered.

    It creates nothing: a run that fails later leaves the output location as it was.
    """
    root = Path(output_root).resolve()
    existing = _nearest_existing(root)
    if not existing.is_dir():
        raise OutputError(
            f"The output folder cannot be created: {existing} is a file, not a folder",
            file=str(root),
            rule="output-writable",
            hint="choose another folder with --output",
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OutputError(
            f"The output folder cannot be written ({error.strerror or error} in {existing})",
            file=str(root),
            rule="output-writable",
            hint="choose a writable folder with --output, or fix its permissions",
        ) from error
    if (root / run_name).exists() and not overwrite:
        raise OutputError(
            f"A published run named '{run_name}' already exists",
            file=str(root / run_name),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _switch_latest(root: Path, run_name: str) -> None:
    # Unique per call: two runs (or two flows in one process) may publish at once.
    temporary = root / f".{LATEST_LINK}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    temporary.symlink_to(run_name, target_is_directory=True)
    os.replace(temporary, root / LATEST_LINK)


def _is_staging(name: str) -> bool:
    if not name.startswith("."):
        return False
    latest_temporary = name.startswith(f".{LATEST_LINK}.") and name.endswith(".tmp")
    return PARTIAL_MARKER in name or REPLACED_MARKER in name or latest_temporary


def _last_change(entry: Path) -> float:
    """Newest mtime of an entry and, for a folder, of the files in it (a file being
    written changes its own mtime, not its folder's)."""
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [child.lstat().st_mtime for child in entry.iterdir()]
    return max(times)


def remove_stale_staging(
    root: Path, *, older_than: float = STALE_STAGING_SECONDS, now: float | None = None
) -> list[str]:
    """Clear what killed publishes left in ``root``; return the names handled.

    A run folder set aside by an overwrite that was killed before the new folder took its
    place is put back, not deleted: nothing published is ever lost.
    """
    now = time.time() if now is None else now
    handled: list[str] = []
    for entry in sorted(root.iterdir()):
        try:
            if not _is_staging(entry.name) or now - _last_change(entry) < older_than:
                continue
            run_name = entry.name[1:].rsplit(REPLACED_MARKER, 1)[0]
            if REPLACED_MARKER in entry.name and not (root / run_name).exists():
                os.replace(entry, root / run_name)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # gone already (another run cleaned it) or not ours to remove
        handled.append(entry.name)
    return handled


def _write_synced(path: Path, content: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the names in ``folder`` (a rename, a new file) survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_staging(root: Path, run_name: str) -> Path:
    # os.mkdir honours the umask, so the published folder gets the usual permissions
    # (tempfile.mkdtemp would make it readable by its owner only).
    staging = root / f".{run_name}{PARTIAL_MARKER}{secrets.token_hex(6)}"
    os.mkdir(staging)
    return staging


def _move_into_place(staging: Path, final: Path, *, overwrite: bool) -> None:
    if overwrite and final.exists():
        retired = final.parent / f".{final.name}{REPLACED_MARKER}{secrets.token_hex(6)}"
        os.replace(final, retired)
        os.replace(staging, final)
        shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        os.rename(staging, final)
    except OSError as error:
        # Another run published the same name since check_output_location looked.
        raise OutputError(
            f"A published run named '{final.name}' appeared while this run was publishing",
            file=str(final),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        ) from error


def _json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"


def write_run_folder(
    root: Path, run_name: str, files: dict[str, bytes], *, overwrite: bool
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    final = root / run_name
    if final.exists() and not overwrite:
        raise OutputError(
            f"A published run named '{run_name}' already exists",
            file=str(final),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        )
    staging = _make_staging(root, run_name)
    try:
        for name, content in files.items():
            _write_synced(staging / name, content)
        _sync_folder(staging)
        _move_into_place(staging, final, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _switch_latest(root, run_name)
    _sync_folder(root)
    return final


def build_manifest(
    config: RunConfig,
    context: StageContext,
    validated: ValidatedInput,
    prepared: PreparedData,
    models: dict[str, TrainedModel],
    evaluation: EvaluationOutcome,
    decisions: list[GateDecision],
    output: dict[str, Any],
) -> dict[str, Any]:
    spec = read_spec(prepared.spec)
    return {
        "fairdistill_manifest": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "input": {
            "path": validated.source.data_path,
            "sha256": validated.source.sha256,
            "rows": validated.rows,
            "spec_path": validated.source.spec_path,
        },
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "config": config.model_dump(mode="json"),
        "seed": config.seed,
        "code_version": code_version(),
        "packages": package_versions(),
        "environment_lock_sha256": lock_digest(),
        "started_at": run_started_at(context.parent_run_id),
        "validation": {
            "success": True,
            "gx_result_sha256": validated.validation.sha256,
            "gx_result": read_json(validated.validation),
        },
        "split": {"train_rows": prepared.train_rows, "test_rows": prepared.test_rows},
        "mlflow": {
            "tracking_uri": redact_uri(context.tracking_uri),
            "experiment_id": context.experiment_id,
            "run_id": context.parent_run_id,
            "models": {name: model.mlflow_model_uri for name, model in models.items()},
        },
        "prefect": {"flow_run_id": context.flow_run_id},
        "models": {
            name: {"weights_sha256": model.weights.sha256, "parameters": model.parameters}
            for name, model in models.items()
        },
        "metrics": evaluation.metrics,
        "gates": [decision.as_dict() for decision in decisions],
        "output": output,
    }


@task(name="publish", cache_policy=NO_CACHE, retries=0)
def publish(
    config: RunConfig,
    context: StageContext,
    output_root: str,
    run_name: str,
    validated: ValidatedInput,
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
    synthetic: SyntheticData,
    evaluation: EvaluationOutcome,
) -> PublishedDataset:
    logger = get_run_logger()
    with stage_run(context, "publish"):
        spec = read_spec(prepared.spec)
        decisions = evaluate_gates(evaluation.metrics, config.gates, spec.sensitive_columns)
        mlflow.log_dict([decision.as_dict() for decision in decisions], "gates.json")
        log_metrics({f"gate.{d.gate}.{d.metric}.passed": float(d.passed) for d in decisions})
        failed = [decision for decision in decisions if not decision.passed]
        for decision in decisions:
            logger.info(decision.describe())
        run_report = log_run_report(
            RunInputs(
                config,
                context,
                run_name,
                output_root,
                validated,
                prepared,
                teacher,
                student,
                synthetic,
                evaluation,
            ),
            decisions,
        )
        report = run_report.markdown.encode("utf-8")
        mlflow.log_text(report.decode("utf-8"), REPORT_FILE)
        create_markdown_artifact(report.decode("utf-8"), key="run-report", description=run_name)
        if failed:
            raise QualityGateError(
                "Not published: " + "; ".join(decision.describe() for decision in failed),
                rule="quality-gates",
                hint=f"inspect the report ('fairdistill report {context.parent_run_id}' writes "
                "it as HTML), then adjust the fairness weight, the training length or the gate "
                "thresholds in the config",
            )
        data = read_bytes(synthetic.table)
        output = {"file": DATA_FILE, "sha256": sha256_bytes(data), "rows": synthetic.rows}
        manifest = build_manifest(
            config,
            context,
            validated,
            prepared,
            {"teacher": teacher, "student": student},
            evaluation,
            decisions,
            output,
        )
        companions = {
            REPORT_FILE: report,
            REPORT_HTML_FILE: run_report.html.encode("utf-8"),
            MODEL_CARD_FILE: render_model_card(manifest).encode("utf-8"),
        }
        manifest["files"] = {name: sha256_bytes(content) for name, content in companions.items()}
        manifest_text = _json_text(manifest).encode("utf-8")
        root = Path(output_root).resolve()
        folder = write_run_folder(
            root,
            run_name,
            {DATA_FILE: data, **companions, MANIFEST_FILE: manifest_text},
            overwrite=config.overwrite,
        )
        mlflow.log_dict(manifest, MANIFEST_FILE)
        mlflow.set_tags({"output.sha256": output["sha256"], "output.folder": str(folder)})
        logger.info("published %d rows to %s", synthetic.rows, folder)
        return PublishedDataset(
            folder=str(folder),
            data=str(folder / DATA_FILE),
            manifest=str(folder / MANIFEST_FILE),
            report=str(folder / REPORT_FILE),
            report_html=str(folder / REPORT_HTML_FILE),
            sha256=output["sha256"],
            rows=synthetic.rows,
        )
