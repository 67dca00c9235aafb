"""publish: check the gates, then write the dataset and its manifest atomically.

The run folder is written atomically (see :mod:`fairdistill.tasks.services.run_folder`): a reader,
or a crash at any moment, sees either the whole published run or nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.models.config import RunConfig
from fairdistill.models.constraints import breach_metric, broken_in_output, spec_rules
from fairdistill.models.errors import QualityGateError
from fairdistill.models.gates import GateDecision, evaluate_gates, gate_miss_hint
from fairdistill.models.reporting.model_card import render_model_card
from fairdistill.models.spec import DatasetSpec
from fairdistill.tasks.services.provenance import (
    code_version,
    lock_digest,
    package_versions,
    run_started_at,
)
from fairdistill.tasks.services.registry import RegisteredVersion, register_candidate
from fairdistill.tasks.services.run_folder import write_run_folder
from fairdistill.tasks.services.run_report import REPORT_HTML_FILE, RunInputs, log_run_report
from fairdistill.tasks.services.stage_outputs import (
    EvaluationOutcome,
    PreparedData,
    SyntheticData,
    TrainedModel,
    ValidatedInput,
    read_spec,
)
from fairdistill.tasks.services.storage import read_bytes, read_json, sha256_bytes, write_bytes
from fairdistill.tasks.services.tracking import StageContext, log_metrics, stage_run
from fairdistill.tasks.services.uris import redact_uri

DATA_FILE = "synthetic.parquet"
MANIFEST_FILE = "manifest.json"
MODEL_CARD_FILE = "model_card.md"
REPORT_FILE = "report.md"


class PublishedDataset(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: str
    data: str
    manifest: str
    report: str
    report_html: str
    sha256: str
    rows: int
    registry: RegisteredVersion | None = None


def _json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"


def build_manifest(
    config: RunConfig,
    context: StageContext,
    validated: ValidatedInput,
    prepared: PreparedData,
    models: dict[str, TrainedModel],
    evaluation: EvaluationOutcome,
    decisions: list[GateDecision],
    output: dict[str, Any],
    stage_runs: dict[str, str | None],
) -> dict[str, Any]:
    """``stage_runs``: the MLflow run that computed each stage (an earlier flow run's, for a
    stage reused from it)."""
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
            "stage_runs": stage_runs,
            "reused_stages": reused_stages(context),
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


def refuse_broken_constraints(metrics: dict[str, float], spec: DatasetSpec) -> None:
    """Synthetic rows that break a rule of the spec are never published. Repairs make
    every rule hold, so this only fires on a defect; it is no gate a setting can lower."""
    broken = broken_in_output(metrics, spec_rules(spec))
    if broken:
        rule = broken[0]
        count = int(metrics[breach_metric(rule)])
        raise QualityGateError(
            f"Not published: {count} synthetic rows break the spec's constraint '{rule.text}'",
            rule="constraints-hold",
            hint="report this as a defect, with the spec; the rows were repaired on "
            "generation and should obey every constraint",
        )


def reused_stages(context: StageContext) -> list[str]:
    """The stages the flow reused from earlier runs, as it tagged its MLflow run."""
    tags = mlflow.MlflowClient(context.tracking_uri).get_run(context.parent_run_id).data.tags
    reused = tags.get("fairdistill.reused_stages", "none")
    return [] if reused == "none" else reused.split(",")


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
        refuse_broken_constraints(evaluation.metrics, spec)
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
                hint=f"read the report ('fairdistill report {context.parent_run_id}' writes it "
                f"as HTML); {gate_miss_hint(failed)}",
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
            stage_runs={
                "validate": validated.stage_run_id,
                "prepare": prepared.stage_run_id,
                "train_teacher": teacher.stage_run_id,
                "distill_student": student.stage_run_id,
                "generate": synthetic.stage_run_id,
                "evaluate": evaluation.stage_run_id,
            },
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
        registered = None
        if config.register_model:
            registered = register_candidate(
                config, context, run_name, folder, prepared, teacher, student, synthetic, decisions
            )
            manifest["registry"] = registered.model_dump()
            write_bytes(str(folder / MANIFEST_FILE), _json_text(manifest).encode("utf-8"))
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
            registry=registered,
        )
