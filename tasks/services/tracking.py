"""MLflow wiring shared by the stages: one parent run per flow run, one child per stage."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow.entities import RunStatus
from pydantic import BaseModel, ConfigDict
from threadpoolctl import threadpool_limits

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
def _one_process_at_a_time(lock_file: Path) -> Iterator[None]:
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
    with _one_process_at_a_time(artifact_root.parent / ".tracking-setup.lock"):
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
    if context.flow_run_id:
        tags["prefect.flow_run_id"] = context.flow_run_id
    run = mlflow.start_run(
        run_name=stage,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
        nested=True,
        tags=tags,
    )
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
