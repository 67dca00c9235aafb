"""Draw rows that meet conditions from a published run's registered generator, evaluate them
on the matching real rows, and publish them as a run folder of their own.

No training happens here: the generator is loaded from the registry (its artifacts checked
against their recorded digests), so the command takes seconds. It is one MLflow run (params:
the source and the conditions; metrics: the evaluation; FAILED with the reason on error),
not a Prefect flow, since there is nothing to schedule, cache or retry stage by stage.

    resolve source ──► load generator ──► draw rows ──► evaluate on the real slice ──► publish
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import mlflow
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from fairdistill.flows.settings import load_settings
from fairdistill.models.conditional import ConditionalSample
from fairdistill.models.conditions import ConditionSet, bind_conditions
from fairdistill.models.config import MAX_GENERATED_ROWS
from fairdistill.models.errors import FairdistillError
from fairdistill.models.evaluation.conditional import (
    evaluate_conditional,
    evaluation_metrics,
    not_evaluated,
)
from fairdistill.models.spec import DatasetSpec
from fairdistill.models.splitting import split_table
from fairdistill.models.tables import read_table
from fairdistill.tasks.services.conditional_audit import CONDITIONAL_KIND
from fairdistill.tasks.services.generator_source import (
    GeneratorSource,
    load_generator,
    resolve_source,
)
from fairdistill.tasks.services.provenance import code_version, package_versions
from fairdistill.tasks.services.run_folder import check_output_location, write_run_folder
from fairdistill.tasks.services.storage import parquet_bytes, sha256_bytes
from fairdistill.tasks.services.tracking import (
    ended_run,
    ensure_experiment,
    log_metrics,
    log_params,
)
from fairdistill.tasks.services.uris import redact_uri

DATA_FILE = "synthetic.parquet"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.md"
KIND = CONDITIONAL_KIND


class GenerateRequest(BaseModel):
    """What to draw, from which generator, and where to publish it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(
        description="A published run's manifest.json or folder, its MLflow run id, "
        "'champion', 'candidate' or 'version N'."
    )
    rows: int = Field(ge=1, le=MAX_GENERATED_ROWS)
    where: tuple[str, ...] = ()
    seed: int = Field(default=0, ge=0)
    sensitive_mix: Literal["real", "balanced"] = "real"
    model: str | None = Field(
        default=None, description="Registered model for an alias or version number."
    )
    output: str | None = None
    run_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    overwrite: bool = False
    experiment: str = "fairdistill"


@dataclass(frozen=True)
class GeneratedRows:
    folder: str
    data: str
    manifest: str
    sha256: str
    rows: int
    run_id: str
    source: str
    evaluation_status: str


def generate_rows(request: GenerateRequest) -> GeneratedRows:
    """Draw, evaluate and publish ``request.rows`` rows meeting ``request.where``."""
    settings = load_settings()
    tracking_uri = settings.tracking_uri
    experiment_id = ensure_experiment(tracking_uri, request.experiment, settings.mlflow_artifacts)
    source = resolve_source(request.source, tracking_uri=tracking_uri, model=request.model)
    output_root = Path(request.output or settings.default_output).resolve()
    run_name = request.run_name or _default_run_name(source)
    check_output_location(str(output_root), run_name, overwrite=request.overwrite)
    with _tracked_run(experiment_id, run_name, request, source) as run:
        generator = load_generator(source, tracking_uri)
        spec = _source_spec(source)
        ignored = tuple(spec.ignored_columns) if spec else ()
        conditions = bind_conditions(request.where, generator.codec, ignored_columns=ignored)
        sample = generator.sample_where(
            request.rows,
            list(request.where),
            seed=request.seed,
            mix=request.sensitive_mix,
            ignored_columns=ignored,
        )
        evaluation = _evaluate(source, spec, sample.frame, conditions, request.seed)
        log_metrics({f"evaluation.{k}": v for k, v in evaluation_metrics(evaluation).items()})
        log_metrics({"draws": sample.draws, "estimated_rate": sample.summary()["estimated_rate"]})
        data = parquet_bytes(sample.frame)
        manifest = build_manifest(request, source, conditions, sample, evaluation, data, run)
        files = {
            DATA_FILE: data,
            REPORT_FILE: render_report(manifest).encode("utf-8"),
        }
        manifest["files"] = {REPORT_FILE: sha256_bytes(files[REPORT_FILE])}
        files[MANIFEST_FILE] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        folder = write_run_folder(output_root, run_name, files, overwrite=request.overwrite)
        mlflow.log_dict(manifest, MANIFEST_FILE)
        mlflow.set_tags(
            {"output.sha256": manifest["output"]["sha256"], "output.folder": str(folder)}
        )
    return GeneratedRows(
        folder=str(folder),
        data=str(folder / DATA_FILE),
        manifest=str(folder / MANIFEST_FILE),
        sha256=manifest["output"]["sha256"],
        rows=sample.frame.height,
        run_id=run.info.run_id,
        source=source.model_uri,
        evaluation_status=evaluation["status"],
    )


@contextmanager
def _tracked_run(
    experiment_id: str, run_name: str, request: GenerateRequest, source: GeneratorSource
) -> Iterator[Any]:
    """One MLflow run for the draw; FAILED, with the reason, when anything goes wrong."""
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags={"fairdistill.kind": KIND, "fairdistill.source_model": source.model_uri},
    )
    with ended_run(run):
        log_params(
            {
                "source": source.requested,
                "source.model_uri": source.model_uri,
                "conditions": json.dumps(list(request.where)),
                "rows": request.rows,
                "seed": request.seed,
                "sensitive_mix": request.sensitive_mix,
            }
        )
        yield run


def _source_spec(source: GeneratorSource) -> DatasetSpec | None:
    if source.manifest is None or "spec" not in source.manifest:
        return None
    return DatasetSpec.model_validate(source.manifest["spec"])


def _evaluate(
    source: GeneratorSource,
    spec: DatasetSpec | None,
    synthetic: pl.DataFrame,
    conditions: ConditionSet,
    seed: int,
) -> dict[str, Any]:
    """The evaluation on the real slice, or why there is none."""
    if source.manifest is None or spec is None:
        return not_evaluated("the source run's manifest is unavailable, so is its real test set")
    split = recorded_split(source.manifest, spec)
    if isinstance(split, str):
        return not_evaluated(split)
    train, test = split
    return evaluate_conditional(train, test, synthetic, spec, conditions, seed=seed)


def recorded_split(
    manifest: dict[str, Any], spec: DatasetSpec
) -> tuple[pl.DataFrame, pl.DataFrame] | str:
    """The source run's train and test rows, redone from its recorded input and split; or
    why they cannot be (the input is gone or changed since)."""
    from fairdistill.flows.reproduce import check_recorded_input

    try:
        check_recorded_input(manifest)
    except FairdistillError as error:
        return f"the source run's input is unavailable: {error.message}"
    config = manifest.get("config", {})
    separator = config.get("separator") or spec.separator
    frame = read_table(manifest["input"]["path"], separator=separator)
    test_fraction = float(config.get("prepare", {}).get("test_fraction", 0.2))
    return split_table(frame, spec, test_fraction, int(manifest["seed"]))


def build_manifest(
    request: GenerateRequest,
    source: GeneratorSource,
    conditions: ConditionSet,
    sample: ConditionalSample,
    evaluation: dict[str, Any],
    data: bytes,
    run: Any,
) -> dict[str, Any]:
    settings = load_settings()
    recorded_input = (source.manifest or {}).get("input")
    return {
        "fairdistill_manifest": 1,
        "kind": KIND,
        "created_at": datetime.now(UTC).isoformat(),
        "source": source.as_dict(),
        "input": recorded_input,
        "request": {
            "rows": request.rows,
            "seed": request.seed,
            "sensitive_mix": request.sensitive_mix,
        },
        "conditions": [
            {"text": c.text, "column": c.column, "op": c.op, "values": list(c.values)}
            for c in conditions.conditions
        ],
        "draw": sample.summary(),
        "evaluation": evaluation,
        "code_version": code_version(),
        "packages": package_versions(),
        "mlflow": {
            "tracking_uri": redact_uri(settings.tracking_uri),
            "experiment_id": run.info.experiment_id,
            "run_id": run.info.run_id,
        },
        "output": {"file": DATA_FILE, "sha256": sha256_bytes(data), "rows": sample.frame.height},
    }


def render_report(manifest: dict[str, Any]) -> str:
    """A short Markdown page: what was asked, how it was drawn, how it scored."""
    evaluation = manifest["evaluation"]
    draw = manifest["draw"]
    lines = [
        f"# Conditional rows from {manifest['source']['model_uri']}",
        "",
        f"{manifest['output']['rows']:,} rows, seed {manifest['request']['seed']}, "
        f"sensitive mix {manifest['request']['sensitive_mix']}.",
        "",
        "## Conditions",
        "",
        *([f"- `{c['text']}`" for c in manifest["conditions"]] or ["- none"]),
        "",
        "## Draw",
        "",
        f"About {draw['estimated_rate']:.2%} of the generator's unconditional rows meet the "
        f"conditions; {draw['draws']:,} rows were drawn in all (pilot and fill).",
        "",
        "## Evaluation on the matching real test rows",
        "",
    ]
    if evaluation["status"] != "evaluated":
        lines.append(f"Not evaluated: {evaluation['reason']}.")
        return "\n".join(lines) + "\n"
    lines += [
        f"{evaluation['real_test_slice_rows']:,} real test rows meet the conditions.",
        "",
        "| classifier | trained on | AUROC | F1 | accuracy | positive rate |",
        "|---|---|---|---|---|---|",
    ]
    for family, protocols in evaluation["families"].items():
        for protocol, label in (("tstr", "conditional rows"), ("trtr", "real slice")):
            utility = protocols[protocol]["utility"]
            lines.append(
                f"| {family} | {label} | {utility['auroc']:.3f} | {utility['f1']:.3f} | "
                f"{utility['accuracy']:.3f} | {utility['positive_prediction_rate']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def _default_run_name(source: GeneratorSource) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dataset = source.model.removeprefix("fairdistill-")
    return f"{dataset}-conditional-v{source.version}-{stamp}"
