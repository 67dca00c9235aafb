"""MLflow wiring shared by the stages: one parent run per flow run, one child per stage."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow.entities import Metric, Param, Run, RunStatus
from prefect.context import TaskRunContext
from pydantic import BaseModel, ConfigDict
from threadpoolctl import threadpool_limits

from fairdistill.tasks.services.orphans import FLOW_RUN_TAG, TASK_RUN_TAG, process_tags

# On the child run that stands for a reused stage: the stage run that computed the output.
REUSED_FROM_TAG = "fairdistill.reused_from_run"
# MLflow's limits on one log_batch call.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000

# Requirements recorded with logged models; passing them explicitly spares MLflow a slow
# environment inference on every log_model call.
MODEL_REQUIREMENTS = ["torch==2.13.0", "numpy", "safetensors"]


class StageContext(BaseModel):
    """What every stage needs to know about the run it belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    work_uri: str
    checkpoint_root: str
    # The flow passes the configured count (flows.settings); one thread when built alone.
    torch_threads: int = 1
    flow_run_id: str | None = None
    # False: every stage computes afresh (the run's reuse_stages); never part of a cache key.
    reuse_stages: bool = True

    def work_file(self, name: str) -> str:
        return f"{self.work_uri.rstrip('/')}/{name}"


@contextmanager
def one_process_at_a_time(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment(tracking_uri: str, name: str, artifact_root: Path) -> str:
    mlflow.set_tracking_uri(tracking_uri)
    # Two first runs started at once would both create the SQLite store's tables (one
    # fails: "table ... already exists") and both create the experiment: take turns.
    with one_process_at_a_time(artifact_root.parent / ".tracking-setup.lock"):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        # Keep artifacts beside the SQLite store, not in whatever folder the user ran from.
        artifact_location = (artifact_root / name).resolve().as_uri()
        try:
            return mlflow.create_experiment(name, artifact_location=artifact_location)
        except mlflow.exceptions.MlflowException:
            # Created meanwhile by a run on another machine sharing the tracking server.
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id


def flatten(prefix: str, values: Any) -> dict[str, Any]:
    """Flatten nested config mappings into dotted MLflow parameter names."""
    if isinstance(values, BaseModel):
        values = values.model_dump(mode="json")
    if not isinstance(values, dict):
        return {prefix: values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten(name, value))
    return flat


def log_params(values: dict[str, Any]) -> None:
    # MLflow caps a param value at 6000 characters; config values are far below that.
    mlflow.log_params({key: str(value) for key, value in values.items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    finite = {key: float(value) for key, value in metrics.items() if value == value}
    if finite:
        mlflow.log_metrics(finite, step=step)


@contextmanager
def stage_run(context: StageContext, stage: str) -> Iterator[mlflow.ActiveRun]:
    """A child run of the flow's parent run; marked FAILED, with the reason, on error."""
    mlflow.set_tracking_uri(context.tracking_uri)
    with stage_threads(context.torch_threads), _child_run(context, stage) as run:
        yield run


@contextmanager
def stage_threads(threads: int) -> Iterator[None]:
    """Give torch and OpenMP the stage's thread count, and BLAS one thread, until it ends.

    Set in the stage itself: on a Dask worker the flow process's setting does not apply.
    BLAS only ever multiplies small matrices here (the prior's 16-wide covariances), where a
    second thread gains nothing and spin-waits: while other jobs kept 2 cores busy, the
    generate stage's mixture fit took 21 s with two OpenBLAS threads and 6.5 s with one.
    """
    previous = torch.get_num_threads()
    with threadpool_limits(limits={"blas": 1, "openmp": threads}):
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


@contextmanager
def _child_run(context: StageContext, stage: str) -> Iterator[mlflow.ActiveRun]:
    tags = {"fairdistill.stage": stage, "fairdistill.worker": worker_identity()}
    # Who runs the stage, so that a later flow can prove it dead if it never ends.
    tags |= process_tags()
    if context.flow_run_id:
        tags[FLOW_RUN_TAG] = context.flow_run_id
    task_run = TaskRunContext.get()
    if task_run is not None:
        tags[TASK_RUN_TAG] = str(task_run.task_run.id)
    run = mlflow.start_run(
        run_name=stage,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
        nested=True,
        tags=tags,
    )
    with ended_run(run):
        yield run


@contextmanager
def ended_run(run: mlflow.ActiveRun) -> Iterator[mlflow.ActiveRun]:
    """The active ``run``, ended FINISHED when the block completes and FAILED, with the
    reason recorded, when it raises."""
    try:
        yield run
    except BaseException as error:
        record_failure(run.info.run_id, error)
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def worker_identity() -> str:
    """The Dask worker running this stage (its address), else this host and process.

    Recorded on every stage run, so an audit can tell where a GPU stage really ran.
    """
    # Only a process that imported distributed can be a Dask worker; importing it here
    # would cost every other process a second.
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return str(distributed.get_worker().address)
        except ValueError:
            pass
    return f"{socket.gethostname()} pid {os.getpid()}"


def record_failure(run_id: str, error: BaseException) -> None:
    """Keep the reason on the run, so the MLflow UI says why it FAILED."""
    reason = f"{type(error).__name__}: {error}"[:5000]
    mlflow.MlflowClient().set_tag(run_id, "fairdistill.failure", reason)


def record_reused_stage(context: StageContext, stage: str, source_run_id: str | None) -> str:
    """Record a stage the flow reused as a child run of its parent; return that run's id.

    The parent run of a flow that reused every stage would otherwise hold no stage runs,
    and nothing in its record would back the metrics its manifest publishes. The child run
    holds the parameters and the latest metrics of ``source_run_id``, the stage run that
    computed the reused output, and names it (tag ``fairdistill.reused_from_run``); the
    artifacts, epoch histories and models stay with that run.
    """
    client = mlflow.MlflowClient(context.tracking_uri)
    tags = {
        "mlflow.parentRunId": context.parent_run_id,
        "fairdistill.stage": stage,
        REUSED_FROM_TAG: source_run_id or "unknown",
        **process_tags(),
    }
    if context.flow_run_id:
        tags[FLOW_RUN_TAG] = context.flow_run_id
    source = _run_or_none(client, source_run_id)
    if source is not None:
        tags["fairdistill.reused_from_parent_run"] = source.data.tags.get("mlflow.parentRunId", "")
    run = client.create_run(context.experiment_id, run_name=f"{stage} (reused)", tags=tags)
    run_id = run.info.run_id
    if source is not None:
        _copy_values(client, run_id, source.data.params, source.data.metrics)
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id


def _run_or_none(client: mlflow.MlflowClient, run_id: str | None) -> Run | None:
    """The run, or None when this store has none by that id (``verify`` then says so)."""
    if run_id is None:
        return None
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return None


def _copy_values(
    client: mlflow.MlflowClient, run_id: str, params: dict[str, str], metrics: dict[str, float]
) -> None:
    stamp = int(time.time() * 1000)
    param_list = [Param(key, value) for key, value in sorted(params.items())]
    metric_list = [Metric(key, value, stamp, 0) for key, value in sorted(metrics.items())]
    for start in range(0, len(param_list), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=param_list[start : start + _PARAMS_PER_BATCH])
    for start in range(0, len(metric_list), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metric_list[start : start + _METRICS_PER_BATCH])
