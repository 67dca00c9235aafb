"""publish: check the gates, then write the dataset and its manifest atomically.

The run folder is assembled under a hidden temporary name in the output root and renamed
into place in one step, so a reader (or a crash at any moment) sees either the whole
published run or nothing. The ``latest`` pointer is a symlink swapped with an atomic
rename, so it never dangles.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
from fairdistill.models.errors import OutputError, QualityGateError
from fairdistill.models.gates import GateDecision, evaluate_gates
from fairdistill.tasks.evaluate import EvaluationOutcome
from fairdistill.tasks.generate import SyntheticData
from fairdistill.tasks.prepare import PreparedData, read_spec
from fairdistill.tasks.provenance import code_version, package_versions
from fairdistill.tasks.report import render_gate_markdown
from fairdistill.tasks.storage import read_bytes, sha256_bytes
from fairdistill.tasks.tracking import StageContext, log_metrics, stage_run
from fairdistill.tasks.train_teacher import TrainedModel
from fairdistill.tasks.validate import ValidatedInput

DATA_FILE = "synthetic.parquet"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.md"
LATEST_LINK = "latest"


class PublishedDataset(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: str
    data: str
    manifest: str
    report: str
    sha256: str
    rows: int


def check_output_location(output_root: str, run_name: str, *, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be clobbered."""
    root = Path(output_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise OutputError(
            f"The output folder cannot be written ({error.strerror or error})",
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


def _switch_latest(root: Path, run_name: str) -> None:
    temporary = root / f".{LATEST_LINK}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_name, target_is_directory=True)
    os.replace(temporary, root / LATEST_LINK)


def _json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"


def write_run_folder(
    root: Path, run_name: str, files: dict[str, bytes], *, overwrite: bool
) -> Path:
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{run_name}.partial-"))
    try:
        for name, content in files.items():
            with open(staging / name, "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
        final = root / run_name
        if final.exists() and overwrite:
            retired = root / f".{run_name}.replaced-{os.getpid()}"
            os.replace(final, retired)
            os.replace(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _switch_latest(root, run_name)
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
        "split": {"train_rows": prepared.train_rows, "test_rows": prepared.test_rows},
        "mlflow": {
            "tracking_uri": context.tracking_uri,
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
        report = (
            f"# fairdistill run {run_name}\n\n{render_gate_markdown(decisions)}\n"
            + read_bytes(evaluation.report).decode("utf-8")
        ).encode("utf-8")
        mlflow.log_text(report.decode("utf-8"), REPORT_FILE)
        create_markdown_artifact(report.decode("utf-8"), key="run-report", description=run_name)
        if failed:
            raise QualityGateError(
                "Not published: " + "; ".join(decision.describe() for decision in failed),
                rule="quality-gates",
                hint="inspect the report, then adjust the fairness weight, the training "
                "length or the gate thresholds in the config",
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
        manifest_text = _json_text(manifest).encode("utf-8")
        root = Path(output_root).resolve()
        folder = write_run_folder(
            root,
            run_name,
            {DATA_FILE: data, REPORT_FILE: report, MANIFEST_FILE: manifest_text},
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
            sha256=output["sha256"],
            rows=synthetic.rows,
        )
