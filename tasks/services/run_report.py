"""Gather a run's report from its stages' outputs and MLflow runs; render and log it.

The publish stage calls :func:`log_run_report` before it applies the gates, so a run that
fails them still leaves its report in MLflow. The gathered :class:`ReportData` is logged
beside the HTML as JSON, and :func:`rerender_report` draws the report again from it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import polars as pl
from mlflow.exceptions import MlflowException

from fairdistill.models.config import RunConfig
from fairdistill.models.errors import FairdistillError
from fairdistill.models.gates import GateDecision
from fairdistill.models.image_samples import SAMPLE_CAPTIONS
from fairdistill.models.reporting import (
    ReportData,
    build_figures,
    content,
    headline_markdown,
    render_html,
)
from fairdistill.models.reporting.data import (
    GateResult,
    ModelSummary,
    Provenance,
    SampleGrid,
)
from fairdistill.models.reporting.markdown import render_gate_markdown
from fairdistill.models.spec import DatasetSpec
from fairdistill.tasks.services.provenance import code_version
from fairdistill.tasks.services.stage_outputs import (
    EvaluationOutcome,
    PreparedData,
    SyntheticData,
    TrainedModel,
    ValidatedInput,
    read_spec,
)
from fairdistill.tasks.services.storage import read_bytes, read_json, write_text
from fairdistill.tasks.services.tracking import REUSED_FROM_TAG, StageContext
from fairdistill.tasks.services.training_record import (
    HISTORY_ARTIFACT,
    LATENT_ARTIFACT_FOLDER,
    LATENT_ARTIFACT_NAME,
    split_latent_sample,
)
from fairdistill.tasks.services.uris import REDACTED, redact_uri

REPORT_HTML_FILE = "report.html"
REPORT_DATA_ARTIFACT = "report/report_data.json"
FIGURE_FOLDER = "report/figures"
PREFERRED_CLASSIFIER = "gradient_boosting"
MODEL_ROLES = {
    "teacher": "fair VAE: encoder, decoder and label head",
    "student": "distilled encoder",
}


@dataclass(frozen=True)
class RunReport:
    data: ReportData
    markdown: str
    html: str


@dataclass(frozen=True)
class RunInputs:
    """What the publish stage holds about the run, handed over as one value."""

    config: RunConfig
    context: StageContext
    run_name: str
    output_root: str
    validated: ValidatedInput
    prepared: PreparedData
    teacher: TrainedModel
    student: TrainedModel
    synthetic: SyntheticData
    evaluation: EvaluationOutcome


def log_run_report(inputs: RunInputs, decisions: list[GateDecision]) -> RunReport:
    """Gather, render and log the report to the active MLflow run; return both forms.

    Logged: ``report.html``, ``report/report_data.json`` and every figure as a PNG under
    ``report/figures/``.
    """
    data = gather_report_data(inputs, decisions)
    figures = build_figures(data)
    html = render_html(data, figures)
    with tempfile.TemporaryDirectory() as folder:
        for name, png in figures.items():
            (Path(folder) / f"{name}.png").write_bytes(png)
        mlflow.log_artifacts(folder, FIGURE_FOLDER)
    mlflow.log_text(html, REPORT_HTML_FILE)
    mlflow.log_text(data.to_json(), REPORT_DATA_ARTIFACT)
    markdown = (
        f"# fairdistill run {inputs.run_name}\n\n{render_gate_markdown(decisions)}\n"
        f"{headline_markdown(data)}\n" + read_bytes(inputs.evaluation.report).decode("utf-8")
    )
    return RunReport(data=data, markdown=markdown, html=html)


def gather_report_data(inputs: RunInputs, decisions: list[GateDecision]) -> ReportData:
    spec = read_spec(inputs.prepared.spec)
    evaluation = read_json(inputs.evaluation.results)
    metrics, tables = evaluation["metrics"], evaluation["tables"]
    classifier = (
        PREFERRED_CLASSIFIER
        if PREFERRED_CLASSIFIER in tables["utility"]
        else next(iter(tables["utility"]))
    )
    marginals, selection = content.most_different_marginals(tables["fidelity"])
    references = content.holdout_references(metrics)
    models = [
        _model_summary(name, trained)
        for name, trained in (("teacher", inputs.teacher), ("student", inputs.student))
    ]
    return ReportData(
        run_name=inputs.run_name,
        dataset=spec.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        gates=[_gate_result(decision) for decision in decisions],
        headlines=content.headlines(tables, metrics, classifier, spec.target.column),
        fairness_classifier=classifier,
        fairness=content.group_fairness(
            tables, {item.column: list(item.privileged) for item in spec.sensitive}, classifier
        ),
        utility=content.utility_scores(tables),
        fidelity=content.summary(metrics, "fidelity", content.FIDELITY_SUMMARY),
        marginals=marginals,
        marginal_selection=selection,
        association=content.association(tables["fidelity"]),
        privacy=content.summary(metrics, "privacy", content.PRIVACY_SUMMARY),
        distances=content.distance_histogram(tables["privacy"]),
        models=models,
        provenance=_provenance(inputs, spec, decisions, models),
        samples=_sample_grids(_stage_runs(inputs.context).get("generate")),
        fidelity_reference=references["fidelity"],
        privacy_reference=references["privacy"],
    )


def _sample_grids(generate_run_id: str | None) -> list[SampleGrid]:
    """The image grids the generate stage logged (image datasets only)."""
    if generate_run_id is None:
        return []
    client = mlflow.MlflowClient()
    logged = {Path(item.path).stem for item in client.list_artifacts(generate_run_id, "samples")}
    if not logged:
        return []
    with tempfile.TemporaryDirectory() as folder:
        local = Path(client.download_artifacts(generate_run_id, "samples", folder))
        return [
            SampleGrid(
                name=name,
                caption=SAMPLE_CAPTIONS.get(name, name),
                png_base64=base64.b64encode((local / f"{name}.png").read_bytes()).decode("ascii"),
            )
            for name in [*SAMPLE_CAPTIONS, *sorted(logged - SAMPLE_CAPTIONS.keys())]
            if name in logged
        ]


def _gate_result(decision: GateDecision) -> GateResult:
    return GateResult(
        gate=decision.gate,
        metric=decision.metric,
        comparison=decision.comparison,
        threshold=decision.threshold,
        value=decision.value,
        passed=decision.passed,
        margin=decision.margin,
        baseline_metric=decision.baseline_metric,
        baseline=decision.baseline,
        allowance=decision.allowance,
    )


def _model_summary(name: str, trained: TrainedModel) -> ModelSummary:
    """Read a model's history, latent sample and probe scores from the run that trained it.

    The run is found through the logged model, so a stage reused from an earlier flow run
    (Prefect's cache) still reports the training it did then.
    """
    model_id = trained.mlflow_model_uri.removeprefix("models:/")
    run_id = mlflow.get_logged_model(model_id).source_run_id
    run = mlflow.get_run(run_id)
    record = mlflow.artifacts.load_dict(f"runs:/{run_id}/{HISTORY_ARTIFACT}")
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"{LATENT_ARTIFACT_FOLDER}/{LATENT_ARTIFACT_NAME}",
            dst_path=folder,
        )
        latents, groups = split_latent_sample(pl.read_parquet(io.BytesIO(Path(path).read_bytes())))
    probe = {
        key.removeprefix("probe_auroc."): value
        for key, value in run.data.metrics.items()
        if key.startswith("probe_auroc.")
    }
    return content.model_summary(
        name=name,
        role=MODEL_ROLES[name],
        parameters=trained.parameters,
        encoder_parameters=trained.encoder_parameters,
        history=record["history"],
        probe_auroc=probe,
        latents=content.project_latents(latents, groups),
        mlflow_run_id=run_id,
    )


def _provenance(
    inputs: RunInputs,
    spec: DatasetSpec,
    decisions: list[GateDecision],
    models: list[ModelSummary],
) -> Provenance:
    context = inputs.context
    parent = mlflow.get_run(context.parent_run_id)
    reused = parent.data.tags.get("fairdistill.reused_stages", "none")
    stage_runs = _stage_runs(context)
    for model in models:
        stage = "train_teacher" if model.name == "teacher" else "distill_student"
        if model.mlflow_run_id:
            stage_runs.setdefault(stage, model.mlflow_run_id)
    published = all(decision.passed for decision in decisions)
    return Provenance(
        input_path=inputs.validated.source.data_path,
        input_sha256=inputs.validated.source.sha256,
        input_rows=inputs.validated.rows,
        train_rows=inputs.prepared.train_rows,
        test_rows=inputs.prepared.test_rows,
        output_sha256=inputs.synthetic.table.sha256,
        output_rows=inputs.synthetic.rows,
        published_folder=str(Path(inputs.output_root).resolve() / inputs.run_name)
        if published
        else None,
        spec=spec.model_dump(mode="json", exclude_none=True),
        config=inputs.config.model_dump(mode="json"),
        code_version=code_version(),
        tracking_uri=redact_uri(context.tracking_uri),
        experiment_id=context.experiment_id,
        mlflow_run_id=context.parent_run_id,
        stage_runs=stage_runs,
        reused_stages=[] if reused == "none" else reused.split(","),
        flow_run_id=context.flow_run_id,
    )


def _stage_runs(context: StageContext) -> dict[str, str]:
    """The MLflow run that computed each stage: an earlier flow run's for a reused stage."""
    runs = mlflow.search_runs(
        experiment_ids=[context.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{context.parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    return {
        run.data.tags.get("fairdistill.stage", run.info.run_name): run.data.tags.get(
            REUSED_FROM_TAG, run.info.run_id
        )
        for run in runs
    }


def resolve_run(run: str, tracking_uri: str) -> tuple[str, str]:
    """(tracking URI, parent run id) of a run id, or of a published folder or its manifest."""
    path = Path(run)
    if path.is_dir():
        path = path / "manifest.json"
    if path.suffix == ".json" or path.is_file():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            recorded, run_id = manifest["mlflow"]["tracking_uri"], manifest["mlflow"]["run_id"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise FairdistillError(
                f"Cannot read the MLflow run from this manifest ({error})",
                file=str(path),
                rule="report-manifest",
                hint="pass the manifest.json of a published run, or its MLflow run id",
            ) from error
        # A manifest keeps no credentials: a store that needs them is reached through the
        # caller's own tracking URI.
        return (tracking_uri if REDACTED in recorded else recorded), run_id
    return tracking_uri, run


def load_report_data(run_id: str, tracking_uri: str) -> ReportData:
    """The report data logged by a run's publish stage (or by ``run_id`` itself)."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.get_run(run_id)
    except MlflowException as error:
        raise FairdistillError(
            f"No MLflow run '{run_id}' in {tracking_uri}",
            rule="report-run-exists",
            hint="pass the MLflow run id printed at the end of 'fairdistill run', or the "
            "manifest.json of a published run; set FAIRDISTILL_HOME or MLFLOW_TRACKING_URI "
            "to the store that run used",
        ) from error
    for candidate in [run_id, *_publish_runs(run_id)]:
        try:
            text = mlflow.artifacts.load_text(f"runs:/{candidate}/{REPORT_DATA_ARTIFACT}")
        except (MlflowException, OSError):
            continue
        try:
            return ReportData.from_json(text)
        except ValueError as error:
            raise FairdistillError(
                f"The report data of run '{candidate}' cannot be read: {error}",
                rule="report-data-schema",
                hint="render it with the fairdistill version that ran it",
            ) from error
    raise FairdistillError(
        f"MLflow run '{run_id}' has no report",
        rule="report-exists",
        hint="the run stopped before its publish stage; see its failure reason in MLflow",
    )


def _publish_runs(run_id: str) -> list[str]:
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.`fairdistill.stage` = "
        "'publish'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return [run.info.run_id for run in runs]


def rerender_report(run: str, output: Path | None, tracking_uri: str) -> Path:
    """Draw a run's HTML report again from MLflow and write it to ``output``.

    ``output`` defaults to ``<run name>-report.html`` in the current folder.
    """
    uri, run_id = resolve_run(run, tracking_uri)
    data = load_report_data(run_id, uri)
    target = output or Path.cwd() / f"{_file_safe(data.run_name)}-report.html"
    write_text(str(target), render_html(data))
    return target


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"
