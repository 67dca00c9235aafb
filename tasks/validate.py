"""validate: read the input, complete its spec and check it with a Great Expectations suite.

A failed suite stops the flow here: nothing downstream runs, and the readable report is
kept both in MLflow and as a Prefect artifact so the person fixing the data sees which
expectation failed, on which column, how often, with examples.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.data import bundled_dataset
from fairdistill.flows.config import RunConfig
from fairdistill.models.spec import complete_spec, load_spec, spec_to_yaml
from fairdistill.models.tables import file_sha256, read_table
from fairdistill.tasks.storage import Ref, write_json, write_parquet, write_text
from fairdistill.tasks.tracking import StageContext, log_metrics, stage_run
from fairdistill.tasks.validation_suite import (
    raise_for_failures,
    report_to_markdown,
    validate_frame,
)


class InputSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_path: str
    spec_path: str
    sha256: str


class ValidatedInput(BaseModel):
    """The validated table (parquet in the run folder) and its completed spec."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: InputSource
    table: Ref
    spec: Ref
    rows: int


def resolve_input(config: RunConfig) -> tuple[Path, Path]:
    if config.data is not None and config.spec is not None:
        return Path(config.data).resolve(), Path(config.spec).resolve()
    bundled = bundled_dataset(str(config.dataset))
    return bundled.data_path, bundled.spec_path


@task(name="validate", cache_policy=NO_CACHE, retries=0)
def validate(config: RunConfig, context: StageContext) -> ValidatedInput:
    logger = get_run_logger()
    data_path, spec_path = resolve_input(config)
    with stage_run(context, "validate"):
        frame = read_table(data_path)
        source = InputSource(
            data_path=str(data_path), spec_path=str(spec_path), sha256=file_sha256(data_path)
        )
        spec = complete_spec(load_spec(spec_path), frame, source=str(data_path))
        mlflow.log_text(spec_to_yaml(spec), "spec.yaml")
        mlflow.set_tags({"input.sha256": source.sha256, "input.path": source.data_path})
        mlflow.log_input(
            mlflow.data.from_pandas(
                frame.to_pandas(), source=str(data_path), name=spec.name, digest=source.sha256[:16]
            ),
            context="input",
        )
        report = validate_frame(frame, spec, source=str(data_path))
        markdown = report_to_markdown(report)
        mlflow.log_dict(report.gx_result, "validation/gx_result.json")
        mlflow.log_dict(report.suite, "validation/gx_suite.json")
        mlflow.log_text(markdown, "validation/report.md")
        create_markdown_artifact(markdown, key="validation-report", description="Input validation")
        log_metrics(
            {"rows": frame.height, "columns": frame.width, "failures": len(report.failures)}
        )
        raise_for_failures(report, str(data_path))
        logger.info("validated %s: %d rows, %d columns", data_path.name, frame.height, frame.width)
        table = write_parquet(context.work_file("input.parquet"), frame)
        spec_ref = write_text(context.work_file("spec.yaml"), spec_to_yaml(spec))
        write_json(context.work_file("validation.json"), report.gx_result)
        return ValidatedInput(source=source, table=table, spec=spec_ref, rows=frame.height)
