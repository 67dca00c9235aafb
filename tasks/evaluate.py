"""evaluate: measure the synthetic data against the held-out real test set."""

from __future__ import annotations

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.evaluation.image import evaluate_images
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.generate import SyntheticData
from fairdistill.tasks.policy import TRANSIENT_RETRIES
from fairdistill.tasks.prepare import PreparedData, read_spec
from fairdistill.tasks.report import headline_metrics, render_evaluation_markdown
from fairdistill.tasks.storage import Ref, read_parquet, write_json, write_text
from fairdistill.tasks.tracking import StageContext, log_metrics, stage_run


class EvaluationOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: dict[str, float]
    headline: dict[str, float]
    results: Ref
    report: Ref


@task(name="evaluate", **STAGE_CACHE, **TRANSIENT_RETRIES)
def evaluate(
    config: RunConfig, context: StageContext, prepared: PreparedData, synthetic: SyntheticData
) -> EvaluationOutcome:
    with stage_run(context, "evaluate"):
        spec = read_spec(prepared.spec)
        frames = (
            read_parquet(prepared.train),
            read_parquet(prepared.test),
            read_parquet(synthetic.table),
        )
        if spec.modality == "image":
            # Image classifiers of their own: the tabular families do not apply to pixels.
            result = evaluate_images(
                *frames, spec, seed=config.seed, max_rows=config.evaluate.max_rows
            )
        else:
            result = evaluate_synthetic(
                *frames,
                spec,
                seed=config.seed,
                families=config.evaluate.families,
                max_rows=config.evaluate.max_rows,
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
        )
