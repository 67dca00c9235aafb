"""MLflow runs left RUNNING by a killed process: found and ended by the next flow run.

A process killed outright (SIGKILL, the out-of-memory killer, a lost machine) cannot end
its MLflow runs, which would show RUNNING forever. Every fairdistill run records the
process that runs it (:func:`process_tags`), and the next flow on the same tracking store
ends each RUNNING run it can prove dead, as KILLED with the reason in its
``fairdistill.failure`` tag:

- its process ran on this machine (same host name, boot and process namespace) and is gone:
  no process has its id any more, or the one that has it started at another time;
- or Prefect records its flow run (for a stage, its task run) as finished, failed, crashed
  or cancelled: a flow and a stage end their MLflow run before Prefect records their end,
  so a run still RUNNING then was cut off.

Nothing else proves a run dead: a run of a process still alive, or of another machine that
Prefect does not know as ended, is left as it is.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from uuid import UUID

import mlflow
import psutil
from mlflow.entities import Run, RunStatus

PROCESS_MACHINE_TAG = "fairdistill.process.machine"
PROCESS_ID_TAG = "fairdistill.process.pid"
PROCESS_STARTED_TAG = "fairdistill.process.started"
FLOW_RUN_TAG = "prefect.flow_run_id"
TASK_RUN_TAG = "prefect.task_run_id"
FAILURE_TAG = "fairdistill.failure"
STAGE_TAG = "fairdistill.stage"
# Two readings of one process's start time differ by rounding only; a reused process id
# belongs to a process started long after the one that held it.
_SAME_START_SECONDS = 0.5
_FINAL_PREFECT_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class EndedRun:
    run_id: str
    stage: str
    reason: str


@lru_cache(maxsize=1)
def this_machine() -> str:
    """This host, its boot and its process namespace: where a process id means one process.

    Two containers on one host may share a host name and a home folder but not their
    process ids; the namespace tells them apart.
    """
    boot = _read_first_line(Path("/proc/sys/kernel/random/boot_id"))
    if boot is None:
        boot = f"booted {psutil.boot_time():.0f}"
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return " ".join(part for part in (socket.gethostname(), boot, namespace) if part)


def process_tags() -> dict[str, str]:
    """Tags naming the process that runs an MLflow run, so a later run can tell it died."""
    return {
        PROCESS_MACHINE_TAG: this_machine(),
        PROCESS_ID_TAG: str(os.getpid()),
        PROCESS_STARTED_TAG: f"{psutil.Process().create_time():.3f}",
    }


def process_gone(tags: dict[str, str]) -> str | None:
    """Why the process recorded in ``tags`` is provably gone, or None (alive, or unknown)."""
    if tags.get(PROCESS_MACHINE_TAG) != this_machine():
        return None
    try:
        pid, started = int(tags[PROCESS_ID_TAG]), float(tags[PROCESS_STARTED_TAG])
    except (KeyError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"its process (pid {pid}) was killed"
        if abs(process.create_time() - started) > _SAME_START_SECONDS:
            return f"its process (pid {pid}) is gone; another process has its id now"
    except psutil.NoSuchProcess:
        return f"its process (pid {pid}) is gone"
    except psutil.Error:
        return None  # not ours to inspect: assume it lives
    return None


def prefect_run_ended(tags: dict[str, str]) -> str | None:
    """Why Prefect says the run behind this MLflow run is over, or None.

    A stage's is its task run: its flow run may end while the stage still works on a
    remote worker. The flow's MLflow run is its flow run's.
    """
    tag, kind = (FLOW_RUN_TAG, "flow") if tags.get(STAGE_TAG) == "flow" else (TASK_RUN_TAG, "task")
    if not tags.get(tag):
        return None
    state = _prefect_state(kind, tags[tag])
    if state not in _FINAL_PREFECT_STATES:
        return None
    return f"its Prefect {kind} run {tags[tag]} is {state.lower()}"


def end_orphaned_runs(tracking_uri: str, finder_run_id: str | None = None) -> list[EndedRun]:
    """End, as KILLED, every RUNNING fairdistill run in the store that is provably dead."""
    client = mlflow.MlflowClient(tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiments:
        return []
    running = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")
    found_by = f"; ended by MLflow run {finder_run_id}" if finder_run_id else ""
    ended = []
    for run in running:
        if run.info.run_id == finder_run_id or STAGE_TAG not in run.data.tags:
            continue
        cause = _cause_of_death(run)
        if cause is None:
            continue
        reason = f"killed: {cause} and never ended this run{found_by}"
        client.set_tag(run.info.run_id, FAILURE_TAG, reason)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        ended.append(EndedRun(run.info.run_id, run.data.tags[STAGE_TAG], reason))
    return ended


def _cause_of_death(run: Run) -> str | None:
    tags = run.data.tags
    return process_gone(tags) or prefect_run_ended(tags)


def _prefect_state(kind: str, run_id: str) -> str | None:
    """The state type of a Prefect flow or task run; None when Prefect cannot say."""
    from prefect.client.orchestration import get_client

    try:
        identifier = UUID(run_id)
        with get_client(sync_client=True) as client:
            run = (
                client.read_task_run(identifier)
                if kind == "task"
                else client.read_flow_run(identifier)
            )
    except Exception:  # unknown to this server, or no server: nothing is proven
        logging.getLogger(__name__).debug("no Prefect state for %s run %s", kind, run_id)
        return None
    return run.state.type.value if run.state is not None else None


def _read_first_line(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
