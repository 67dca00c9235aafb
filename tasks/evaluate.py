"""evaluate: measure the synthetic data against the held-out real test set."""

from __future__ import annotations

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact

from fairdistill.models.config import EvaluateConfig
from fairdistill.models.constraints import repair_metric
from fairdistill.models.reporting.markdown import (
    headline_metrics,
    render_evaluation_markdown,
)
from fairdistill.models.stages import evaluate_rows
from fairdistill.tasks.services.caching import STAGE_CACHE
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES
from fairdistill.tasks.services.stage_outputs import (
    EvaluationOutcome,
    PreparedData,
    SyntheticData,
    read_spec,
)
from fairdistill.tasks.services.storage import read_parquet, write_json, write_text
from fairdistill.tasks.services.tracking import StageContext, log_metrics, stage_run


@task(name="evaluate", **STAGE_CACHE, **TRANSIENT_RETRIES)
def evaluate(
    settings: EvaluateConfig,
    seed: int,
    context: StageContext,
    prepared: PreparedData,
    synthetic: SyntheticData,
) -> EvaluationOutcome:
    with stage_run(context, "evaluate") as run:
        spec = read_spec(prepared.spec)
        result = evaluate_rows(
            read_parquet(prepared.train),
            read_parquet(prepared.test),
            read_parquet(synthetic.table),
            spec,
            settings,
            seed=seed,
        )
        # The generate stage's repairs, beside the evaluation, for the report's table.
        result.metrics.update(
            {
                repair_metric(name): count / max(synthetic.rows, 1)
                for name, count in synthetic.repaired.items()
            }
        )
        log_metrics(result.metrics)
        payload = {"metrics": result.metrics, "tables": result.tables}
        mlflow.log_dict(payload, "evaluation.json")
        markdown = render_evaluation_markdown(result.metrics, result.tables, spec)
        mlflow.log_text(markdown, "evaluation.md")
        create_markdown_artifact(markdown, key="evaluation-report", description="Evaluation")
        return EvaluationOutcome(
            metrics=result.metrics,
            headline=headline_metrics(result.metrics, spec),
            results=write_json(context.work_file("evaluation.json"), payload),
            report=write_text(context.work_file("evaluation.md"), markdown),
            stage_run_id=run.info.run_id,
        )
