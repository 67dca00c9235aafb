"""The flow: regenerate a fair synthetic dataset from a real one.

Reads like the process it runs: check the input, split it, learn a fair latent space,
distill it into a small student, generate rows, measure them, publish them if they pass
the gates. Each stage is a Prefect task and an MLflow child run; stages pass references
(URI + sha256), never frames or models.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import mlflow
from prefect import Task, flow, runtime
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.settings import load_settings
from fairdistill.flows.task_runner import build_task_runner, gpu_resources
from fairdistill.models.config import RunConfig
from fairdistill.tasks.distill_student import distill_student
from fairdistill.tasks.evaluate import evaluate
from fairdistill.tasks.generate import generate
from fairdistill.tasks.prepare import prepare
from fairdistill.tasks.publish import PublishedDataset, publish
from fairdistill.tasks.services import progress
from fairdistill.tasks.services.concurrency import ensure_gpu_limit
from fairdistill.tasks.services.orphans import end_orphaned_runs, process_tags
from fairdistill.tasks.services.run_folder import check_output_location
from fairdistill.tasks.services.storage import join_uri
from fairdistill.tasks.services.tracking import (
    StageContext,
    ensure_experiment,
    flatten,
    log_params,
    record_failure,
    record_reused_stage,
)
from fairdistill.tasks.services.uris import redact_uri
from fairdistill.tasks.train_teacher import train_teacher
from fairdistill.tasks.validate import input_fingerprint, validate


class StageTiming(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    seconds: float
    reused: bool
    # The epoch (counted from 1) whose checkpoint a training stage continued from after an
    # earlier attempt stopped; None when it trained from the first epoch (or was reused).
    resumed_from_epoch: int | None = None


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_name: str
    flow_run_id: str | None
    mlflow_run_id: str
    tracking_uri: str
    published: PublishedDataset
    headline: dict[str, float]
    stages: list[StageTiming]


class StageRunner:
    """Runs stages in order, timing each and noting which ones Prefect served from its cache.

    A reused stage is recorded under the flow's MLflow run too (``context``), pointing at
    the stage run that computed its output: the run's record then backs all it publishes.
    """

    def __init__(self, context: StageContext | None = None) -> None:
        self.context = context
        self.timings: list[StageTiming] = []

    @property
    def reused(self) -> list[str]:
        return [timing.stage for timing in self.timings if timing.reused]

    def run(self, stage: Task[..., Any], *arguments: Any) -> Any:
        with self.timed(stage.name) as outcome:
            # Submitting (rather than calling) lets a Dask task runner place the stage; the
            # GPU annotation keeps gpu-tagged stages on workers that advertise a GPU.
            placement = gpu_resources() if "gpu" in stage.tags else contextlib.nullcontext()
            with placement:
                future = stage.submit(*arguments)
            future.wait()
            state = future.state
            if not state.is_final():
                # prefect-dask's wait() swallows a worker's error; result() re-raises it.
                future.result()
                state = future.state
            result = state.result()
            outcome["reused"] = state.name == "Cached"
            if outcome["reused"] and self.context is not None:
                record_reused_stage(self.context, stage.name, getattr(result, "stage_run_id", None))
            elif (resumed := getattr(result, "resumed_from_epoch", None)) is not None:
                outcome["resumed_from_epoch"] = resumed
            return result

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[dict[str, Any]]:
        """Time the block as ``stage``; the block may set ``reused`` and ``resumed_from_epoch``
        in the outcome it is given."""
        outcome: dict[str, Any] = {"reused": False, "resumed_from_epoch": None}
        started = time.perf_counter()
        progress.stage_started(stage)
        try:
            yield outcome
        except BaseException:
            progress.stage_failed(stage, seconds=time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        self.timings.append(StageTiming(stage=stage, seconds=seconds, **outcome))
        progress.stage_finished(stage, seconds=seconds, reused=outcome["reused"])


def prepare_tracking(config: RunConfig) -> str:
    """Create the MLflow store and the run's experiment if missing; return the experiment id.

    The flow does this itself; the command line calls it earlier as well, while Prefect's
    temporary server starts, since a first run's SQLite store takes 2-5 s to create.
    """
    settings = load_settings()
    return ensure_experiment(settings.tracking_uri, config.experiment, settings.mlflow_artifacts)


def end_runs_left_running(tracking_uri: str, run_id: str) -> None:
    """End the MLflow runs that killed processes left RUNNING, and say so."""
    ended = end_orphaned_runs(tracking_uri, finder_run_id=run_id)
    if ended:
        get_run_logger().warning(
            "ended %d MLflow run(s) left RUNNING by a killed run as KILLED (%s); the reason is "
            "in each run's fairdistill.failure tag",
            len(ended),
            ", ".join(f"{run.stage} {run.run_id}" for run in ended),
        )


def make_run_name(config: RunConfig, run_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{config.dataset_label}-{stamp}-{run_id[:8]}"


@flow(
    name="regenerate_fair_dataset",
    log_prints=True,
    validate_parameters=True,
    task_runner=build_task_runner(load_settings().dask_address),
)
def regenerate_fair_dataset(config: RunConfig) -> RunSummary:
    """Validate, prepare, train the teacher, distill the student, generate, evaluate, publish."""
    logger = get_run_logger()
    settings = load_settings()
    output_root = config.output or str(settings.default_output)
    gpu_limit = ensure_gpu_limit(settings.gpu_slots)
    if gpu_limit is not None:
        logger.info("GPU stages: at most %d at a time (Prefect tag limit 'gpu')", gpu_limit.slots)
    experiment_id = prepare_tracking(config)
    flow_run_id = runtime.flow_run.get_id()
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"{config.dataset_label}-regenerate",
        tags={
            "prefect.flow_run_id": str(flow_run_id),
            "fairdistill.stage": "flow",
            **process_tags(),
        },
    ) as parent:
        run_id = parent.info.run_id
        run_name = config.run_name or make_run_name(config, run_id)
        logger.info("MLflow run %s (%s) at %s", run_id, run_name, redact_uri(settings.tracking_uri))
        try:
            end_runs_left_running(settings.tracking_uri, run_id)
            log_params(flatten("", config))
            mlflow.set_tag("fairdistill.run_name", run_name)
            # Results repeat exactly only at the same thread count: record it with the run.
            mlflow.set_tag("fairdistill.torch_threads", str(settings.torch_threads))
            check_output_location(output_root, run_name, overwrite=config.overwrite)
            context = StageContext(
                tracking_uri=settings.tracking_uri,
                experiment_id=experiment_id,
                parent_run_id=run_id,
                work_uri=join_uri(settings.work_uri, run_name),
                checkpoint_root=settings.checkpoint_uri,
                torch_threads=settings.torch_threads,
                flow_run_id=str(flow_run_id),
                reuse_stages=config.reuse_stages,
            )
            # Each stage is handed the part of the config it reads, and nothing else: that
            # part, with its inputs' digests, is its cache key.
            seed, device, source = config.seed, config.device, config.input_files
            stages = StageRunner(context)
            validated = stages.run(
                validate, source, config.rows_to_sample, context, input_fingerprint(source)
            )
            prepared = stages.run(prepare, config.prepare, seed, context, validated)
            teacher = stages.run(train_teacher, config.teacher, seed, device, context, prepared)
            student = stages.run(
                distill_student, config.student, seed, device, context, prepared, teacher
            )
            synthetic = stages.run(
                generate, config.generate, seed, context, prepared, teacher, student
            )
            evaluation = stages.run(evaluate, config.evaluate, seed, context, prepared, synthetic)
            mlflow.set_tag("fairdistill.reused_stages", ",".join(stages.reused) or "none")
            with stages.timed("publish"):
                published = publish(
                    config,
                    context,
                    output_root,
                    run_name,
                    validated,
                    prepared,
                    teacher,
                    student,
                    synthetic,
                    evaluation,
                )
        except BaseException as error:
            record_failure(run_id, error)
            raise
    return RunSummary(
        run_name=run_name,
        flow_run_id=str(flow_run_id) if flow_run_id else None,
        mlflow_run_id=run_id,
        tracking_uri=redact_uri(settings.tracking_uri),
        published=published,
        headline=evaluation.headline,
        stages=stages.timings,
    )
